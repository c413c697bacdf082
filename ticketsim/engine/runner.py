"""Run a sale: start the buyer processes, open the sale, collect the history.

:func:`run_sale` is the library's entry point. It never prints and never waits
without a bound: a sale that makes no progress for ``timeout`` seconds is marked
stalled, and every process it started is ended before it returns. The processes are
a crew's (:mod:`ticketsim.engine.crews`), the events an inbox's
(:mod:`ticketsim.engine.collect`).
"""

from __future__ import annotations

import contextlib
import functools
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ticketsim.analysis.checker import check_db
from ticketsim.core import catalog, paths, stores
from ticketsim.core import db as dbfile
from ticketsim.core._files import sweep_temp_files
from ticketsim.core.events import ENDINGS, KILLED_ON_PURPOSE, OUTCOMES, Event, Step
from ticketsim.core.names import WorkerKind
from ticketsim.core.result import RunResult
from ticketsim.core.settings import JITTER, MAX_TICKETS, START_TIMEOUT_S, RunConfig
from ticketsim.engine import databases, strategies
from ticketsim.engine.collect import Inbox, Watcher, unready_because
from ticketsim.engine.crews import crew_for
from ticketsim.errors import DbError, PathError, ServerUnavailable, StoreError
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
    PauseHolder,
)
from ticketsim.sale.channel import EventChannel
from ticketsim.sale.gate import StartGate

if TYPE_CHECKING:
    from collections.abc import Mapping
    from multiprocessing.context import BaseContext

    from ticketsim.core.catalog import StrategyInfo
    from ticketsim.core.names import StoreKind
    from ticketsim.engine.crews import Crew
    from ticketsim.engine.strategies import Strategy
    from ticketsim.sale.steps import Tools

__all__ = [
    "BUYER_PATIENCE",
    "START_TIMEOUT_S",
    "PacerFactory",
    "Watcher",
    "kill_plan",
    "lost_events",
    "prepare_db",
    "run_sale",
    "vet_db",
    "window",
]

#: Buyers wait this many times the parent's stall timeout before giving up by
#: themselves, so that a stall is always seen (and reported) by the parent first;
#: their own limit only matters if the parent is gone.
BUYER_PATIENCE: Final = 2.0


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


@functools.cache
def _sweep_servers() -> None:
    """Once a process, as multiprocessing's folders are swept: remove the folders of
    private servers whose ticketsim was SIGKILLed (its servers died with it), which
    only a server's start removed before, whatever store the next sales used."""
    from ticketsim.servers import _folder  # noqa: PLC0415 - not the servers themselves

    _folder.sweep()


def prepare_db(config: RunConfig) -> dbfile.TicketDB:
    """Reset the db to fresh tickets, or with ``keep``, load and vet the db as it is.

    Raises :class:`DbError` (or :class:`StoreError`) before anything is written if the
    db, or a file the sale would use beside it, cannot be used (:func:`vet_db`), and
    :class:`DbWriteError` if writing the fresh db fails.
    """
    _sweep_servers()  # every sale's, whatever its store: one on a server may follow
    if config.store is not None:  # the user's store is the record: the db file is not used
        return _prepare_store(config)
    kept = vet_db(config)
    path = config.db_path
    dbfile.make_room(path)
    if kept is not None:
        return kept
    initial = dbfile.TicketDB.fresh(config.tickets)
    dbfile.write_atomic(path, initial)
    return initial


def vet_db(config: RunConfig) -> dbfile.TicketDB | None:
    """Everything :func:`prepare_db` checks, with nothing written: the db's path (vetted
    as every command's are: :func:`ticketsim.core.paths.vet`), its lock file, a SQLite
    strategy's file beside it, and with ``keep``, the db itself, which it returns.
    A command that runs several sales calls it for each before the first one starts."""
    if config.store is not None:
        return None  # the user's store: vetted by its own load, before it writes
    path = config.db_path
    try:
        paths.vet(*paths.of_sales(path, [config.strategy], keep=config.keep))
    except PathError as exc:
        if exc.option != "--db":
            raise  # the SQLite file beside it, named as such
        raise DbError(config.db, exc.problem, exc.advice) from None
    if stores.sqlite_file(None, config.strategy, path) is not None:
        databases.vet_sqlite_beside(path)
    if not config.keep:
        return None
    try:
        initial = dbfile.load(path, keeping=True)
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
    return initial


def _prepare_store(config: RunConfig) -> dbfile.TicketDB:
    """The user's store as the sale opens: fresh tickets, or with ``keep``, as it is."""
    store = databases.user_store(config.store or "", strategy=config.strategy)
    if config.strategy in databases.PLANS:  # its buyers connect to it, each on its own
        # Over hosts every buyer is a process of its own: --pool is refused there.
        advice = None if config.hosts is None else "raise that limit, or lower --buyers"
        shown = stores.parse(config.store or "").shown
        databases.require_room(store, config.connections, shown, advice)
    if config.keep:
        initial = store.snapshot()
        problems = check_db(initial)
        if problems:
            raise StoreError(
                stores.parse(config.store or "").shown,
                problems[0].explanation,
                "reset it (run without --keep)",
            )
        store.keep(initial)
        return initial
    initial = dbfile.TicketDB.fresh(config.tickets)
    store.load(initial)
    return initial


PacerFactory = Callable[["BaseContext", RunConfig], Pacer]


@dataclass
class _Hooks:
    """The pacer every buyer gets, and the parent's handles on it."""

    pacer: Pacer
    conductor: Conductor | None = None
    killed: Any = None
    paused: PauseHolder | None = None

    def victims(self) -> dict[int, int]:
        """The buyers killed on purpose, and where (a key of ``KILL_POINTS``)."""
        if self.killed is None:
            return {}
        cells = self.killed.get_obj()[:]  # no lock: a victim may have died holding it
        return {number: point for number, point in enumerate(cells) if number and point}

    def faults(self, strategy: StrategyInfo) -> tuple[str, ...]:
        """What the injected faults did, in words, for the report."""
        if self.paused is not None and self.paused.paused.get_obj().value:
            number = self.paused.paused.get_obj().value
            return (
                f"buyer-{number} was SIGSTOPped just after its read"
                + (f", holding {strategy.holding}" if strategy.holding else "")
                + ", and SIGCONTed once every other buyer had its outcome",
            )
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
    if config.pause_holder:
        paused = PauseHolder(
            ctx.Value("i", 0), ctx.Value("i", 0), ctx.Value("i", 0), ctx.Condition(), config.buyers
        )
        return _Hooks(paused, paused=paused)
    if config.schedule is not None:
        conductor = Conductor(ctx.Value("i", 0), ctx.Value("i", 0), ctx.Condition())
        return _Hooks(conductor, conductor=conductor)
    if config.lockstep:
        return _Hooks(Lockstep(ctx.Barrier(config.buyers), ctx.Value("i", 1), ctx.Condition()))
    return _Hooks(Pacer())


def _shared(
    ctx: BaseContext, config: RunConfig, seed: int, pacer: PacerFactory | None
) -> tuple[EventChannel, StartGate, _Hooks]:
    """What the parent shares with every buyer: the events' pipe, the gate, the hooks."""
    if ctx.get_start_method() == "forkserver":
        # Before the forkserver starts: it must die with ticketsim, and quietly.
        ctx.set_forkserver_preload(["__main__", "ticketsim.sale._forkserver"])
    # A pipe, semaphores, and under spawn or forkserver the resource tracker's process.
    with _limits.starting("the sale's pipe and shared locks", "lower --buyers"):
        channel = EventChannel(ctx)
        gate = None
        try:
            gate = StartGate(ctx)
            if config.kind is not WorkerKind.PROCESSES and pacer is None:
                from ticketsim.engine import worlds  # noqa: PLC0415 - see _strategy

                # Threads are paced by threading's primitives; tasks by the crew's own.
                return channel, gate, _Hooks(worlds.thread_pacer(config))
            return channel, gate, _hooks(ctx, config, seed, pacer)
        except BaseException:
            channel.close()
            if gate is not None:
                gate.close()
            raise


def run_sale(
    config: RunConfig,
    *,
    pacer: PacerFactory | None = None,
    watch: Watcher | None = None,
    servers: Mapping[StoreKind, str] | None = None,
) -> RunResult:
    """Run one sale as ``config`` says and return its history; never prints.

    ``watch`` is called with each event as it arrives (a live view, a progress bar).

    ``pacer`` builds hooks that force an interleaving (tests use it to kill a buyer
    inside its critical section, for example); ``config`` builds its own otherwise.
    On an interrupt (Ctrl-C, SIGTERM) every process is ended at once, the db keeps
    every sale made, and the interrupt goes on up.

    ``servers`` are private servers already running, by store, for a database strategy
    to sell on instead of starting its own (a search runs many sales on one).
    """
    _scratch.provide()  # before any process is started, so every one uses it
    ctx = _limits.context(config.start_method)
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**32)
    strategy = _strategy(config)
    initial = prepare_db(config)
    channel, gate, hooks = _shared(ctx, config, seed, pacer)
    # This sale's own servers, unless it was handed some: each starts on first use, so a
    # sale on the db file starts none.
    own = databases.PrivateServers()
    inbox = Inbox(channel, _crew(config, ctx), watch)
    sale = _Sale(config, ctx.get_start_method(), seed, initial, gate, hooks, inbox)
    setup = strategies.Setup(
        ctx,
        config.db,
        initial,
        config.buyers,
        channel.sender,
        config.timeout,
        store=config.store,
        servers=own if servers is None else servers,
    )
    # The outer stack holds a second Ctrl-C once the first has landed, until everything
    # the sale started is closed (this one's callbacks, the strategy's processes): cut
    # short, a Manager's server is left for the interpreter's exit to wait on for ever,
    # buyers go on selling, an in-memory strategy's sales never reach the db. It lands
    # once they are, a few seconds at most.
    with contextlib.ExitStack() as holding, contextlib.ExitStack() as stack:
        stack.callback(own.stop)  # last, once the sale's store is read back
        # Last, once the strategy's own processes (the ticket office) are gone too: a
        # writer killed between its write and removing the old db (which a buyer does
        # once it lets go of its lock) left that behind.
        stack.callback(sweep_temp_files, config.db_path)
        stack.callback(channel.close)
        stack.callback(gate.close)
        with _limits.starting(
            f"what the {strategy.info.name.value} strategy shares", "lower --buyers"
        ):
            tools = stack.enter_context(strategy.provide(setup))
        interrupted: BaseException | None = None
        unknown: str | None = None
        try:
            sale.start(tools)
            sale.sell()
        except BaseException as exc:  # Ctrl-C, SIGTERM: end everything, keep every sale
            interrupted = exc
            holding.enter_context(_signals.held())
            raise
        finally:
            sale.end(interrupted, tools)
            # Even on an interrupt: an in-memory strategy's sales must reach the db.
            unknown = tools.store.write_back(config.db, initial, sale.inbox.history)
    if unknown is None:
        try:
            return sale.result(strategy.info, tools.store.final(config.db))
        except ServerUnavailable as exc:  # the user's store, down since its sales
            unknown = f"{exc.server} could not be read back after the sale ({exc.problem})"
    return sale.result(strategy.info, (None, None), unknown=unknown)


def _strategy(config: RunConfig) -> Strategy:
    """The strategy of ``config``'s buyers.

    A sale of processes on a strategy of processes does not import the worlds of threads
    and tasks (:mod:`ticketsim.engine.worlds`): they bring asyncio, and with it ssl and
    logging, which took a sixth of the run's time to import and made every buyer's fork
    dearer. Anything else (the global counter, a name that is not a strategy of
    processes) is the worlds' to build or to refuse.
    """
    if config.kind is WorkerKind.PROCESSES and config.strategy in strategies.STRATEGIES:
        return strategies.get(config.strategy)
    from ticketsim.engine import worlds  # noqa: PLC0415 - see above

    return worlds.get(config.kind, config.strategy)


def _crew(config: RunConfig, ctx: BaseContext) -> Crew:
    """The crew that runs ``config``'s buyers (processes without the worlds' imports)."""
    if config.kind is WorkerKind.PROCESSES:
        return crew_for(ctx, config.workers)
    from ticketsim.engine import worlds  # noqa: PLC0415 - see _strategy

    return worlds.crew(config, ctx)


@dataclass
class _Sale:
    """One sale, in the parent: its buyers started, the sale opened, their outcomes
    collected, every process ended, and what happened as a :class:`RunResult`."""

    config: RunConfig
    start_method: str
    seed: int
    initial: dbfile.TicketDB
    #: Set to open the sale, once the buyers wait at it.
    gate: StartGate
    hooks: _Hooks
    #: The events, as the crew's buyers send them.
    inbox: Inbox
    started_at: float = 0.0
    opened_at: float = 0.0
    stopped_at: float = 0.0
    #: Why the sale was abandoned, if it was.
    stalled: str | None = None

    @property
    def crew(self) -> Crew:
        return self.inbox.crew

    def start(self, tools: object) -> None:
        """Start every buyer, and open the sale once those running at once are ready."""
        config = self.config
        patience = config.timeout * BUYER_PATIENCE
        # The parent waits this long for every buyer to be ready; the buyers, for it.
        starting = max(config.timeout, START_TIMEOUT_S)
        specs = [
            BuyerSpec(n, window(config.delay, self.seed, n), patience, starting + patience)
            for n in range(1, config.buyers + 1)
        ]
        self.started_at = time.monotonic()
        self.crew.start(specs, (tools, self.inbox.channel.sender, self.gate.gate, self.hooks.pacer))
        # Open the sale only when the buyers are waiting at the gate, so that
        # process start-up (slow under spawn) does not serialise them.
        self.stalled = self.inbox.wait_ready(starting, self.start_method)
        self.opened_at = time.monotonic()
        self.gate.set()

    def sell(self) -> None:
        """Collect every buyer's outcome, granting a schedule's steps if there is one."""
        driver = None
        if self.hooks.conductor is not None and self.stalled is None:
            driver = _ScheduleDriver(self.hooks.conductor, self.config)
        if self.stalled is None:
            self.stalled = self.inbox.collect(
                until=None,
                expected=self.config.buyers,
                timeout=self.config.timeout,
                aborted=driver.aborted if driver else None,
            )
        self.stopped_at = time.monotonic()
        if driver is not None:
            driver.stop()

    def end(self, interrupted: BaseException | None, tools: Tools) -> None:
        """End every process (at once if the sale did not end by itself), then what
        works on their behalf; keep their last words, and give each buyer whose history
        has no ending a ``lost`` one."""
        self.gate.end()  # the buyers' processes that wait for it go
        ended = self.crew.end(at_once=interrupted is not None or self.stalled is not None)
        # An interrupted sale reports nothing: its office is not waited for.
        tools.end_sale(0.0 if interrupted is not None else self.config.timeout)
        self.inbox.drain()
        why = "the run was interrupted" if interrupted else (self.stalled or "the sale ended")
        history = self.inbox.history
        codes = self.crew.exit_codes()
        history += lost_events(self.config, history, codes, ended, why, self.hooks.victims())
        history.sort(key=lambda e: e.t)

    def result(
        self,
        strategy: StrategyInfo,
        final: tuple[dbfile.TicketDB | None, str | None],
        *,
        unknown: str | None = None,
    ) -> RunResult:
        """What happened; ``final`` is the state the sale left, or why it is unreadable;
        ``unknown``, why nobody can know that state."""
        config, history = self.config, self.inbox.history
        outcomes = [e.t for e in history if e.step in OUTCOMES]
        ended_at = self.stopped_at if self.stalled or not outcomes else max(outcomes)
        final_db, final_error = final
        return RunResult(
            config=config,
            start_method=self.start_method,
            seed=self.seed,
            initial=self.initial,
            final=final_db,
            final_error=final_error,
            history=tuple(history),
            opened_at=self.opened_at,
            elapsed_s=max(0.0, ended_at - self.opened_at),
            stalled=self.stalled,
            exit_codes=self.crew.exit_codes(),
            schedule=str(config.steps()) if config.schedule is not None else None,
            faults=self.hooks.faults(strategy),
            startup_s=max(0.0, self.opened_at - self.started_at),
            final_unknown=unknown,
        )


class _ScheduleDriver:
    """Controlled mode, in the parent: grant the schedule's steps one at a time.

    Runs in a thread beside the event collection. It stops at the first step a buyer
    reports as blocked or does not finish in time; ``aborted`` then says why.
    """

    def __init__(self, conductor: Conductor, config: RunConfig) -> None:
        self.conductor = conductor
        self.steps = config.steps()
        self.model = catalog.info(config.strategy).model()
        self.tickets = config.seats
        self.timeout = config.timeout
        self.reason: str | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ticketsim-schedule", daemon=True)
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
                why = self.model.explain(self.steps, index, self.tickets)
                self.reason = f"schedule infeasible: {why}"
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


def lost_events(
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
        error = None
        if number in victims:
            note = f"killed on purpose: SIGKILLed {KILL_POINTS[victims[number]]}"
            error = KILLED_ON_PURPOSE
        elif number in ended:
            note = f"ended by ticketsim: {why}"
        elif code is not None and code < 0:
            note = f"its process was killed by {signal.Signals(-code).name}"
        elif code is not None and number not in pids:
            died = f"its process exited with code {code} before it was ready"
            note = unready_because(config.start_method, died)
        elif code is not None:
            note = f"its process exited with code {code} and no outcome"
        else:
            note = "its pool task never finished"
        lost.append(Event(number, Step.LOST, now, pids.get(number, 0), note=note, error=error))
    return lost
