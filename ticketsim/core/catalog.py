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

CATALOG: Final[Mapping[StrategyName, StrategyInfo]] = {
    info.name: info
    for info in (
        StrategyInfo(
            name=StrategyName.NONE,
            safe=False,
            serialises=False,
            claims=Claims(
                count=False,
                seats=False,
                ledger=False,
                separate_programs=False,
                killed_holder=True,
                durable=False,
            ),
            how="Nothing: read, sleep, then the tutorial's open(path, 'w') + json.dump.",
            caveat=(
                "Writes are not atomic: a read can see a half-written db, and overlapping "
                "writes can leave it unreadable."
            ),
        ),
        StrategyInfo(
            name=StrategyName.LOCK,
            safe=True,
            serialises=True,
            guarded=True,
            holding="a multiprocessing.Lock, which no one else can release",
            claims=_LOCKED_FILE,
            how="A multiprocessing.Lock around read-decide-write; atomic db writes.",
        ),
        StrategyInfo(
            name=StrategyName.SEMAPHORE,
            safe=True,
            serialises=True,
            guarded=True,
            holding="the Semaphore(1)'s only permit",
            claims=_LOCKED_FILE,
            how="A multiprocessing.Semaphore(1) used as a mutex; atomic db writes.",
        ),
        StrategyInfo(
            name=StrategyName.FILELOCK,
            safe=True,
            serialises=True,
            guarded=True,
            holding="the file lock, which the kernel releases when it dies",
            claims=dataclasses.replace(_LOCKED_FILE, separate_programs=True, killed_holder=True),
            how="filelock.FileLock (flock) on <db>.lock; protects separate programs too.",
        ),
        StrategyInfo(
            name=StrategyName.MANAGER,
            safe=True,
            serialises=True,
            guarded=True,
            holding="the manager's Lock, which the manager keeps for the dead client",
            claims=_LOCKED_MEMORY,
            how="A Manager().Lock() and a Manager dict; every access is a round trip.",
            caveat=_AT_END,
        ),
        StrategyInfo(
            name=StrategyName.VALUE,
            safe=True,
            serialises=True,
            guarded=True,
            holding="the Value's lock",
            claims=_LOCKED_MEMORY,
            how="The count in a shared multiprocessing.Value, changed under its get_lock().",
            caveat=_AT_END,
        ),
        StrategyInfo(
            name=StrategyName.ARRAY,
            safe=True,
            serialises=True,
            guarded=True,
            holding="the Array's lock",
            claims=_LOCKED_MEMORY,
            how="A seat map in a shared multiprocessing.Array; a seat is claimed under its lock.",
            caveat=_AT_END,
        ),
        StrategyInfo(
            name=StrategyName.OFFICE,
            safe=True,
            serialises=True,
            claims=dataclasses.replace(_LOCKED_FILE, killed_holder=True),
            how="No lock: one ticket-office process owns the db and serves requests from a pipe.",
        ),
        StrategyInfo(
            name=StrategyName.VALUE_UNLOCKED,
            safe=False,
            serialises=False,
            claims=Claims(
                count=False,
                seats=False,
                ledger=True,
                separate_programs=False,
                killed_holder=True,
                durable=False,
            ),
            how=(
                "The same Value, no get_lock(): 'v.value -= 1' is a locked read, "
                "then a locked write."
            ),
            caveat=_AT_END,
        ),
        StrategyInfo(
            name=StrategyName.ARRAY_UNLOCKED,
            safe=False,
            serialises=False,
            claims=Claims(
                count=False,
                seats=False,
                ledger=False,
                separate_programs=False,
                killed_holder=True,
                durable=False,
            ),
            how="The same seat map, read and claimed with no lock held across the two.",
            caveat=_AT_END,
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
