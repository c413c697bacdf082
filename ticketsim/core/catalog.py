"""What each strategy is and claims: the catalogue every layer reads.

How a strategy is built (its store, its guard, the processes it starts) is the
engine's business (:mod:`ticketsim.engine.strategies`); what it promises is data, here,
so that the settings, the checker's report and the views can name and judge a strategy
without importing the code that runs it. ``tests/engine/test_claims.py`` checks every claim
against behaviour, and ``tests/engine/test_registry.py`` that every entry here has a
builder there and no builder lacks an entry.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ticketsim.core.names import StrategyName
from ticketsim.core.schedule import Model
from ticketsim.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True, kw_only=True)
class Claims:
    """What a strategy protects; every field is checked by a test (tests/engine/test_claims.py)."""

    #: The remaining count never lets more buyers than tickets be told "yes".
    count: bool
    #: No seat is sold to two buyers.
    seats: bool
    #: Every sale a buyer is told about is in the ledger, once.
    ledger: bool
    #: Two separate ``ticketsim run --keep`` programs on one db cannot oversell.
    separate_programs: bool
    #: A buyer killed inside its critical section does not stall everyone else.
    killed_holder: bool
    #: Each sale is in the db file as soon as it is made (a crash loses nothing told).
    durable: bool


#: The claims' column titles, in table order, as ``ticketsim strategies`` prints them.
CLAIM_TITLES: Final = {
    "count": "the count",
    "seats": "the seats",
    "ledger": "the ledger",
    "separate_programs": "separate programs",
    "killed_holder": "killed holder",
    "durable": "durable per sale",
}


@dataclass(frozen=True, kw_only=True)
class StrategyInfo:
    """One strategy as the user sees it: its name, its promises, its price."""

    name: StrategyName
    #: A safe strategy must sell exactly ``min(tickets, buyers)`` with no violation.
    safe: bool
    #: Whether buyers take turns to read: a forced "all read, then all write"
    #: interleaving (lockstep) is only possible when they do not.
    serialises: bool
    claims: Claims
    #: One line on how it works.
    how: str
    #: Whether a buyer holds a lock from its read to its write (the office serialises
    #: without one: its buyers hold nothing).
    guarded: bool = False
    #: What a crash mid-sale costs, when it costs something.
    caveat: str | None = None
    #: What a buyer holds inside its critical section ("" when nothing).
    holding: str = ""

    def model(self) -> Model:
        """How this strategy constrains the order of buyers' steps (for schedules)."""
        return Model(guarded=self.guarded, reads_commute=not self.serialises)

    def describe(self) -> dict[str, Any]:
        """This strategy as one row of ``ticketsim strategies --json``."""
        return {
            "strategy": self.name.value,
            "safe": self.safe,
            **dataclasses.asdict(self.claims),
            "how": self.how,
            "caveat": self.caveat,
        }


_AT_END: Final = (
    "The db is written once, when the sale ends: if the program dies mid-sale, "
    "every sale of this run is lost from it."
)
#: A lock around the file db's read-decide-write, whichever lock it is.
_LOCKED_FILE: Final = Claims(
    count=True, seats=True, ledger=True, separate_programs=False, killed_holder=False, durable=True
)
#: The same in shared memory, written to the db once at the end.
_LOCKED_MEMORY: Final = dataclasses.replace(_LOCKED_FILE, durable=False)


def _locked(
    name: StrategyName,
    *,
    holding: str,
    how: str,
    claims: Claims = _LOCKED_FILE,
    caveat: str | None = None,
) -> StrategyInfo:
    """A lock held by each buyer from its read to its write: safe, one reader at a time."""
    return StrategyInfo(
        name=name,
        safe=True,
        serialises=True,
        guarded=True,
        holding=holding,
        claims=claims,
        how=how,
        caveat=caveat,
    )


def _unprotected(name: StrategyName, *, how: str, caveat: str, claims: Claims) -> StrategyInfo:
    return StrategyInfo(
        name=name, safe=False, serialises=False, claims=claims, how=how, caveat=caveat
    )


#: Nothing protected: only a killed buyer cannot hurt the others, having nothing to hold.
_NOTHING: Final = Claims(
    count=False,
    seats=False,
    ledger=False,
    separate_programs=False,
    killed_holder=True,
    durable=False,
)

CATALOG: Final[Mapping[StrategyName, StrategyInfo]] = {
    info.name: info
    for info in (
        _unprotected(
            StrategyName.NONE,
            how="Nothing: read, sleep, then the tutorial's open(path, 'w') + json.dump.",
            caveat=(
                "Writes are not atomic: a read can see a half-written db, and overlapping "
                "writes can leave it unreadable."
            ),
            claims=_NOTHING,
        ),
        _locked(
            StrategyName.LOCK,
            holding="a multiprocessing.Lock, which no one else can release",
            how="A multiprocessing.Lock around read-decide-write; atomic db writes.",
        ),
        _locked(
            StrategyName.SEMAPHORE,
            holding="the Semaphore(1)'s only permit",
            how="A multiprocessing.Semaphore(1) used as a mutex; atomic db writes.",
        ),
        _locked(
            StrategyName.FILELOCK,
            holding="the file lock, which the kernel releases when it dies",
            how="filelock.FileLock (flock) on <db>.lock; protects separate programs too.",
            claims=dataclasses.replace(_LOCKED_FILE, separate_programs=True, killed_holder=True),
        ),
        _locked(
            StrategyName.MANAGER,
            holding="the manager's Lock, which the manager keeps for the dead client",
            how="A Manager().Lock() and a Manager dict; every access is a round trip.",
            claims=_LOCKED_MEMORY,
            caveat=_AT_END,
        ),
        _locked(
            StrategyName.VALUE,
            holding="the Value's lock",
            how="The count in a shared multiprocessing.Value, changed under its get_lock().",
            claims=_LOCKED_MEMORY,
            caveat=_AT_END,
        ),
        _locked(
            StrategyName.ARRAY,
            holding="the Array's lock",
            how="A seat map in a shared multiprocessing.Array; a seat is claimed under its lock.",
            claims=_LOCKED_MEMORY,
            caveat=_AT_END,
        ),
        StrategyInfo(
            name=StrategyName.OFFICE,
            safe=True,
            serialises=True,
            claims=dataclasses.replace(_LOCKED_FILE, killed_holder=True),
            how="No lock: one ticket-office process owns the db and serves requests from a pipe.",
        ),
        _unprotected(
            StrategyName.VALUE_UNLOCKED,
            how=(
                "The same Value, no get_lock(): 'v.value -= 1' is a locked read, "
                "then a locked write."
            ),
            caveat=_AT_END,
            claims=dataclasses.replace(_NOTHING, ledger=True),
        ),
        _unprotected(
            StrategyName.ARRAY_UNLOCKED,
            how="The same seat map, read and claimed with no lock held across the two.",
            caveat=_AT_END,
            claims=_NOTHING,
        ),
    )
}


def info(name: str) -> StrategyInfo:
    """The strategy called ``name``; :class:`ConfigError` lists the choices otherwise."""
    # StrategyName members are str, so they and plain strings find the same entry.
    found: StrategyInfo | None = CATALOG.get(name)  # type: ignore[call-overload]
    if found is None:
        choices = ", ".join(s.value for s in StrategyName)
        raise ConfigError("strategy", name, f"choose one of {choices}")
    return found
