"""The processes that run a sale's buyers: one each (the lesson), or a pool's workers.

Either way the parent knows every process it started, so that it can end them all,
whatever happens: a stall, a refusal of the machine, an interrupt.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Final

from ticketsim.sale import _limits, _signals
from ticketsim.sale.buyer import (
    BuyerSpec,
    init_pool_worker,
    run_buyer_process,
    run_pool_task,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection
    from multiprocessing.context import BaseContext
    from multiprocessing.process import BaseProcess

#: Grace given to a process to exit by itself once the sale is over or abandoned.
_JOIN_S: Final = 5.0
#: How long ending a process that was told to stop may take, at each step.
_KILL_S: Final = 2.0


def crew_for(ctx: BaseContext, workers: int | None) -> Crew:
    """The crew of a sale: a pool of ``workers``, or with ``None`` one process per buyer."""
    return PoolCrew(ctx, workers) if workers else OneProcessEach(ctx)


class Crew(ABC):
    """The processes that run the buyers."""

    @abstractmethod
    def start(self, specs: list[BuyerSpec], args: tuple[Any, ...]) -> None: ...

    @property
    @abstractmethod
    def at_once(self) -> int:
        """How many buyers can be waiting at the gate together."""

    @abstractmethod
    def alive(self, ended: Collection[int] = frozenset()) -> bool:
        """Whether a process still runs a buyer, not counting the buyers ``ended``
        (their processes may wait for the sale to be over)."""

    @abstractmethod
    def end(self, *, at_once: bool) -> set[int]:
        """Stop every process, waiting a bounded time for each (no time with
        ``at_once``); the numbers of the buyers ticketsim had to end itself."""

    @abstractmethod
    def exit_codes(self) -> tuple[int | None, ...]: ...


#: What to do when the machine refuses a buyer's process, or a pool worker.
_ONE_EACH_ADVICE: Final = "lower --buyers, or run them as tasks of a few processes (--pool N)"
_POOL_ADVICE: Final = "use a smaller --pool"


class OneProcessEach(Crew):
    """One ``multiprocessing.Process`` per buyer, named ``buyer-N``: the lesson's setup."""

    def __init__(self, ctx: BaseContext) -> None:
        self.ctx = ctx
        self.processes: list[BaseProcess] = []

    def start(self, specs: list[BuyerSpec], args: tuple[Any, ...]) -> None:
        # Every Process is made before the first is started: a fork leaves the parent's
        # memory shared with the child, and each page the parent then writes is copied
        # (a fault) before the next fork shares it again. What is made between forks
        # is paid for again and again.
        made = [
            # typeshed's BaseContext lacks Process; every concrete context has it.
            self.ctx.Process(  # type: ignore[attr-defined]
                target=run_buyer_process, name=spec.name, args=(spec, *args), daemon=True
            )
            for spec in specs
        ]
        _signals.load_in_parent()
        holding = _signals.held()  # entered for each buyer, made once
        for spec, process in zip(specs, made, strict=True):
            with holding:
                try:
                    process.start()  # an interrupt now must find the buyer in the list
                except (OSError, RuntimeError, EOFError) as exc:
                    what = f"buyer {spec.number} of {len(specs)}"
                    refused = _limits.refusal(exc, what, _ONE_EACH_ADVICE, died=_limits.FORK_DIED)
                    if refused is None:
                        raise
                    raise refused from exc
                self.processes.append(process)

    @property
    def at_once(self) -> int:
        return len(self.processes)

    def alive(self, ended: Collection[int] = frozenset()) -> bool:
        return any(p.is_alive() for n, p in enumerate(self.processes, start=1) if n not in ended)

    def end(self, *, at_once: bool) -> set[int]:
        ended = _end(self.processes, grace=0.0 if at_once else _JOIN_S)
        return {n for n, process in enumerate(self.processes, start=1) if process in ended}

    def exit_codes(self) -> tuple[int | None, ...]:
        return tuple(p.exitcode for p in self.processes)


def _abandon_pool(workers: set[BaseProcess], threads: set[threading.Thread]) -> None:
    """End what a Pool that failed to start left running (the sets: what ran before).

    A Pool whose threads were refused keeps the workers it started, and its worker
    handler, if it started, replaces each one that dies. So the handler is told to stop
    first (the state its loop reads), then the workers are SIGKILLed: one still starting
    holds the signals it was started with and is not yet tied to ticketsim.
    """
    import multiprocessing.pool  # noqa: PLC0415 - a sale of one process each uses no pool

    handlers = [t for t in set(threading.enumerate()) - threads if hasattr(t, "_state")]
    for handler in handlers:  # the Pool's handler threads carry the state they loop on
        setattr(handler, "_state", multiprocessing.pool.TERMINATE)  # noqa: B010
    for handler in handlers:
        if handler.name.endswith("(_handle_workers)"):  # the others block on their queues
            handler.join(_KILL_S)
    started = set(multiprocessing.active_children()) - workers
    for process in started:
        with contextlib.suppress(OSError, ValueError):
            process.kill()
    for process in started:
        process.join(_KILL_S)


class PoolCrew(Crew):
    """Buyers as ``apply_async`` tasks of a ``multiprocessing.Pool`` of ``size`` workers.

    Locks cannot be task arguments; they reach the workers through the initializer.
    """

    def __init__(self, ctx: BaseContext, size: int) -> None:
        self.ctx = ctx
        self.size = size
        self.pool: Any = None
        #: Each task's result, and the buyers it runs.
        self.tasks: list[tuple[Any, tuple[BuyerSpec, ...]]] = []

    def start(self, specs: list[BuyerSpec], args: tuple[Any, ...]) -> None:
        size = min(self.size, len(specs))
        # As for one process each: no worker unknown to the parent. A Pool whose own
        # threads are refused has started workers it keeps to itself: they die with
        # ticketsim (see _signals), which exits with the refusal.
        what = f"a pool of {size} worker processes"
        workers, threads = set(multiprocessing.active_children()), set(threading.enumerate())
        try:
            with _signals.held(), _limits.starting(what, _POOL_ADVICE, died=_limits.FORK_DIED):
                self.pool = self.ctx.Pool(size, initializer=init_pool_worker, initargs=args)
        except BaseException:
            # A pool that was made (a Ctrl-C held back while it started lands here) is
            # ended by end(): its terminate needs its workers alive, since an idle one
            # holds the task queue's lock, and one killed holding it hangs terminate.
            if self.pool is None:
                _abandon_pool(workers, threads)
            raise
        batch = pool_batch(len(specs), self.size)
        for first in range(0, len(specs), batch):
            chunk = tuple(specs[first : first + batch])
            self.tasks.append((self.pool.apply_async(run_pool_task, (chunk,)), chunk))

    @property
    def at_once(self) -> int:
        return min(self.size, len(self.tasks))

    def alive(self, ended: Collection[int] = frozenset()) -> bool:
        del ended  # a worker runs many buyers; it is done when its tasks are
        # A task whose worker was killed never becomes ready; the stall guard catches it.
        return not all(result.ready() for result, _ in self.tasks)

    def end(self, *, at_once: bool) -> set[int]:
        # Buyers of an unfinished task that did finish are told apart by their history.
        unfinished = {s.number for result, chunk in self.tasks if not result.ready() for s in chunk}
        pool = self.pool
        if pool is None:
            return unfinished
        # Every task done: the workers are only told to stop, and stop at that word.
        # terminate() SIGTERMs them instead, and one that dies holding a queue's lock (an
        # idle worker holds the task queue's while it waits) leaves the pool's threads
        # waiting for it for ever: so each way is given a bound, and last the workers are
        # SIGKILLed and the pool's threads left to the process's end.
        if not at_once and not unfinished:
            pool.close()
            if _within(pool.join, _JOIN_S):
                return unfinished
        workers = list(getattr(pool, "_pool", ()))
        if not _within(lambda: (pool.terminate(), pool.join()), _JOIN_S):
            for worker in workers:
                with contextlib.suppress(OSError, ValueError):
                    worker.kill()
            for worker in workers:
                with contextlib.suppress(ValueError):
                    worker.join(_KILL_S)
        return unfinished

    def exit_codes(self) -> tuple[int | None, ...]:
        return ()


def _within(action: Callable[[], object], seconds: float) -> bool:
    """Run ``action`` in a thread of its own, and wait for it at most ``seconds``:
    whether it finished. One that did not is left running (a daemon thread)."""
    thread = threading.Thread(target=action, name="ticketsim-pool-end", daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def _end(processes: list[BaseProcess], grace: float) -> list[BaseProcess]:
    """Join every process for up to ``grace`` seconds in all; terminate, then kill,
    whatever is still running. Returns the processes it had to end."""
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    ended = [p for p in processes if p.is_alive()]
    for process in ended:
        process.terminate()
    for process in ended:
        process.join(_KILL_S)
        if process.is_alive():
            process.kill()
            process.join(_KILL_S)
    return ended


#: The most buyers one pool task runs, one after another.
POOL_BATCH_MAX: Final = 25


def pool_batch(buyers: int, workers: int) -> int:
    """How many buyers one pool task runs: one each in a small sale, where each buyer a
    task is the lesson of ``--pool``; in a big one, up to ``POOL_BATCH_MAX``, while every
    worker still gets some four tasks, so that none is left with a long tail alone.
    A batch is one trip through the pool's queues instead of one per buyer, which is
    what a big sale spends its time on otherwise."""
    return max(1, min(POOL_BATCH_MAX, buyers // (4 * workers)))
