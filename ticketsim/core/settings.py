"""A sale's settings, validated once: every layer downstream trusts a :class:`RunConfig`.

The bounds live here, a sale's and a search's, and so do the checks of each kind of
value (:func:`require_int`, :func:`require_seconds`, ...) and of each search
(:func:`require_exploration`, :func:`require_hunt`). The searches call them themselves
and the command line calls the same ones, so that a value is refused with the same
words whoever passes it.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Final, cast

from ticketsim.core import catalog, schedule, stores
from ticketsim.core import hosts as host_specs
from ticketsim.core._values import seconds, unicode_text
from ticketsim.core.frozen import frozen
from ticketsim.core.names import DEFAULT_DB, StrategyName, WorkerKind, WorldName
from ticketsim.errors import ConfigError

if TYPE_CHECKING:
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
#: The most buyer threads or tasks of one sale: each thread is a real OS thread, with its
#: stack, and every one must be waiting at the gate before the sale opens.
IN_PROCESS_BUYERS_MAX: Final = 1000
MAX_WORKERS: Final = 1000
MAX_TICKETS: Final = 1_000_000
MAX_DELAY_S: Final = 60.0
MAX_TIMEOUT_S: Final = 3600.0
#: Starting processes is slow under spawn on a busy machine, and not a stall: the sale
#: waits this long (or --timeout, if longer) for the first buyers to be ready.
START_TIMEOUT_S: Final = 30.0
#: The shortest stall timeout: a buyer process must be able to start and take a step
#: in it on a loaded 2-core machine, or every sale would "stall" before it began.
MIN_TIMEOUT_S: Final = 1.0
#: The largest seed (a seed is any unsigned 64-bit number).
MAX_SEED: Final = 2**64 - 1
#: The race window of each buyer is ``delay * (1 + JITTER * u)``, ``u`` drawn from the seed.
JITTER: Final = 0.5
#: Explore runs one schedule per class of orders, ``B!`` classes for an unlocked sale:
#: past this many buyers even the classes would not all run in reasonable time.
MAX_EXPLORE_BUYERS: Final = 10
#: The most runs of a counterexample an exploration makes to show it reproduces.
MAX_REPLAYS: Final = 1000
#: The most schedules one search runs (``max_schedules``, ``max_examples``, ``pct_runs``).
MAX_RUNS: Final = 100_000


def lockstep_possible(strategy: str, buyers: int, tickets: int) -> bool:
    """Whether every buyer can read before any writes under ``strategy`` (if it does not
    serialise its reads anyway): SKIP LOCKED locks a seat with the read, so a buyer
    beyond the seats waits for the others to let go of theirs."""
    return not catalog.info(strategy).locks_seats or tickets >= buyers


@frozen
class RunConfig:
    """One sale to run. Invalid values raise :class:`ConfigError` on construction."""

    buyers: int = 50
    tickets: int = 10
    strategy: str = StrategyName.NONE.value
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
    #: The user's store (a ``--store`` URL) for a database strategy, which is then the
    #: record of the sale instead of the db file: see :mod:`ticketsim.core.stores`.
    store: str | None = None
    #: SIGSTOP the first buyer to read inside its critical section, and SIGCONT it only
    #: once every other buyer has its outcome: a holder paused past its lock's lease.
    pause_holder: bool = False
    #: Spread the buyers over this many hosts, each reaching the store over a link of
    #: its own (see :mod:`ticketsim.core.hosts`); ``None``: one machine, no links.
    hosts: int | None = None
    #: How the hosts are made: one of :data:`~ticketsim.core.host_specs.HOST_MODES`.
    host_mode: str = "auto"
    #: ``HOST@TIME[+LASTING]``: cut that host off mid-sale.
    partition: str | None = None
    #: ``HOST=DELAY`` each: slow that host's link down.
    slow_link: tuple[str, ...] = ()
    #: ``HOST=SKEW`` each: set that host's clock wrong in the times it records.
    clock_skew: tuple[str, ...] = ()
    #: What runs each buyer: a process (the default), a thread, or an asyncio task; a
    #: :class:`~ticketsim.core.names.WorkerKind` value.
    worker_kind: str = WorkerKind.PROCESSES.value

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
        strategy = catalog.info(self.strategy)
        self._check_workers()
        if self.store is not None:
            stores.require_match(self.strategy, stores.parse(self.store))
        require_start_method("start_method", self.start_method)
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
        if self.lockstep and not lockstep_possible(self.strategy, self.buyers, self.tickets):
            raise ConfigError(
                "lockstep",
                True,
                f"under {self.strategy!r} a buyer that finds every free seat locked waits for "
                "the others to write, so not every buyer can read before any writes; give at "
                "least as many --tickets as --buyers",
            )
        longest = self.buyers * self.delay * (1 + JITTER)
        if self.lockstep and self.strategy == WorldName.TASK_NO_AWAIT and self.timeout <= longest:
            raise ConfigError(
                "timeout",
                self.timeout,
                "with --lockstep, task-no-await's windows block the event loop one after "
                f"another, and no buyer is told its outcome before all {self.buyers} have had "
                f"theirs (up to {longest:g} s); raise --timeout above that, or lower --delay "
                "or --buyers",
            )
        self._check_faults_and_forcing()
        self._check_hosts()

    @property
    def kind(self) -> WorkerKind:
        """What runs each buyer."""
        return WorkerKind(self.worker_kind)

    def _check_workers(self) -> None:
        if self.worker_kind not in {kind.value for kind in WorkerKind}:
            choices = ", ".join(kind.value for kind in WorkerKind)
            raise ConfigError("workers", self.worker_kind, f"choose one of {choices}")
        if self.kind is not WorkerKind.PROCESSES:
            self._check_in_process()
        # After the flags: a store's strategy, refused here, would point at --store.
        why = catalog.refusal(self.strategy, self.kind)
        if why is not None:
            raise ConfigError("workers", self.worker_kind, why)

    def _check_in_process(self) -> None:
        """Buyers that are threads or tasks: none of what drives processes, and not too many."""
        alone = [
            flag
            for flag, on in (
                ("--pool", self.pool is not None),
                ("--start-method", self.start_method is not None),
                ("--store", self.store is not None),
                ("--schedule", self.schedule is not None),
                ("--kill", bool(self.kill)),
                ("--kill-holder", self.kill_holder),
                ("--pause-holder", self.pause_holder),
                ("--hosts", self.hosts is not None),
            )
            if on
        ]
        if alone:
            raise ConfigError(
                "workers",
                self.worker_kind,
                f"{', '.join(alone)} drives buyer processes, and {self.worker_kind} run in "
                "ticketsim's own process; drop it, or drop --workers",
            )
        if self.buyers > IN_PROCESS_BUYERS_MAX:
            raise ConfigError(
                "buyers",
                self.buyers,
                f"with --workers {self.worker_kind} choose at most {IN_PROCESS_BUYERS_MAX}",
            )

    def _check_hosts(self) -> None:
        if self.hosts is None:
            for name in ("partition", "slow_link", "clock_skew"):
                value = getattr(self, name)
                if value:
                    flag = "--" + name.replace("_", "-")
                    shown = ", ".join(value) if isinstance(value, tuple) else value
                    raise ConfigError(name, shown, f"{flag} is a fault between hosts; add --hosts")
            if self.host_mode != "auto":
                raise ConfigError(
                    "host_mode", self.host_mode, "says how hosts are made; add --hosts"
                )
            return
        require_int("hosts", self.hosts, 1, host_specs.MAX_HOSTS, "hosts")
        if self.host_mode not in host_specs.HOST_MODES:
            raise ConfigError(
                "host_mode", self.host_mode, f"choose one of {', '.join(host_specs.HOST_MODES)}"
            )
        why = host_specs.across_hosts(self.strategy)
        if why is not None:
            raise ConfigError("hosts", self.hosts, why)
        if self.buyers > host_specs.MAX_BUYERS:
            raise ConfigError(
                "buyers",
                self.buyers,
                f"a sale over hosts runs each buyer as a process with two connections to the "
                f"store; choose at most {host_specs.MAX_BUYERS}",
            )
        if self.buyers < self.hosts:
            raise ConfigError(
                "hosts",
                self.hosts,
                f"give each host a buyer at least: --buyers {self.hosts} or more",
            )
        alone = [
            flag
            for flag, on in (
                ("--keep", self.keep),
                ("--pool", self.pool is not None),
                ("--schedule", self.schedule is not None),
                ("--lockstep", self.lockstep),
                ("--kill", bool(self.kill)),
                ("--kill-holder", self.kill_holder),
                ("--pause-holder", self.pause_holder),
            )
            if on
        ]
        if alone:
            raise ConfigError(
                "hosts",
                self.hosts,
                f"{', '.join(alone)} drives the buyers of one machine; drop it, or drop --hosts "
                "(between hosts, use --partition, --slow-link and --clock-skew)",
            )
        self._check_links()

    def _check_links(self) -> None:
        """The faults between hosts: each one parses, and each host can still sell."""
        if self.strategy == StrategyName.FILELOCK.value:
            for name in ("partition", "slow_link"):
                value = getattr(self, name)
                if value:
                    shown = ", ".join(value) if isinstance(value, tuple) else value
                    raise ConfigError(
                        name,
                        shown,
                        "filelock's hosts reach no store (each sells from its own file): there "
                        "is no link to cut or slow down; use a pg- or redis- strategy",
                    )
        _, slow, _ = self.faults_between_hosts()
        for host, delay in slow.items():
            need = host_specs.ready_within(delay)
            if need > max(self.timeout, START_TIMEOUT_S):
                raise ConfigError(
                    "slow_link",
                    ", ".join(self.slow_link),
                    f"{host}'s buyers would need about {need:g} s to reach the gate over a "
                    f"link this slow, longer than the sale waits for them; raise --timeout to "
                    f"{math.ceil(need)} or more, or slow the link less",
                )

    def faults_between_hosts(
        self,
    ) -> tuple[host_specs.Partition | None, dict[str, float], dict[str, float]]:
        """The partition, each host's link delay, and each host's clock skew."""
        count = self.hosts or 0
        cut = host_specs.partition(self.partition, count) if self.partition is not None else None
        slow = host_specs.per_host("slow_link", tuple(self.slow_link), count, signed=False)
        skew = host_specs.per_host("clock_skew", tuple(self.clock_skew), count, signed=True)
        return cut, slow, skew

    def _check_faults_and_forcing(self) -> None:
        require_int("kill", self.kill, 0, self.buyers, "buyers to kill")
        if self.pause_holder and (
            self.kill_holder or self.kill or self.lockstep or self.schedule is not None
        ):
            raise ConfigError(
                "pause_holder",
                True,
                "give it alone: it cannot be mixed with --kill, --kill-holder, --lockstep "
                "or --schedule",
            )
        if self.pause_holder and self.workers is not None:
            raise ConfigError(
                "pause_holder", True, "a paused pool worker stalls its batch; drop --pool"
            )
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
        """How many worker processes run the buyers as tasks; ``None``: one process each
        (or, with threads or asyncio tasks, no processes at all)."""
        if self.kind is not WorkerKind.PROCESSES:
            return None
        if self.pool is not None:
            return self.pool
        return auto_workers() if self.buyers > PROCESS_PER_BUYER_MAX else None

    @property
    def seats(self) -> int | None:
        """The tickets on sale as it opens, as far as the settings know: ``None`` with
        ``keep`` (the db's own count, not ``tickets``)."""
        return None if self.keep else self.tickets

    @property
    def connections(self) -> int:
        """How many connections the buyers hold on a database store at once: one a buyer
        process (or pool worker); over hosts, two a buyer (its purchases and its
        history), one a host (its board) and the parent's."""
        if self.hosts is not None:  # and the parent's, that follows the hosts' table
            return 2 * self.buyers + self.hosts + 1
        return self.workers or self.buyers

    @property
    def crew(self) -> str:
        """Which processes run the buyers, in words, for the report."""
        if self.kind is WorkerKind.THREADS:
            return "one thread per buyer, in ticketsim's own process"
        if self.kind is WorkerKind.ASYNCIO:
            return "one asyncio task per buyer, on one event loop in ticketsim's own process"
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
        model = catalog.info(self.strategy).model()
        blocked = model.blocked_at(steps, self.seats)
        if blocked is not None:
            raise ConfigError(
                "schedule",
                self.schedule,
                f"infeasible under {self.strategy}: {model.explain(steps, blocked, self.seats)}",
            )
        return steps

    @property
    def db(self) -> str:
        return os.fspath(self.db_path)


def auto_workers() -> int:
    """The crew of a big sale: a worker process per core, and at least two, so that
    buyers overlap. More than one per core only queue for the lock, and each costs a
    process start, so a big sale with ``lock`` is slower with them, not faster."""
    return max(2, os.cpu_count() or 1)


# One check per kind of value, used by RunConfig, the searches and the command line
# alike, so that a value is refused with the same words by every command that takes it.


def require_whole(name: str, value: object, what: str) -> None:
    """A whole number (``what`` names its unit), whatever its bounds; not a bool."""
    if type(value) is not int:
        raise ConfigError(name, value, f"must be a whole number of {what}")


def require_int(name: str, value: object, low: int, high: int, what: str) -> None:
    """A count or a bound: a whole number from ``low`` to ``high`` (``what`` names its unit)."""
    require_whole(name, value, what)
    if not low <= cast("int", value) <= high:
        raise ConfigError(name, value, f"choose from {low} to {high} {what}")


def require_text(name: str, value: object) -> None:
    """A name (an event's): text every file and store can hold, so not a lone
    surrogate (an undecodable byte of a command line, as Python keeps it)."""
    if not isinstance(value, str) or not unicode_text(value):
        raise ConfigError(name, value, "give a name in text, in your terminal's encoding")


def require_seed(name: str, value: object) -> None:
    """A seed: any unsigned 64-bit number."""
    require_int(name, value, 0, MAX_SEED, "(a seed)")


def require_number_of_seconds(name: str, value: object) -> float:
    """A finite number of seconds, whatever its bounds; not a bool, a string or NaN."""
    number = seconds(value)  # None for bools, strings, NaN, infinities and huge integers
    if number is None:
        raise ConfigError(name, value, "must be a number of seconds")
    return number


def require_seconds(name: str, value: object, low: float, high: float, why: str = "") -> None:
    """A duration from ``low`` to ``high`` seconds; ``why`` says why ``low`` is the least."""
    number = require_number_of_seconds(name, value)
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


def require_start_method(name: str, value: object) -> None:
    """How processes start: ``None`` (the platform's default) or one of ``START_METHODS``."""
    if value is not None and value not in START_METHODS:
        raise ConfigError(name, value, f"choose one of {', '.join(START_METHODS)}")


def require_controlled(buyers: int) -> None:
    """A controlled sale (replay, explore, hunt) runs every buyer at once, one process each."""
    if buyers > PROCESS_PER_BUYER_MAX:
        raise ConfigError(
            "buyers",
            buyers,
            "a controlled sale runs every buyer at once, one process each, so it takes at "
            f"most {PROCESS_PER_BUYER_MAX} buyers; lower --buyers",
        )


def require_exploration(
    buyers: object, max_schedules: object, preemption_bound: object, replays: object = 0
) -> None:
    """What explore can search: few enough buyers that its classes of orders can run."""
    require_int(
        "buyers",
        buyers,
        1,
        MAX_EXPLORE_BUYERS,
        "buyers: explore runs a class of orders per ordering of the buyers; "
        "use 'ticketsim hunt' for more",
    )
    require_int("max_schedules", max_schedules, 1, MAX_RUNS, "schedules")
    if preemption_bound is not None:
        require_int("preemption_bound", preemption_bound, 0, MAX_RUNS, "preemptions")
    require_int("replays", replays, 0, MAX_REPLAYS, "runs")


def require_hunt(max_examples: object, pct_runs: object, depth: object, seed: object) -> None:
    """What hunt can search: a bounded number of schedules, a PCT depth and its seed."""
    require_int("max_examples", max_examples, 0, MAX_RUNS, "schedules")
    require_int("pct_runs", pct_runs, 0, MAX_RUNS, "schedules")
    if max_examples == 0 and pct_runs == 0:  # a search of nothing finds nothing: no verdict
        raise ConfigError(
            "max_examples",
            0,
            "with no PCT runs either, the hunt would run no schedule and check nothing; "
            "ask for at least 1 of one or the other",
        )
    require_int("depth", depth, 1, MAX_RUNS, "(a PCT depth)")
    require_seed("seed", seed)


def _require_flags(config: RunConfig) -> None:
    for name in ("keep", "lockstep", "kill_holder"):
        if not isinstance(getattr(config, name), bool):
            raise ConfigError(name, getattr(config, name), "must be true or false")
