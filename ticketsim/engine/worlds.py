"""Buyers that are threads or asyncio tasks (``--workers``), and the module-global
counter: how each such strategy is built, and the crew that runs its buyers.

Registered here in one place, beside :data:`ticketsim.engine.strategies.STRATEGIES`
(the strategies of buyer processes), by worker kind and name; what each claims is in
:data:`ticketsim.core.catalog.WORLDS` (or :data:`~ticketsim.core.catalog.CATALOG` for
the process strategies that threads can use too).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import types
from typing import TYPE_CHECKING, Final

from ticketsim.core.names import StrategyName, WorkerKind, WorldName
from ticketsim.engine import strategies
from ticketsim.engine.crews import Crew, crew_for
from ticketsim.engine.strategies import Provide, Setup, Strategy
from ticketsim.engine.tasks import TaskCrew
from ticketsim.engine.threads import ThreadCrew
from ticketsim.errors import ConfigError
from ticketsim.sale.buyer import Lockstep, Pacer
from ticketsim.sale.guards import LockGuard, NoGuard
from ticketsim.sale.steps import GuardedTools, Tools
from ticketsim.sale.stores import FileStore
from ticketsim.sale.stores.module_global import GlobalCounterStore, open_sale
from ticketsim.sale.tasks import (
    GuardedTaskTools,
    NoTaskGuard,
    TaskBarrier,
    TaskGuard,
    TaskLockGuard,
    TaskLockstep,
    TaskOfficeTools,
    TaskTools,
)
from ticketsim.sale.threads import ThreadOfficeTools

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from multiprocessing.context import BaseContext

    from ticketsim.core.settings import RunConfig


def _global_counter(setup: Setup) -> Tools:
    taken = tuple(sorted(sale.seat for sale in setup.initial.ledger))
    # Set in the parent as the sale opens: a forked buyer inherits this copy, buyer
    # threads share it.
    open_sale(setup.initial.remaining)
    store = GlobalCounterStore(setup.initial.tickets, setup.initial.remaining, taken)
    return GuardedTools(store, NoGuard())


def _plain(tools: Callable[[Setup], Tools | TaskTools]) -> Provide:
    @contextlib.contextmanager
    def provide(setup: Setup) -> Iterator[Tools]:
        # A task's tools go where a process's go: the crew of tasks knows them.
        yield tools(setup)  # type: ignore[misc]

    return provide


@contextlib.contextmanager
def _thread_office(setup: Setup) -> Iterator[Tools]:
    tools = ThreadOfficeTools(FileStore(setup.db_path))
    writer = tools.start()
    try:
        yield tools
    finally:
        tools.stop()
        writer.join(strategies.OFFICE_CLOSE_S)  # a daemon: one that hangs is left behind


def _task(guard: Callable[[], TaskGuard], *, yields: bool = True) -> Provide:
    """Buyer tasks sell straight to the db file, under a guard made for each sale (an
    asyncio lock belongs to the loop that first waits on it)."""
    return _plain(lambda setup: GuardedTaskTools(FileStore(setup.db_path), guard(), yields))


_ROWS: Final[tuple[tuple[WorkerKind, StrategyName | WorldName, Provide], ...]] = (
    (WorkerKind.PROCESSES, WorldName.GLOBAL_COUNTER, _plain(_global_counter)),
    (WorkerKind.THREADS, WorldName.GLOBAL_COUNTER, _plain(_global_counter)),
    # The process strategies that mean something among threads: the same builders.
    *(
        (WorkerKind.THREADS, name, strategies.STRATEGIES[name].provide)
        for name in (
            StrategyName.NONE,
            StrategyName.LOCK,
            StrategyName.SEMAPHORE,
            StrategyName.FILELOCK,
        )
    ),
    (
        WorkerKind.THREADS,
        WorldName.THREAD_LOCK,
        _plain(
            lambda s: GuardedTools(
                FileStore(s.db_path), LockGuard(threading.Lock(), "threading.Lock")
            )
        ),
    ),
    (
        WorkerKind.THREADS,
        WorldName.THREAD_SEMAPHORE,
        _plain(
            lambda s: GuardedTools(
                FileStore(s.db_path), LockGuard(threading.Semaphore(1), "threading.Semaphore(1)")
            )
        ),
    ),
    (WorkerKind.THREADS, WorldName.THREAD_OFFICE, _thread_office),
    (WorkerKind.ASYNCIO, WorldName.TASK_NONE, _task(NoTaskGuard)),
    (WorkerKind.ASYNCIO, WorldName.TASK_NO_AWAIT, _task(NoTaskGuard, yields=False)),
    (WorkerKind.ASYNCIO, WorldName.TASK_LOCK, _task(lambda: TaskLockGuard(asyncio.Lock()))),
    (
        WorkerKind.ASYNCIO,
        WorldName.TASK_SEMAPHORE,
        _task(lambda: TaskLockGuard(asyncio.Semaphore(1), "asyncio.Semaphore(1)")),
    ),
    (
        WorkerKind.ASYNCIO,
        WorldName.TASK_OFFICE,
        _plain(lambda s: TaskOfficeTools(FileStore(s.db_path))),
    ),
)

#: Every strategy of threads and tasks, and the global counter, by worker kind and name.
WORLD_STRATEGIES: Final[Mapping[tuple[WorkerKind, str], Strategy]] = {
    (kind, name.value): Strategy(name, provide) for kind, name, provide in _ROWS
}


def get(kind: WorkerKind, name: str) -> Strategy:
    """The strategy ``name`` built for ``kind`` of workers."""
    found = WORLD_STRATEGIES.get((kind, name))
    if found is not None:
        return found
    if kind is WorkerKind.PROCESSES:
        return strategies.get(name)
    raise ConfigError("workers", kind.value, f"--strategy {name} has no {kind.value} version")


def crew(config: RunConfig, ctx: BaseContext) -> Crew:
    """The crew that runs the buyers of ``config``'s kind."""
    if config.kind is WorkerKind.THREADS:
        return ThreadCrew()
    if config.kind is WorkerKind.ASYNCIO:
        pacer = TaskLockstep(TaskBarrier(config.buyers)) if config.lockstep else None
        return TaskCrew(pacer)
    return crew_for(ctx, config.workers)


def thread_pacer(config: RunConfig) -> Pacer:
    """The pacer of a thread sale: threading's own lockstep, or none."""
    if not config.lockstep:
        return Pacer()
    cell = types.SimpleNamespace(value=1)  # a Value's interface, for Lockstep
    return Lockstep(threading.Barrier(config.buyers), cell, threading.Condition())
