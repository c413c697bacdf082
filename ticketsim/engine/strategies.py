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
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

from ticketsim.core.catalog import CATALOG, StrategyInfo, info
from ticketsim.core.names import StrategyName as StrategyName  # noqa: PLC0414 - re-exported
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


class Strategy(ABC):
    """How one strategy of the catalogue is built: :meth:`provide` makes its primitives.

    What the strategy claims is in :data:`~ticketsim.core.catalog.CATALOG` (``info``);
    a builder names its entry with ``name`` and makes only the parts.
    """

    name: ClassVar[StrategyName]

    @property
    def info(self) -> StrategyInfo:
        return CATALOG[self.name]

    @abstractmethod
    def provide(self, setup: Setup) -> contextlib.AbstractContextManager[Tools]:
        """Create this sale's primitives; clean them up on exit."""


#: How long the ticket office gets to take its poison pill and stop.
OFFICE_CLOSE_S: Final = 5.0


class Unprotected(Strategy):
    name = StrategyName.NONE

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        yield Tools(store=FileStore(setup.db_path, naive=True), guard=NoGuard())


class MutexLock(Strategy):
    name = StrategyName.LOCK

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        yield Tools(FileStore(setup.db_path), LockGuard(setup.ctx.Lock()))


class Semaphore(Strategy):
    name = StrategyName.SEMAPHORE

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        guard = LockGuard(setup.ctx.Semaphore(1), "multiprocessing.Semaphore(1)")
        yield Tools(FileStore(setup.db_path), guard)


def lock_file(db_path: str) -> str:
    """The lock file of the ``filelock`` strategy: next to the db, whoever runs the sale."""
    return os.path.realpath(db_path) + ".lock"


class FileLockStrategy(Strategy):
    name = StrategyName.FILELOCK

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        guard = FileLockGuard(lock_file(setup.db_path))
        guard.prepare()  # in the parent too: forked buyers inherit the import (not the lock)
        yield Tools(FileStore(setup.db_path), guard)


class ManagerStrategy(Strategy):
    name = StrategyName.MANAGER

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

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        count = _count(setup)
        guard = LockGuard(count.get_lock(), "Value.get_lock()")
        yield Tools(CountStore(count, setup.initial.tickets, _taken(setup)), guard)


class ValueUnlocked(Strategy):
    name = StrategyName.VALUE_UNLOCKED

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        store = CountStore(_count(setup), setup.initial.tickets, _taken(setup))
        yield Tools(store, NoGuard())


class ArrayStrategy(Strategy):
    name = StrategyName.ARRAY

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        seats = _seat_map(setup)
        yield Tools(SeatMapStore(seats), LockGuard(seats.get_lock(), "Array.get_lock()"))


class ArrayUnlocked(Strategy):
    name = StrategyName.ARRAY_UNLOCKED

    @contextlib.contextmanager
    def provide(self, setup: Setup) -> Iterator[Tools]:
        yield Tools(SeatMapStore(_seat_map(setup)), NoGuard())


class Office(Strategy):
    name = StrategyName.OFFICE

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
    return STRATEGIES[info(name).name]
