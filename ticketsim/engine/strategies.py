"""Strategies: how buyers share the tickets, and what (if anything) protects them.

A strategy gives every buyer a :class:`Tools` bundle of picklable parts:

* a **store**, which reads and writes the shared state: the db file itself
  (:class:`FileStore`), or a count or seat map in shared memory, or a manager's dict,
  that the parent writes to the db once the sale is over;
* a **guard**, which decides who may run the read-decide-write section
  (:class:`NoGuard`, :class:`LockGuard` around any primitive with
  ``acquire(timeout=)``/``release()``, or :class:`FileLockGuard`);
* or an **office**: a single process that does every read-decide-write itself and
  answers each buyer (:class:`OfficeClient`).

The buyer (:mod:`ticketsim.sale.buyer`) owns the order of the steps; the runner owns the
processes. A new strategy adds its name to :class:`StrategyName` (which lives in
:mod:`ticketsim.core.names`, light for the command line), subclasses :class:`Strategy`,
builds its primitives in :meth:`Strategy.provide`, and is added to
:data:`STRATEGIES`; neither the buyer nor the runner changes.

The parts live in :mod:`ticketsim.sale.stores`, :mod:`ticketsim.sale.guards` and
:mod:`ticketsim.sale.office`. Buyer processes unpickle them and import this module, so
all four use the standard library and ``filelock`` only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

from ticketsim.core.names import StrategyName as StrategyName  # noqa: PLC0414 - re-exported
from ticketsim.core.schedule import Model
from ticketsim.errors import ConfigError
from ticketsim.sale import _limits, _signals
from ticketsim.sale.buyer import Tools as Tools  # noqa: PLC0414 - re-exported
from ticketsim.sale.guards import FileLockGuard, LockGuard, NoGuard
from ticketsim.sale.office import PENDING, OfficeClient, close_office, run_office
from ticketsim.sale.stores import (
    FREE,
    SOLD_BEFORE,
    CountStore,
    FileStore,
    ManagerStore,
    SeatMapStore,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from multiprocessing.context import BaseContext

    from ticketsim.core import db as dbfile


@dataclass(frozen=True)
class Setup:
    """What a strategy is given to set a sale up."""

    ctx: BaseContext
    db_path: str
    initial: dbfile.TicketDB
    buyers: int
    #: Where events go; the office records the steps it takes for each buyer.
    channel: Any
    timeout: float


@dataclass(frozen=True)
class Claims:
    """What a strategy protects; every field is checked by a test (tests/test_claims.py)."""

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


class Strategy(ABC):
    """A way to run the sale. Subclasses set the class attributes and :meth:`provide`."""

    name: ClassVar[StrategyName]
    #: A safe strategy must sell exactly ``min(tickets, buyers)`` with no violation.
    safe: ClassVar[bool]
    #: Whether buyers take turns to read: a forced "all read, then all write"
    #: interleaving (lockstep) is only possible when they do not.
    serialises: ClassVar[bool]
    #: Whether a buyer holds a lock from its read to its write (the office serialises
    #: without one: its buyers hold nothing).
    guarded: ClassVar[bool] = False
    claims: ClassVar[Claims]
    #: One line on how it works.
    how: ClassVar[str]
    #: What a crash mid-sale costs, when it costs something.
    caveat: ClassVar[str | None] = None
    #: What a buyer holds inside its critical section ("" when nothing).
    holding: ClassVar[str] = ""

    @abstractmethod
    def provide(self, setup: Setup) -> contextlib.AbstractContextManager[Tools]:
        """Create this sale's primitives; clean them up on exit."""

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


#: How long the ticket office gets to take its poison pill and stop.
OFFICE_CLOSE_S: Final = 5.0

_AT_END = (
    "The db is written once, when the sale ends: if the program dies mid-sale, "
    "every sale of this run is lost from it."
)


class Unprotected(Strategy):
    name = StrategyName.NONE
    safe = False
    serialises = False
    claims = Claims(False, False, False, False, True, False)
    how = "Nothing: read, sleep, then the tutorial's open(path, 'w') + json.dump."
    caveat = (
        "Writes are not atomic: a read can see a half-written db, and overlapping "
        "writes can leave it unreadable."
    )

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        yield Tools(store=FileStore(setup.db_path, naive=True), guard=NoGuard())


class MutexLock(Strategy):
    name = StrategyName.LOCK
    safe = True
    serialises = True
    guarded = True
    holding = "a multiprocessing.Lock, which no one else can release"
    claims = Claims(True, True, True, False, False, True)
    how = "A multiprocessing.Lock around read-decide-write; atomic db writes."

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        yield Tools(FileStore(setup.db_path), LockGuard(setup.ctx.Lock()))


class Semaphore(Strategy):
    name = StrategyName.SEMAPHORE
    safe = True
    serialises = True
    guarded = True
    holding = "the Semaphore(1)'s only permit"
    claims = Claims(True, True, True, False, False, True)
    how = "A multiprocessing.Semaphore(1) used as a mutex; atomic db writes."

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        guard = LockGuard(setup.ctx.Semaphore(1), "multiprocessing.Semaphore(1)")
        yield Tools(FileStore(setup.db_path), guard)


def lock_file(db_path: str) -> str:
    """The lock file of the ``filelock`` strategy: next to the db, whoever runs the sale."""
    return os.path.realpath(db_path) + ".lock"


class FileLockStrategy(Strategy):
    name = StrategyName.FILELOCK
    safe = True
    serialises = True
    guarded = True
    holding = "the file lock, which the kernel releases when it dies"
    claims = Claims(True, True, True, True, True, True)
    how = "filelock.FileLock (flock) on <db>.lock; protects separate programs too."

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        guard = FileLockGuard(lock_file(setup.db_path))
        guard.prepare()  # in the parent too: forked buyers inherit the import (not the lock)
        yield Tools(FileStore(setup.db_path), guard)


class ManagerStrategy(Strategy):
    name = StrategyName.MANAGER
    safe = True
    serialises = True
    guarded = True
    holding = "the manager's Lock, which the manager keeps for the dead client"
    claims = Claims(True, True, True, False, False, False)
    how = "A Manager().Lock() and a Manager dict; every access is a round trip."
    caveat = _AT_END

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        from ticketsim.sale._manager import serving  # noqa: PLC0415 - this strategy's alone

        with serving(setup.ctx) as manager:
            state = manager.dict(remaining=setup.initial.remaining)
            store = ManagerStore(state, setup.initial.tickets, _taken(setup))
            yield Tools(store, LockGuard(manager.Lock(), "Manager().Lock()"))


def _count(setup: Setup) -> Any:
    return setup.ctx.Value("i", setup.initial.remaining)


def _taken(setup: Setup) -> tuple[int, ...]:
    """The seats the db had sold when the sale opened (``--keep``), sorted."""
    return tuple(sorted(sale.seat for sale in setup.initial.ledger))


def _seat_map(setup: Setup) -> Any:
    cells = [FREE] * setup.initial.tickets
    for seat in _taken(setup):  # a db --keep accepts holds only seats from 1 to tickets
        cells[seat - 1] = SOLD_BEFORE
    return setup.ctx.Array("i", cells)


class ValueStrategy(Strategy):
    name = StrategyName.VALUE
    safe = True
    serialises = True
    guarded = True
    holding = "the Value's lock"
    claims = Claims(True, True, True, False, False, False)
    how = "The count in a shared multiprocessing.Value, changed under its get_lock()."
    caveat = _AT_END

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        count = _count(setup)
        guard = LockGuard(count.get_lock(), "Value.get_lock()")
        yield Tools(CountStore(count, setup.initial.tickets, _taken(setup)), guard)


class ValueUnlocked(Strategy):
    name = StrategyName.VALUE_UNLOCKED
    safe = False
    serialises = False
    claims = Claims(False, False, True, False, True, False)
    how = "The same Value, no get_lock(): 'v.value -= 1' is a locked read, then a locked write."
    caveat = _AT_END

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        store = CountStore(_count(setup), setup.initial.tickets, _taken(setup))
        yield Tools(store, NoGuard())


class ArrayStrategy(Strategy):
    name = StrategyName.ARRAY
    safe = True
    serialises = True
    guarded = True
    holding = "the Array's lock"
    claims = Claims(True, True, True, False, False, False)
    how = "A seat map in a shared multiprocessing.Array; a seat is claimed under its lock."
    caveat = _AT_END

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        seats = _seat_map(setup)
        yield Tools(SeatMapStore(seats), LockGuard(seats.get_lock(), "Array.get_lock()"))


class ArrayUnlocked(Strategy):
    name = StrategyName.ARRAY_UNLOCKED
    safe = False
    serialises = False
    claims = Claims(False, False, False, False, True, False)
    how = "The same seat map, read and claimed with no lock held across the two."
    caveat = _AT_END

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        yield Tools(SeatMapStore(_seat_map(setup)), NoGuard())


class Office(Strategy):
    name = StrategyName.OFFICE
    safe = True
    serialises = True
    claims = Claims(True, True, True, False, True, True)
    how = "No lock: one ticket-office process owns the db and serves requests from a pipe."

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        ctx = setup.ctx
        requests, writer = ctx.Pipe(duplex=False)
        replies = ctx.Array("i", [PENDING] * (setup.buyers + 1))
        answered = ctx.Condition()
        office = ctx.Process(  # type: ignore[attr-defined]
            target=run_office,
            name="ticket-office",
            args=(setup.db_path, requests, replies, answered, setup.channel, setup.timeout),
            daemon=True,
        )
        # Daemonic and known once started: ended at exit if need be.
        refused = _limits.starting("the ticket office", "lower --buyers", died=_limits.FORK_DIED)
        with _signals.held(), refused:
            office.start()
        try:
            yield Tools(
                FileStore(setup.db_path),
                NoGuard(),
                OfficeClient(writer, replies, answered, setup.db_path),
            )
        except BaseException:
            office.kill()  # interrupted: nobody waits for the requests to be served
            raise
        else:
            close_office(writer)
        finally:
            # Every buyer is done, so the office has nothing left but the pill; one that
            # does not stop in time is stuck (a buyer died holding the answers' lock).
            office.join(OFFICE_CLOSE_S)
            if office.is_alive():
                office.kill()
                office.join(OFFICE_CLOSE_S)
            requests.close()
            writer.close()


STRATEGIES: Final[Mapping[StrategyName, Strategy]] = {
    strategy.name: strategy
    for strategy in (
        Unprotected(),
        MutexLock(),
        Semaphore(),
        FileLockStrategy(),
        ManagerStrategy(),
        ValueStrategy(),
        ArrayStrategy(),
        Office(),
        ValueUnlocked(),
        ArrayUnlocked(),
    )
}


def get(name: str) -> Strategy:
    """The strategy called ``name``; :class:`ConfigError` lists the choices otherwise."""
    # StrategyName members are str, so they and plain strings find the same entry.
    strategy: Strategy | None = STRATEGIES.get(name)  # type: ignore[call-overload]
    if strategy is None:
        choices = ", ".join(s.value for s in StrategyName)
        raise ConfigError("strategy", name, f"choose one of {choices}")
    return strategy
