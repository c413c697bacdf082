"""Strategies: how buyers share the tickets, and what (if anything) protects them.

A strategy is a registered combination of a **store**, a **guard** and the processes
that serve them, which it builds for one sale as the buyers' :class:`Tools`:

* the store (:mod:`ticketsim.sale.stores`) reads and sells: the db file itself, or a
  count or seat map in shared memory, or a manager's dict, that the parent writes back
  to the db once the sale is over;
* the guard (:mod:`ticketsim.sale.guards`) decides who may run the read-decide-write
  section (:func:`~ticketsim.sale.steps.take_ticket`); buyers that run it themselves
  hold it (:class:`GuardedTools`);
* or, instead of a guard, the **ticket office** (:mod:`ticketsim.sale.office`): one
  process that runs every read-decide-write and answers each buyer
  (:class:`~ticketsim.sale.office.OfficeTools`).

The buyer (:mod:`ticketsim.sale.buyer`) owns the order of the steps and asks its tools
to purchase; the runner owns the buyers' processes. A new strategy adds its name to
:class:`StrategyName` (in :mod:`ticketsim.core.names`, light for the command line) and
its claims to :data:`~ticketsim.core.catalog.CATALOG`, and one row to ``_ROWS`` here,
whose function builds its parts (:data:`STRATEGIES` is made from the rows); neither
the buyer nor the runner changes. A new store or guard is a subclass of
:class:`~ticketsim.sale.stores.base.Store` or :class:`~ticketsim.sale.guards.Guard`,
whose base class owns the protocol.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ticketsim.core.catalog import StrategyInfo, info
from ticketsim.core.frozen import frozen
from ticketsim.core.names import StrategyName as StrategyName  # noqa: PLC0414 - re-exported
from ticketsim.core.names import WorldName
from ticketsim.core.settings import START_TIMEOUT_S
from ticketsim.engine import databases
from ticketsim.engine.setup import Setup as Setup  # noqa: PLC0414 - re-exported
from ticketsim.errors import ConfigError
from ticketsim.sale import _limits, _signals
from ticketsim.sale.guards import FileLockGuard, Guard, LockGuard, NoGuard
from ticketsim.sale.office import PENDING, OfficeClient, OfficeTools, close_office, run_office
from ticketsim.sale.steps import GuardedTools
from ticketsim.sale.steps import Tools as Tools  # noqa: PLC0414 - re-exported
from ticketsim.sale.stores import (
    FREE,
    SOLD_BEFORE,
    CountStore,
    FileStore,
    ManagerStore,
    NaiveFileStore,
    SeatMapStore,
)
from ticketsim.sale.stores.file import TORN_GIVE_UP_S

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping


#: How a strategy builds one sale's parts, and cleans them up on exit.
Provide = Callable[[Setup], contextlib.AbstractContextManager[Tools]]


@frozen
class Strategy:
    """One registered strategy: its name in :data:`~ticketsim.core.catalog.CATALOG`,
    where what it claims is (``info``), and how it builds its parts (``provide``)."""

    name: StrategyName | WorldName
    provide: Provide

    @property
    def info(self) -> StrategyInfo:
        return info(self.name.value)


def _plain(tools: Callable[[Setup], Tools]) -> Provide:
    """A strategy whose parts need no cleaning up: the primitives go with the sale."""

    @contextlib.contextmanager
    def provide(setup: Setup) -> Iterator[Tools]:
        yield tools(setup)

    return provide


def _on_file(guard: Callable[[Setup], Guard]) -> Provide:
    """Buyers sell straight to the db file (atomic writes), under ``guard``."""
    return _plain(lambda setup: GuardedTools(FileStore(setup.db_path), guard(setup)))


def lock_file(db_path: str) -> str:
    """The lock file of the ``filelock`` strategy: next to the db, whoever runs the sale."""
    return os.path.realpath(db_path) + ".lock"


def _file_lock(setup: Setup) -> Guard:
    guard = FileLockGuard(lock_file(setup.db_path))
    guard.prepare()  # in the parent too: forked buyers inherit the import (not the lock)
    return guard


def _taken(setup: Setup) -> tuple[int, ...]:
    """The seats the db had sold when the sale opened (``--keep``), sorted."""
    return tuple(sorted(sale.seat for sale in setup.initial.ledger))


def _count(setup: Setup, guarded: bool) -> Tools:
    count = setup.ctx.Value("i", setup.initial.remaining)
    guard = LockGuard(count.get_lock(), "Value.get_lock()") if guarded else NoGuard()
    return GuardedTools(CountStore(count, setup.initial.tickets, _taken(setup)), guard)


def _seat_map(setup: Setup, guarded: bool) -> Tools:
    cells = [FREE] * setup.initial.tickets
    for seat in _taken(setup):  # a db --keep accepts holds only seats from 1 to tickets
        cells[seat - 1] = SOLD_BEFORE
    seats = setup.ctx.Array("i", cells)
    guard = LockGuard(seats.get_lock(), "Array.get_lock()") if guarded else NoGuard()
    return GuardedTools(SeatMapStore(seats), guard)


@contextlib.contextmanager
def _manager(setup: Setup) -> Iterator[Tools]:
    from ticketsim.sale._manager import serving  # noqa: PLC0415 - this strategy's alone

    with serving(setup.ctx) as manager:
        state = manager.dict(remaining=setup.initial.remaining)
        store = ManagerStore(state, setup.initial.tickets, _taken(setup))
        yield GuardedTools(store, LockGuard(manager.Lock(), "Manager().Lock()"))


#: How long the ticket office gets to take its poison pill and stop.
OFFICE_CLOSE_S: Final = 5.0


@contextlib.contextmanager
def _office(setup: Setup) -> Iterator[Tools]:
    ctx = setup.ctx
    requests, writer = ctx.Pipe(duplex=False)
    # Guarded by ``answered`` alone: the array's own lock, held by a buyer killed as it
    # read a cell, would hold up everyone, and without a bound.
    replies = ctx.Array("i", [PENDING] * (setup.buyers + 1), lock=False)
    answered = ctx.Condition()
    office = ctx.Process(  # type: ignore[attr-defined]
        target=run_office,
        name="ticket-office",
        # Idle that long, the sale is over or abandoned: the buyers may take the whole
        # start-up wait to be ready, then go quiet for the stall timeout.
        args=(
            setup.db_path,
            requests,
            replies,
            answered,
            setup.channel,
            max(setup.timeout, START_TIMEOUT_S) + setup.timeout,
        ),
        daemon=True,
    )
    # Daemonic and known once started: ended at exit if need be.
    refused = _limits.starting("the ticket office", "lower --buyers", died=_limits.FORK_DIED)
    with _signals.held(), refused:
        office.start()
    try:
        client = OfficeClient(writer, replies, answered, setup.db_path)
        yield OfficeTools(FileStore(setup.db_path), client)
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


def _naive(setup: Setup) -> NaiveFileStore:
    # Its buyers give up on a db that stays torn before the stall guard (the timeout)
    # ends the sale, so that the history says why they have no outcome.
    return NaiveFileStore(setup.db_path, give_up_s=min(TORN_GIVE_UP_S, setup.timeout / 2))


_ROWS: Final[tuple[tuple[StrategyName, Provide], ...]] = (
    (StrategyName.NONE, _plain(lambda s: GuardedTools(_naive(s), NoGuard()))),
    (StrategyName.LOCK, _on_file(lambda s: LockGuard(s.ctx.Lock()))),
    (
        StrategyName.SEMAPHORE,
        _on_file(lambda s: LockGuard(s.ctx.Semaphore(1), "multiprocessing.Semaphore(1)")),
    ),
    (StrategyName.FILELOCK, _on_file(_file_lock)),
    (StrategyName.MANAGER, _manager),
    (StrategyName.VALUE, _plain(lambda s: _count(s, guarded=True))),
    (StrategyName.ARRAY, _plain(lambda s: _seat_map(s, guarded=True))),
    (StrategyName.OFFICE, _office),
    (StrategyName.VALUE_UNLOCKED, _plain(lambda s: _count(s, guarded=False))),
    (StrategyName.ARRAY_UNLOCKED, _plain(lambda s: _seat_map(s, guarded=False))),
    *((name, functools.partial(databases.provide, name)) for name in databases.PLANS),
)

#: Every strategy, by name: a store, a guard (or the office) and the processes they need.
STRATEGIES: Final[Mapping[StrategyName, Strategy]] = {
    name: Strategy(name, provide) for name, provide in _ROWS
}


def get(name: str) -> Strategy:
    """The strategy called ``name``; :class:`ConfigError` lists the choices otherwise."""
    found = info(name).name
    if not isinstance(found, StrategyName):
        raise ConfigError("strategy", name, "runs on threads or asyncio tasks: add --workers")
    return STRATEGIES[found]
