"""Run a sale: start the buyer processes, open the sale, collect the history.

:func:`run_sale` is the library's entry point. It never prints and never waits
without a bound: a sale that makes no progress for ``timeout`` seconds is marked
stalled, and every process it started is ended before it returns.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.pool
import os
import queue
import random
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ticketsim.analysis.checker import KILLED_ON_PURPOSE, check_db
from ticketsim.core import db as dbfile
from ticketsim.core import paths, schedule
from ticketsim.core._values import seconds
from ticketsim.core.events import ENDINGS, OUTCOMES, Event, Step
from ticketsim.core.names import DEFAULT_DB
from ticketsim.engine import strategies
from ticketsim.errors import ConfigError, DbError, PathError
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

    from ticketsim.core.schedule import Schedule

START_METHODS: Final = ("fork", "spawn", "forkserver")
#: Up to this many buyers, each buyer is a process of its own, named ``buyer-N``: the
#: lesson. A bigger sale runs its buyers as tasks of a crew of worker processes
#: (:func:`auto_workers`), so that how many processes are alive, and the memory they
#: take, stay bounded whatever the size of the sale.
PROCESS_PER_BUYER_MAX: Final = 200
#: Buyers are tasks, not processes, past ``PROCESS_PER_BUYER_MAX``; the history bounds how many.
MAX_BUYERS: Final = 100_000
MAX_WORKERS: Final = 1000
MAX_TICKETS: Final = 1_000_000
MAX_DELAY_S: Final = 60.0
MAX_TIMEOUT_S: Final = 3600.0
#: The shortest stall timeout: a buyer process must be able to start and take a step
#: in it on a loaded 2-core machine, or every sale would "stall" before it began.
MIN_TIMEOUT_S: Final = 1.0
#: The largest seed (a seed is any unsigned 64-bit number).
MAX_SEED: Final = 2**64 - 1
#: The race window of each buyer is ``delay * (1 + JITTER * u)``, ``u`` drawn from the seed.
JITTER: Final = 0.5
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


@dataclass(frozen=True)
class RunConfig:
    """One sale to run. Invalid values raise :class:`ConfigError` on construction."""

    buyers: int = 50
    tickets: int = 10
    strategy: str = strategies.StrategyName.NONE.value
    db_path: Path = DEFAULT_DB
    #: Race window between reading and writing, in seconds (jittered per buyer by ``seed``).
    delay: float = 0.1
    #: Seeds the jitter; ``None`` draws one, and the result records it.
    seed: int | None = None
    #: A sale that makes no progress for this many seconds is stalled and ended.
    timeout: float = 30.0
    #: ``None``: the platform's default start method.
    start_method: str | None = None
    #: Sell from the db as it is, instead of resetting it to ``tickets`` fresh tickets.
    keep: bool = False
    #: Run the buyers as tasks of a ``multiprocessing.Pool`` of this many workers.
    pool: int | None = None
    #: Controlled mode: grant the buyers' steps in this order (``"1r 2r 1w 2w"``, see
    #: :mod:`ticketsim.core.schedule`); steps it leaves out follow, in buyer order.
    schedule: str | None = None
    #: SIGKILL the first buyer to enter its critical section, while it is inside.
    kill_holder: bool = False
    #: SIGKILL this many buyers, chosen by ``seed``, each at a point chosen by ``seed``.
    kill: int = 0
    #: Force every buyer to read before any writes, then write in buyer order
    #: (unguarded strategies only): see :class:`ticketsim.sale.buyer.Lockstep`.
    lockstep: bool = False

    def __post_init__(self) -> None:
        require_int("buyers", self.buyers, 1, MAX_BUYERS, "buyers")
        if self.pool is not None:
            require_int("pool", self.pool, 1, MAX_WORKERS, "worker processes")
        require_int("tickets", self.tickets, 0, MAX_TICKETS, "tickets")
        require_seconds("delay", self.delay, 0.0, MAX_DELAY_S)
        _require_flags(self)
        if self.seed is not None:
            require_seed("seed", self.seed)
        if self.schedule is not None and not isinstance(self.schedule, str):
            raise ConfigError("schedule", self.schedule, "must be text like '1r 2r 1w 2w'")
        require_timeout("timeout", self.timeout)
        strategy = strategies.get(self.strategy)
        if self.start_method is not None and self.start_method not in START_METHODS:
            raise ConfigError(
                "start_method", self.start_method, f"choose one of {', '.join(START_METHODS)}"
            )
        if self.timeout <= self.delay * (1 + JITTER):
            raise ConfigError(
                "timeout",
                self.timeout,
                f"must be longer than the longest race window ({self.delay * (1 + JITTER):g} s "
                f"for delay={self.delay:g}); raise --timeout or lower --delay",
            )
        if self.lockstep and strategy.serialises:
            raise ConfigError(
                "lockstep",
                True,
                f"strategy {self.strategy!r} lets one buyer read at a time, so every buyer can "
                "never read before any writes; use lockstep with an unprotected strategy",
            )
        self._check_faults_and_forcing()

    def _check_faults_and_forcing(self) -> None:
        require_int("kill", self.kill, 0, self.buyers, "buyers to kill")
        if self.kill_holder or self.kill:
            name = "kill_holder" if self.kill_holder else "kill"
            if self.workers is not None:
                raise ConfigError(
                    name,
                    getattr(self, name),
                    "a killed pool worker takes its queued tasks with it; "
                    + ("drop --pool" if self.pool else self._one_each_hint),
                )
            if self.lockstep or self.schedule is not None:
                raise ConfigError(
                    name,
                    getattr(self, name),
                    "a forced interleaving waits for every buyer; drop --lockstep or --schedule",
                )
        forcing = "lockstep" if self.lockstep else "schedule" if self.schedule else None
        workers = self.workers
        if forcing and workers is not None and workers < self.buyers:
            raise ConfigError(
                forcing,
                getattr(self, forcing),
                f"every buyer must be running at once, and pool={self.pool} runs fewer than "
                f"buyers={self.buyers}; drop --pool or make it at least --buyers"
                if self.pool
                else f"every buyer must be running at once; {self._one_each_hint}",
            )
        if self.schedule is not None:
            if self.lockstep:
                raise ConfigError(
                    "lockstep", True, "a schedule already fixes the order; give one of them"
                )
            self.steps()  # parses, completes and checks it can run

    @property
    def workers(self) -> int | None:
        """How many worker processes run the buyers as tasks; ``None``: one process each."""
        if self.pool is not None:
            return self.pool
        return auto_workers() if self.buyers > PROCESS_PER_BUYER_MAX else None

    @property
    def crew(self) -> str:
        """Which processes run the buyers, in words, for the report."""
        workers = self.workers
        if workers is None:
            return "one process per buyer"
        if self.pool is not None:
            return f"{workers} worker processes (--pool {workers})"
        return (
            f"{workers} worker processes: past {PROCESS_PER_BUYER_MAX} buyers, "
            "buyers are tasks of a bounded crew (choose its size with --pool N)"
        )

    @property
    def _one_each_hint(self) -> str:
        return (
            f"that needs one process per buyer, which ticketsim runs up to "
            f"{PROCESS_PER_BUYER_MAX} buyers; lower --buyers"
        )

    def steps(self) -> Schedule:
        """The complete schedule of a controlled run; ConfigError if it cannot run."""
        if self.schedule is None:
            raise ValueError("this run has no schedule")
        try:
            steps = schedule.parse(self.schedule, self.buyers)
        except schedule.ScheduleError as exc:
            raise ConfigError("schedule", self.schedule, str(exc)) from None
        blocked = strategies.get(self.strategy).model().blocked_at(steps)
        if blocked is not None:
            raise ConfigError(
                "schedule",
                self.schedule,
                f"infeasible under {self.strategy}: {schedule.explain_blocked(steps, blocked)}",
            )
        return steps

    @property
    def db(self) -> str:
        return os.fspath(self.db_path)


#: The most buyers one pool task runs, one after another.
POOL_BATCH_MAX: Final = 25


def pool_batch(buyers: int, workers: int) -> int:
    """How many buyers one pool task runs: one each in a small sale, where each buyer a
    task is the lesson of ``--pool``; in a big one, up to ``POOL_BATCH_MAX``, while every
    worker still gets some four tasks, so that none is left with a long tail alone.
    2,000 buyers with ``lock`` on two workers sold 17% faster in batches of 25."""
    return max(1, min(POOL_BATCH_MAX, buyers // (4 * workers)))


def auto_workers() -> int:
    """The crew of a big sale: a worker process per core, and at least two, so that
    buyers overlap. More only queue for the lock: 2,000 buyers with ``lock`` and no
    race window sold fastest with two workers on two cores (2.3 s; 2.8 s with four)."""
    return max(2, os.cpu_count() or 1)


# One check per kind of value, used by RunConfig, the searches and the command line
# alike, so that a value is refused with the same words by every command that takes it.


def require_int(name: str, value: object, low: int, high: int, what: str) -> None:
    """A count or a bound: a whole number from ``low`` to ``high`` (``what`` names its unit)."""
    if type(value) is not int:
        raise ConfigError(name, value, f"must be a whole number of {what}")
    if not low <= value <= high:
        raise ConfigError(name, value, f"choose from {low} to {high} {what}")


def require_seed(name: str, value: object) -> None:
    """A seed: any unsigned 64-bit number."""
    require_int(name, value, 0, MAX_SEED, "(a seed)")


def require_seconds(name: str, value: object, low: float, high: float, why: str = "") -> None:
    """A duration from ``low`` to ``high`` seconds; ``why`` says why ``low`` is the least."""
    number = seconds(value)  # None for bools, strings, NaN, infinities and huge integers
    if number is None:
        raise ConfigError(name, value, "must be a number of seconds")
    if not low <= number <= high:
        raise ConfigError(name, value, f"choose at least {low:g} s and at most {high:g} s{why}")


def require_timeout(name: str, value: object) -> None:
    """A stall timeout: long enough for buyer processes to start and take a step."""
    require_seconds(
        name,
        value,
        MIN_TIMEOUT_S,
        MAX_TIMEOUT_S,
        ": a shorter wait would end a sale as stalled before its processes could start",
    )


def _require_flags(config: RunConfig) -> None:
    for name in ("keep", "lockstep", "kill_holder"):
        if not isinstance(getattr(config, name), bool):
            raise ConfigError(name, getattr(config, name), "must be true or false")


@dataclass(frozen=True)
class RunResult:
    """What happened in one sale: the raw material every report is derived from."""

    config: RunConfig
    start_method: str
    seed: int
    #: The db as the sale opened.
    initial: dbfile.TicketDB
    #: The db after the sale, or ``None`` if it could not be read back.
    final: dbfile.TicketDB | None
    #: Why ``final`` is ``None``.
    final_error: str | None
    history: tuple[Event, ...]
    #: ``time.monotonic()`` when the sale opened (buyers' event times are on this clock).
    opened_at: float
    #: Wall time from opening the sale to the last buyer's outcome (or the stall).
    elapsed_s: float
    #: ``None``, or why the sale was abandoned before every buyer finished.
    stalled: str | None = None
    #: Exit code of each buyer process (negative: killed by that signal).
    exit_codes: tuple[int | None, ...] = field(default=())
    #: The complete schedule a controlled run followed.
    schedule: str | None = None
    #: What injected faults did (``--kill-holder``, ``--kill``), in words.
    faults: tuple[str, ...] = ()
    #: Wall time from starting the first process to opening the sale (every buyer, or
    #: the first task of every pool worker, ready at the gate).
    startup_s: float = 0.0

    @property
    def safe(self) -> bool:
        return strategies.get(self.config.strategy).safe


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

    def faults(self, strategy: strategies.Strategy) -> tuple[str, ...]:
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
        with _limits.starting(f"what the {strategy.name.value} strategy shares", "lower --buyers"):
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
        faults=hooks.faults(strategy),
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
