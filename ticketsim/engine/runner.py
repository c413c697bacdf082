"""Run a sale: start the buyer processes, open the sale, collect the history.

:func:`run_sale` is the library's entry point. It never prints and never waits
without a bound: a sale that makes no progress for ``timeout`` seconds is marked
stalled, and every process it started is ended before it returns.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.pool
import queue
import random
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ticketsim.analysis.checker import KILLED_ON_PURPOSE, check_db
from ticketsim.core import db as dbfile
from ticketsim.core import paths, schedule
from ticketsim.core.events import ENDINGS, OUTCOMES, Event, Step
from ticketsim.core.result import RunResult
from ticketsim.core.settings import (
    JITTER,
    MAX_TICKETS,
    RunConfig,
)
from ticketsim.engine import strategies
from ticketsim.errors import DbError, PathError
from ticketsim.sale import _limits, _scratch, _signals
from ticketsim.sale.buyer import (
    BLOCKED,
    GONE,
    KILL_POINTS,
    BuyerSpec,
    Conductor,
    Killer,
    Lockstep,
    Pacer,
    init_pool_worker,
    run_buyer,
    run_pool_task,
)
from ticketsim.sale.channel import EventChannel

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext
    from multiprocessing.process import BaseProcess
    from pathlib import Path

    from ticketsim.core.catalog import StrategyInfo


#: Starting processes is slow under spawn on a busy machine, and not a stall: the sale
#: waits this long (or --timeout, if longer) for the first buyers to be ready.
START_TIMEOUT_S: Final = 30.0
#: How long the parent blocks on the event queue before it looks at the processes again.
_POLL_S: Final = 0.05
#: Grace given to a process to exit by itself once the sale is over or abandoned.
_JOIN_S: Final = 5.0
#: Buyers wait this many times the parent's stall timeout before giving up by
#: themselves, so that a stall is always seen (and reported) by the parent first;
#: their own limit only matters if the parent is gone.
BUYER_PATIENCE: Final = 2.0
_KILL_S: Final = 2.0


#: The most buyers one pool task runs, one after another.
POOL_BATCH_MAX: Final = 25


def pool_batch(buyers: int, workers: int) -> int:
    """How many buyers one pool task runs: one each in a small sale, where each buyer a
    task is the lesson of ``--pool``; in a big one, up to ``POOL_BATCH_MAX``, while every
    worker still gets some four tasks, so that none is left with a long tail alone.
    2,000 buyers with ``lock`` on two workers sold 17% faster in batches of 25."""
    return max(1, min(POOL_BATCH_MAX, buyers // (4 * workers)))


def window(delay: float, seed: int, number: int) -> float:
    """The race window of buyer ``number``: the same for the same seed, run after run."""
    return delay * (1 + JITTER * random.Random(f"{seed}/{number}").random())


def kill_plan(config: RunConfig, seed: int) -> tuple[int, ...]:
    """Who ``--kill N`` kills, and where: the same for the same seed, run after run."""
    rng = random.Random(f"{seed}/kill")
    plan = [0] * (config.buyers + 1)
    for victim in rng.sample(range(1, config.buyers + 1), config.kill):
        plan[victim] = rng.choice(sorted(KILL_POINTS))
    return tuple(plan)


def prepare_db(config: RunConfig) -> dbfile.TicketDB:
    """Reset the db to fresh tickets, or with ``keep``, load and vet the db as it is.

    Raises :class:`DbError` before anything is written if the db cannot be used (its
    path is vetted as every command's are: :func:`ticketsim.core.paths.vet`), and
    :class:`DbWriteError` if writing the fresh db fails.
    """
    path = config.db_path
    try:
        paths.vet(paths.db(path, keep=config.keep, lock=config.strategy == "filelock"))
    except PathError as exc:
        raise DbError(config.db, exc.problem, exc.advice) from None
    if config.keep:
        try:
            initial = dbfile.load(path)
        except DbError as exc:
            if exc.advice is not None:
                raise
            raise DbError(exc.path, exc.problem, "fix it, or run without --keep") from None
        problems = check_db(initial)
        if problems:
            raise DbError(config.db, problems[0].explanation, "reset it (run without --keep)")
        if initial.tickets > MAX_TICKETS:
            raise DbError(
                config.db,
                f"tickets={initial.tickets} is more than ticketsim sells ({MAX_TICKETS})",
                "reset it (run without --keep)",
            )
    # The default db's folder is made on first use; the vetting refused any other missing one.
    path.resolve().parent.mkdir(parents=True, exist_ok=True)
    dbfile.sweep_temp_files(path)  # a killed writer's leftovers, never a live one's
    if config.keep:
        return initial
    initial = dbfile.TicketDB.fresh(config.tickets)
    dbfile.write_atomic(path, initial)
    return initial


PacerFactory = Callable[["BaseContext", RunConfig], Pacer]
Watcher = Callable[[Event], None]


class _Crew(ABC):
    """The processes that run the buyers."""

    @abstractmethod
    def start(self, specs: list[BuyerSpec], args: tuple[Any, ...]) -> None: ...

    @property
    @abstractmethod
    def at_once(self) -> int:
        """How many buyers can be waiting at the gate together."""

    @abstractmethod
    def alive(self) -> bool: ...

    @abstractmethod
    def end(self, *, at_once: bool) -> set[int]:
        """Stop every process, waiting a bounded time for each (no time with
        ``at_once``); the numbers of the buyers ticketsim had to end itself."""

    @abstractmethod
    def exit_codes(self) -> tuple[int | None, ...]: ...


#: What to do when the machine refuses a buyer's process, or a pool worker.
_ONE_EACH_ADVICE: Final = "lower --buyers, or run them as tasks of a few processes (--pool N)"
_POOL_ADVICE: Final = "use a smaller --pool"


class _OneProcessEach(_Crew):
    """One ``multiprocessing.Process`` per buyer, named ``buyer-N``: the lesson's setup."""

    def __init__(self, ctx: BaseContext) -> None:
        self.ctx = ctx
        self.processes: list[BaseProcess] = []

    def start(self, specs: list[BuyerSpec], args: tuple[Any, ...]) -> None:
        for spec in specs:
            # typeshed's BaseContext lacks Process; every concrete context has it.
            process = self.ctx.Process(  # type: ignore[attr-defined]
                target=run_buyer, name=spec.name, args=(spec, *args), daemon=True
            )
            what = f"buyer {spec.number} of {len(specs)}"
            refused = _limits.starting(what, _ONE_EACH_ADVICE, died=_limits.FORK_DIED)
            with _signals.held(), refused:
                process.start()  # an interrupt now must find the buyer in the list
                self.processes.append(process)

    @property
    def at_once(self) -> int:
        return len(self.processes)

    def alive(self) -> bool:
        return any(p.is_alive() for p in self.processes)

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


class _PoolCrew(_Crew):
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

    def alive(self) -> bool:
        # A task whose worker was killed never becomes ready; the stall guard catches it.
        return not all(result.ready() for result, _ in self.tasks)

    def end(self, *, at_once: bool) -> set[int]:
        del at_once  # idle workers have nothing to finish
        # Buyers of an unfinished task that did finish are told apart by their history.
        unfinished = {s.number for result, chunk in self.tasks if not result.ready() for s in chunk}
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
        return unfinished

    def exit_codes(self) -> tuple[int | None, ...]:
        return ()


@dataclass
class _Hooks:
    """The pacer every buyer gets, and the parent's handles on it."""

    pacer: Pacer
    conductor: Conductor | None = None
    killed: Any = None

    def victims(self) -> dict[int, int]:
        """The buyers killed on purpose, and where (a key of ``KILL_POINTS``)."""
        if self.killed is None:
            return {}
        cells = self.killed.get_obj()[:]  # no lock: a victim may have died holding it
        return {number: point for number, point in enumerate(cells) if number and point}

    def faults(self, strategy: StrategyInfo) -> tuple[str, ...]:
        """What the injected faults did, in words, for the report."""
        return tuple(
            f"buyer-{number} was SIGKILLed {KILL_POINTS[point]}"
            + (f", holding {strategy.holding}" if point >= 2 and strategy.holding else "")
            for number, point in self.victims().items()
        )


def _hooks(ctx: BaseContext, config: RunConfig, seed: int, pacer: PacerFactory | None) -> _Hooks:
    if pacer is not None:
        made = pacer(ctx, config)
        # A caller's own Killer plans its kills as --kill does: they are faults, not deaths.
        return _Hooks(made, killed=made.killed if isinstance(made, Killer) else None)
    if config.kill_holder or config.kill:
        killed = ctx.Array("i", config.buyers + 1)
        return _Hooks(Killer(kill_plan(config, seed), killed, config.kill_holder), killed=killed)
    if config.schedule is not None:
        conductor = Conductor(ctx.Value("i", 0), ctx.Value("i", 0), ctx.Condition())
        return _Hooks(conductor, conductor=conductor)
    if config.lockstep:
        return _Hooks(Lockstep(ctx.Barrier(config.buyers), ctx.Value("i", 1), ctx.Condition()))
    return _Hooks(Pacer())


def _shared(
    ctx: BaseContext, config: RunConfig, seed: int, pacer: PacerFactory | None
) -> tuple[EventChannel, Any, _Hooks]:
    """What the parent shares with every buyer: the events' pipe, the gate, the hooks."""
    if ctx.get_start_method() == "forkserver":
        # Before the forkserver starts: it must die with ticketsim, and quietly.
        ctx.set_forkserver_preload(["__main__", "ticketsim.sale._forkserver"])
    # A pipe, semaphores, and under spawn or forkserver the resource tracker's process.
    with _limits.starting("the sale's pipe and shared locks", "lower --buyers"):
        channel = EventChannel(ctx)
        try:
            return channel, ctx.Event(), _hooks(ctx, config, seed, pacer)
        except BaseException:
            channel.close()
            raise


def run_sale(
    config: RunConfig, *, pacer: PacerFactory | None = None, watch: Watcher | None = None
) -> RunResult:
    """Run one sale as ``config`` says and return its history; never prints.

    ``watch`` is called with each event as it arrives (a live view, a progress bar).

    ``pacer`` builds hooks that force an interleaving (tests use it to kill a buyer
    inside its critical section, for example); ``config`` builds its own otherwise.
    On an interrupt (Ctrl-C, SIGTERM) every process is ended at once, the db keeps
    every sale made, and the interrupt goes on up.
    """
    _scratch.provide()  # before any process is started, so every one uses it
    ctx = multiprocessing.get_context(config.start_method)
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**32)
    strategy = strategies.get(config.strategy)
    initial = prepare_db(config)
    channel, gate, hooks = _shared(ctx, config, seed, pacer)
    workers = config.workers
    crew: _Crew = _PoolCrew(ctx, workers) if workers else _OneProcessEach(ctx)
    specs = [
        BuyerSpec(n, window(config.delay, seed, n), config.timeout * BUYER_PATIENCE)
        for n in range(1, config.buyers + 1)
    ]
    history: list[Event] = []
    stalled: str | None = None
    opened_at = time.monotonic()
    setup = strategies.Setup(ctx, config.db, initial, config.buyers, channel.sender, config.timeout)
    with contextlib.ExitStack() as stack:
        # Last, once the strategy's own processes (the ticket office) are gone too: a
        # writer killed between its write and removing the old db (which a buyer does
        # once it lets go of its lock) left that behind.
        stack.callback(dbfile.sweep_temp_files, config.db_path)
        stack.callback(channel.close)
        with _limits.starting(f"what the {config.strategy} strategy shares", "lower --buyers"):
            tools = stack.enter_context(strategy.provide(setup))
        interrupted: BaseException | None = None
        try:
            started_at = time.monotonic()
            crew.start(specs, (tools, channel.sender, gate, hooks.pacer))
            # Open the sale only when the buyers are waiting at the gate, so that
            # process start-up (slow under spawn) does not serialise them.
            starting = max(config.timeout, START_TIMEOUT_S)
            stalled = _start(channel, crew, history, starting, watch, ctx.get_start_method())
            opened_at = time.monotonic()
            gate.set()
            director = None
            if hooks.conductor is not None and stalled is None:
                director = _Director(hooks.conductor, config)
            if stalled is None:
                aborted = director.aborted if director else None
                stalled = _collect(
                    channel, crew, history, None, config.buyers, config.timeout, aborted, watch
                )
            stopped_at = time.monotonic()
            if director is not None:
                director.stop()
        except BaseException as exc:  # Ctrl-C, SIGTERM: end everything, keep every sale
            interrupted = exc
            raise
        finally:
            ended = crew.end(at_once=interrupted is not None or stalled is not None)
            _drain(channel, history)
            why = "the run was interrupted" if interrupted else (stalled or "the sale ended")
            history += _lost(config, history, crew.exit_codes(), ended, why, hooks.victims())
            history.sort(key=lambda e: e.t)
            # Even on an interrupt: an in-memory strategy's sales must reach the db.
            tools.store.settle(config.db, initial, history)
    outcomes = [e.t for e in history if e.step in OUTCOMES]
    ended_at = stopped_at if stalled or not outcomes else max(outcomes)
    final, final_error = _load_final(config.db_path)
    return RunResult(
        config=config,
        start_method=ctx.get_start_method(),
        seed=seed,
        initial=initial,
        final=final,
        final_error=final_error,
        history=tuple(history),
        opened_at=opened_at,
        elapsed_s=max(0.0, ended_at - opened_at),
        stalled=stalled,
        exit_codes=crew.exit_codes(),
        schedule=str(config.steps()) if config.schedule is not None else None,
        faults=hooks.faults(strategy.info),
        startup_s=max(0.0, opened_at - started_at),
    )


def _load_final(path: Path) -> tuple[dbfile.TicketDB | None, str | None]:
    """The db after the sale, or why it cannot be read (a finding, not an error)."""
    try:
        return dbfile.load(path), None
    except DbError as exc:
        return None, exc.reason


class _Director:
    """Controlled mode, in the parent: grant the schedule's steps one at a time.

    Runs in a thread beside the event collection. It stops at the first step a buyer
    reports as blocked or does not finish in time; ``aborted`` then says why.
    """

    def __init__(self, conductor: Conductor, config: RunConfig) -> None:
        self.conductor = conductor
        self.steps = config.steps()
        self.timeout = config.timeout
        self.reason: str | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ticketsim-director", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        gone: set[int] = set()
        for index, action in enumerate(self.steps.actions):
            if self._stopped.is_set():
                return
            if action.buyer in gone:
                continue
            report = self.conductor.grant(action.buyer, self.timeout)
            if report is None:
                self.reason = f"step {index + 1} ({action}) did not finish in {self.timeout:g} s"
            elif report == BLOCKED:
                self.reason = f"schedule infeasible: {schedule.explain_blocked(self.steps, index)}"
            elif report == GONE:
                gone.add(action.buyer)
                continue
            if self.reason is not None:
                return

    def aborted(self) -> str | None:
        return self.reason

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(self.timeout)


def _collect(
    channel: EventChannel,
    crew: _Crew,
    history: list[Event],
    until: Step | None,
    expected: int,
    timeout: float,
    aborted: Callable[[], str | None] | None = None,
    watch: Watcher | None = None,
) -> str | None:
    """Gather events until ``expected`` buyers have sent ``until`` (``None``: an outcome).

    Returns ``None`` when they all did or every process has exited, or why the wait
    was abandoned: no progress for ``timeout`` seconds. Progress is a buyer reaching
    ``until`` or, in the sale, learning its outcome (``ok``, ``fail``): a retried read
    or a buyer giving up is not, or buyers that only retry would never stall.
    """
    steps = OUTCOMES if until is None else frozenset({until})
    progress = _ANSWERS if until is None else steps
    # A buyer that has already finished has certainly passed READY.
    done = {e.buyer for e in history if e.step in steps or e.step in OUTCOMES}
    last_progress = time.monotonic()
    while len(done) < expected:
        reason = aborted() if aborted else None
        if reason is not None:
            return reason
        try:
            event = channel.get(timeout=_POLL_S)
        except queue.Empty:
            if not crew.alive():
                # Every process has exited and the pipe is empty: the buyers still
                # missing died without a word. The sale is over, not stalled; the
                # report counts them as unknown outcomes.
                return None
            idle = time.monotonic() - last_progress
            if idle > timeout:
                return _no_progress(idle, expected - len(done), until, history, last_progress)
            continue
        history.append(event)
        if watch is not None:
            watch(event)
        now = time.monotonic()
        if event.step in progress:
            last_progress = now
        if event.step in steps or event.step in OUTCOMES:
            done.add(event.buyer)
        if len(done) < expected and now - last_progress > timeout:
            # Events that are not progress keep coming (torn reads, buyers giving up):
            # the sale is stalled all the same, and must be seen to be within its timeout.
            idle = now - last_progress
            return _no_progress(idle, expected - len(done), until, history, last_progress)
    return None


#: What counts as progress once the sale is open: a buyer told yes or no.
_ANSWERS: Final = frozenset({Step.OK, Step.FAIL})


def _no_progress(
    idle: float, owed: int, until: Step | None, history: list[Event], since: float
) -> str:
    """Why a wait was abandoned, with what the buyers did meanwhile that was not progress."""
    waiting = "an outcome" if until is None else f"{until.value!r}"
    reason = f"no progress for {idle:.1f} s: {owed} buyer(s) still owed {waiting}"
    busy = Counter(e.step for e in history if e.t >= since and e.step in _BUSY)
    if busy:
        what = ", ".join(f"{n} {_BUSY[step]}" for step, n in sorted(busy.items()))
        reason += f" (meanwhile {what})"
    return reason


#: Events that show buyers busy without progress, in the words of a stall's reason.
_BUSY: Final = {Step.TORN: "torn read(s) retried", Step.ERROR: "buyer(s) gave up"}


def _start(
    channel: EventChannel,
    crew: _Crew,
    history: list[Event],
    timeout: float,
    watch: Watcher | None,
    start_method: str,
) -> str | None:
    """Wait for every buyer running at once to be ready; why not, if they were not."""
    stalled = _collect(channel, crew, history, Step.READY, crew.at_once, timeout, None, watch)
    unready = stalled is not None and not any(e.step is Step.READY for e in history)
    if unready and start_method != "fork":
        stalled = _unready(start_method, f"{stalled}; no buyer ever got ready")
    return stalled


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


def _lost(
    config: RunConfig,
    history: list[Event],
    exit_codes: tuple[int | None, ...],
    ended: set[int],
    why: str,
    victims: dict[int, int],
) -> list[Event]:
    """A ``lost`` event for every buyer whose history has no ending: its outcome is
    unknown, and the history says so (Jepsen's ``info``) instead of going quiet. The
    note says how it ended, and for a death nobody planned, what to do about it."""
    finished = {e.buyer for e in history if e.step in ENDINGS}
    pids = {e.buyer: e.pid for e in history if e.step is Step.READY}
    now = time.monotonic()
    lost = []
    for number in range(1, config.buyers + 1):
        if number in finished:
            continue
        code = exit_codes[number - 1] if number <= len(exit_codes) else None
        if number in victims:
            note = f"{KILLED_ON_PURPOSE}: SIGKILLed {KILL_POINTS[victims[number]]}"
        elif number in ended:
            note = f"ended by ticketsim: {why}"
        elif code is not None and code < 0:
            note = f"its process was killed by {signal.Signals(-code).name}"
        elif code is not None and number not in pids:
            died = f"its process exited with code {code} before it was ready"
            note = _unready(config.start_method, died)
        elif code is not None:
            note = f"its process exited with code {code} and no outcome"
        else:
            note = "its pool task never finished"
        lost.append(Event(number, Step.LOST, now, pids.get(number, 0), note=note))
    return lost


def _unready(start_method: str | None, what: str) -> str:
    """``what`` (buyers that never got ready), and the usual cause under this start method:
    a pool's workers that die as they start are replaced forever, so a crew says it
    only by stalling."""
    method = start_method or multiprocessing.get_start_method()
    if method == "fork":
        return what + " (its stderr says why)"
    return what + (
        ": under spawn and forkserver the main module is imported again in every buyer, "
        'so a script must start the sale under `if __name__ == "__main__":`'
    )


def _drain(channel: EventChannel, history: list[Event]) -> None:
    """Keep the events that arrived after the collection stopped (a stalled sale's last words).

    Called once every process has exited, so whatever they wrote is in the pipe already.
    """
    while True:
        try:
            history.append(channel.get(timeout=0))
        except queue.Empty:
            return
