"""Buyers as threads and asyncio tasks (``--workers``), and the module-global counter:
every strategy where it means something, each verdict forced, none left to luck."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sales import assert_forced_race, assert_protocol, assert_safe_and_live, sale, script

from ticketsim.analysis.checker import Kind
from ticketsim.analysis.report import build_report
from ticketsim.core import catalog
from ticketsim.core import db as dbfile
from ticketsim.core.catalog import CATALOG, WORLDS
from ticketsim.core.events import Event, Step
from ticketsim.core.frozen import field, frozen
from ticketsim.core.names import WorkerKind
from ticketsim.core.settings import RunConfig
from ticketsim.engine import worlds
from ticketsim.engine.tasks import STOP_S
from ticketsim.errors import ConfigError, SaleEnded
from ticketsim.sale.buyer import Lockstep
from ticketsim.sale.steps import Pacer
from ticketsim.sale.stores import FileStore
from ticketsim.sale.tasks import TaskEnding, TaskPacer, take_ticket

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

    from ticketsim.engine.runner import PacerFactory

#: Every strategy that can run on threads or tasks, and the global counter, with its kind.
EVERY = [
    (kind, info.name.value)
    for info in (*CATALOG.values(), *WORLDS.values())
    for kind in info.workers
    if kind is not WorkerKind.PROCESSES or info.name in WORLDS
]
SAFE = [(k, n) for k, n in EVERY if catalog.info(n).safe]
#: The unsafe ones that a forced race makes oversell (task-no-await is safe).
UNSAFE = [(k, n) for k, n in EVERY if not catalog.info(n).safe]


def _id(pair: tuple[WorkerKind, str]) -> str:
    return f"{pair[0].value}-{pair[1]}"


def test_every_strategy_has_a_builder_for_each_kind_it_claims_and_no_more() -> None:
    assert set(worlds.WORLD_STRATEGIES) == {(k, n) for k, n in EVERY}
    for (kind, name), strategy in worlds.WORLD_STRATEGIES.items():
        assert kind in strategy.info.workers
        assert worlds.get(kind, name) is strategy


def test_the_lists_are_the_lessons() -> None:
    assert sorted(_id(p) for p in UNSAFE) == [
        "asyncio-task-none",
        "processes-global-counter",
        "threads-global-counter",
        "threads-none",
    ]
    by_kind = {kind: sorted(n for k, n in SAFE if k is kind) for kind in WorkerKind}
    assert by_kind[WorkerKind.THREADS] == [
        "filelock",
        "lock",
        "semaphore",
        "thread-lock",
        "thread-office",
        "thread-semaphore",
    ]
    assert by_kind[WorkerKind.ASYNCIO] == [
        "task-lock",
        "task-no-await",
        "task-office",
        "task-semaphore",
    ]


@pytest.mark.parametrize(("kind", "strategy"), SAFE, ids=[_id(p) for p in SAFE])
@pytest.mark.parametrize(("tickets", "buyers"), [(3, 8), (5, 5), (6, 2)])
def test_a_safe_strategy_sells_exactly_min_tickets_buyers(
    db_path: Path, kind: WorkerKind, strategy: str, tickets: int, buyers: int
) -> None:
    # A race window wide enough that, unprotected, every buyer would read inside it.
    result = sale(
        db_path,
        strategy=strategy,
        worker_kind=kind.value,
        tickets=tickets,
        buyers=buyers,
        delay=0.01,
    )
    assert_safe_and_live(result)
    assert build_report(result).workers == kind.value
    _assert_no_old_db_left(db_path)


def _assert_no_old_db_left(db_path: Path) -> None:
    """Each write swaps the new db in and the old one out beside it, as a temp file
    its writer removes: a run that returns has removed them all."""
    assert [p.name for p in db_path.parent.iterdir() if p.suffix == ".tmp"] == []


# The process strategies' forced race, on threads and tasks, with the same numbers.
FILE_RACES = [(k, n) for k, n in UNSAFE if n != "global-counter"]


@pytest.mark.parametrize(("kind", "strategy"), FILE_RACES, ids=[_id(p) for p in FILE_RACES])
@pytest.mark.parametrize(("tickets", "buyers"), [(1, 3), (2, 5), (4, 4), (0, 2), (3, 1)])
def test_an_unprotected_sale_on_threads_or_tasks_oversells_exactly_as_forced(
    db_path: Path, kind: WorkerKind, strategy: str, tickets: int, buyers: int
) -> None:
    result = sale(
        db_path,
        strategy=strategy,
        worker_kind=kind.value,
        tickets=tickets,
        buyers=buyers,
        lockstep=True,
    )
    assert_forced_race(result, tickets, buyers)
    _assert_no_old_db_left(db_path)


@pytest.mark.parametrize("buyers", [2, 12, 60])
def test_a_coroutine_with_no_await_between_read_and_write_never_oversells(
    db_path: Path, buyers: int
) -> None:
    """The same lockstep that makes task-none oversell: every task waits for all the
    others at its first await after its read, which for task-no-await is after its
    write, so each read sees every earlier write however many tasks there are."""
    tickets = buyers // 2
    result = sale(
        db_path,
        strategy="task-no-await",
        worker_kind="asyncio",
        tickets=tickets,
        buyers=buyers,
        lockstep=True,
        delay=0.001,
    )
    assert_safe_and_live(result)
    # The lockstep ran: every task waited at it, so buyers wrote before others read.
    report = build_report(result)
    assert report.lesson is not None
    assert "only at an await" in report.lesson


def test_the_same_tasks_oversell_once_an_await_sits_between_read_and_write(
    db_path: Path,
) -> None:
    tickets, buyers = 6, 12
    unawaited = build_report(
        sale(
            db_path,
            strategy="task-no-await",
            worker_kind="asyncio",
            tickets=tickets,
            buyers=buyers,
            lockstep=True,
        )
    )
    awaited = build_report(
        sale(
            db_path,
            strategy="task-none",
            worker_kind="asyncio",
            tickets=tickets,
            buyers=buyers,
            lockstep=True,
        )
    )
    assert (unawaited.sold, unawaited.oversold) == (tickets, 0)
    assert (awaited.sold, awaited.oversold) == (buyers, buyers - tickets)
    assert awaited.lesson is not None
    assert "an await sits between its read and its write" in awaited.lesson


def _counter_race(db_path: Path, kind: WorkerKind, tickets: int, buyers: int) -> None:
    result = sale(
        db_path,
        strategy="global-counter",
        worker_kind=kind.value,
        tickets=tickets,
        buyers=buyers,
        lockstep=True,
    )
    report = build_report(result)
    assert_protocol(result)
    # Every buyer read every ticket: whether from its own copy or the shared one.
    reads = [e.value for e in result.history if e.step is Step.READ]
    assert reads == [tickets] * buyers
    sold = buyers if tickets else 0
    assert report.sold == sold
    assert report.oversold == max(0, sold - tickets)
    # Every sale is a write event, so the ledger has them all: it tells the truth.
    assert (report.ledger_sales, report.lost_sales) == (sold, 0)
    # The count: the parent's own copy (never touched by a buyer process), or the
    # shared one, which every thread set to what it read less one.
    if kind is WorkerKind.PROCESSES:
        assert report.remaining == tickets
    else:
        assert report.remaining == (tickets - 1 if sold else tickets)
    kinds = {v.kind for v in report.violations}
    if sold > 1:
        assert {Kind.OVERSOLD if sold > tickets else Kind.DOUBLE_BOOKED} <= kinds
        assert {Kind.COUNT_MISMATCH, Kind.SEAT_CONFLICT} <= kinds
    assert report.ok is (sold <= 1 and (kind is not WorkerKind.PROCESSES or sold == 0))


@pytest.mark.parametrize(("tickets", "buyers"), [(2, 5), (3, 3), (0, 2), (4, 1)])
def test_the_module_global_counter_is_a_copy_per_process(
    db_path: Path, tickets: int, buyers: int
) -> None:
    _counter_race(db_path, WorkerKind.PROCESSES, tickets, buyers)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_the_module_global_counter_is_a_copy_whatever_the_start_method(
    db_path: Path, method: str
) -> None:
    result = sale(db_path, strategy="global-counter", tickets=2, buyers=4, start_method=method)
    report = build_report(result)
    # Unforced: no buyer can see another's sale, so every buyer buys, whatever the timing.
    assert (report.sold, report.remaining, report.ledger_sales) == (4, 2, 4)
    assert report.lesson is not None
    assert "own copy of the module's variable" in report.lesson


@pytest.mark.parametrize(("tickets", "buyers"), [(2, 5), (3, 3), (0, 2), (4, 1)])
def test_the_module_global_counter_is_shared_by_threads_and_races(
    db_path: Path, tickets: int, buyers: int
) -> None:
    _counter_race(db_path, WorkerKind.THREADS, tickets, buyers)


def test_threads_sharing_the_module_counter_see_each_others_sales(db_path: Path) -> None:
    """Without a forced race and without a window, threads one after another would see
    each sale: the count is one variable. Forced to take turns, they sell exactly."""
    tickets, buyers = 3, 6
    result = sale(
        db_path,
        strategy="global-counter",
        worker_kind="threads",
        tickets=tickets,
        buyers=buyers,
        pacer=_one_at_a_time,
    )
    report = build_report(result)
    assert (report.sold, report.remaining, report.violations) == (tickets, 0, ())
    assert report.lesson is not None
    assert "share the module's variable" in report.lesson


class _Turns(Pacer):
    """Buyer threads take their whole purchase one at a time, in buyer order."""

    def __init__(self) -> None:
        self.turn = 1
        self.changed = threading.Condition()

    def before_check(self, number: int, timeout: float) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: self.turn == number, timeout):
                raise TimeoutError(f"buyer {number} never got its turn")

    def finished(self, number: int, error: BaseException | None) -> None:
        with self.changed:
            self.turn = number + 1
            self.changed.notify_all()


def _one_at_a_time(ctx: BaseContext, config: RunConfig) -> Pacer:
    del ctx, config
    return _Turns()


def test_the_reports_say_what_each_lesson_is(db_path: Path) -> None:
    threads = build_report(
        sale(db_path, strategy="none", worker_kind="threads", tickets=1, buyers=2, lockstep=True)
    )
    assert threads.lesson is not None
    assert threads.lesson.startswith("The GIL does not make check-then-act atomic")
    assert threads.crew == "one thread per buyer, in ticketsim's own process"
    needless = build_report(sale(db_path, strategy="lock", worker_kind="threads", buyers=2))
    assert needless.lesson is not None
    assert "needless" in needless.lesson
    assert "thread-lock" in needless.lesson
    processes = build_report(sale(db_path, strategy="none", tickets=1, buyers=2, lockstep=True))
    assert (processes.workers, processes.lesson) == ("processes", None)
    as_json = threads.to_json()
    assert (as_json["workers"], as_json["lesson"]) == ("threads", threads.lesson)
    assert as_json["start_method"] is None  # no process was started to run a buyer
    assert processes.to_json()["start_method"] == "fork"


@pytest.mark.parametrize(
    ("kind", "strategy", "instead"),
    [
        (WorkerKind.ASYNCIO, "lock", "task-lock"),
        (WorkerKind.ASYNCIO, "semaphore", "task-semaphore"),
        (WorkerKind.ASYNCIO, "filelock", "task-lock"),
        (WorkerKind.ASYNCIO, "value", "task-lock"),
        (WorkerKind.ASYNCIO, "none", "task-none"),
        (WorkerKind.THREADS, "office", "thread-office"),
        (WorkerKind.THREADS, "manager", "thread-lock"),
        (WorkerKind.PROCESSES, "thread-lock", "lock"),
        (WorkerKind.PROCESSES, "task-office", "office"),
        (WorkerKind.ASYNCIO, "thread-lock", "task-lock"),
    ],
)
def test_a_strategy_that_means_nothing_on_a_kind_is_refused_naming_what_to_use(
    kind: WorkerKind, strategy: str, instead: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        RunConfig(strategy=strategy, worker_kind=kind.value)
    said = str(caught.value)
    assert said.startswith(f"workers={kind.value!r}: --strategy {strategy} ")
    assert said.endswith(f"use --strategy {instead}")
    assert "\n" not in said


def test_multiprocessing_primitives_block_the_event_loop() -> None:
    with pytest.raises(ConfigError, match="blocks the event loop"):
        RunConfig(strategy="lock", worker_kind="asyncio")


@pytest.mark.parametrize(
    ("option", "value", "flag"),
    [
        ("pool", 2, "--pool"),
        ("start_method", "spawn", "--start-method"),
        ("kill_holder", True, "--kill-holder"),
        ("kill", 1, "--kill"),
        ("pause_holder", True, "--pause-holder"),
        ("schedule", "1r 2r 1w 2w", "--schedule"),
        ("hosts", 2, "--hosts"),
    ],
)
@pytest.mark.parametrize("kind", ["threads", "asyncio"])
def test_what_drives_buyer_processes_is_refused_with_threads_and_tasks(
    kind: str, option: str, value: object, flag: str
) -> None:
    strategy = "thread-lock" if kind == "threads" else "task-lock"
    with pytest.raises(ConfigError, match=f"{flag} drives buyer processes"):
        RunConfig(strategy=strategy, worker_kind=kind, buyers=2, **{option: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["threads", "asyncio"])
def test_a_store_with_threads_or_tasks_is_refused_as_such_whatever_the_strategy(
    kind: str, tmp_path: Path
) -> None:
    """Refused for its strategy first, a store's strategy said to use a thread one, and a
    thread one said not to sell on the store: each message sent the user to the other."""
    with pytest.raises(ConfigError, match="--store drives buyer processes"):
        RunConfig(strategy="redis-naive", worker_kind=kind, store="redis://localhost/0")
    db = tmp_path / "t.json"
    for strategy in ([], ["--strategy", "thread-lock" if kind == "threads" else "task-lock"]):
        done = subprocess.run(
            [script(), "run", "--workers", kind, "--store", "redis", *strategy, "--db", str(db)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert done.stderr == (
            f"ticketsim: error: --store=redis: a store's buyers are processes, and --workers "
            f"{kind} run in ticketsim's own process; drop --store, or drop --workers\n"
        )
    assert not db.exists()


@pytest.mark.parametrize("kind", [WorkerKind.THREADS, WorkerKind.ASYNCIO])
def test_a_database_strategy_with_threads_or_tasks_is_refused_for_what_it_is(
    kind: WorkerKind,
) -> None:
    with pytest.raises(ConfigError, match="pg-naive sells on a database, each buyer a process"):
        RunConfig(strategy="pg-naive", worker_kind=kind.value)


def test_an_unknown_kind_of_worker_is_refused() -> None:
    with pytest.raises(ConfigError, match="workers='fibers': choose one of processes, threads"):
        RunConfig(worker_kind="fibers")


class _Hang(Pacer):
    """The first buyer to read hangs inside its critical section, holding the lock, for
    ever (until the test ends); every other buyer waits for the lock."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.first = threading.Lock()

    def after_read(self, number: int, timeout: float) -> None:
        del number, timeout
        if self.first.acquire(blocking=False):
            self.released.wait()


def test_a_hung_buyer_thread_stalls_the_sale_and_does_not_hang_ticketsim(
    db_path: Path,
) -> None:
    hang = _Hang()
    stall_s = 1.0
    started = time.monotonic()
    try:
        result = sale(
            db_path,
            strategy="thread-lock",
            worker_kind="threads",
            tickets=2,
            buyers=3,
            timeout=stall_s,
            pacer=lambda ctx, config: hang,
        )
    finally:
        hang.released.set()  # the thread is a daemon: this only tidies up
    took = time.monotonic() - started
    assert result.stalled is not None
    assert "no progress" in result.stalled
    # Within the stall guard, its own bounded waits, and no join without a bound.
    assert took < stall_s * 10
    lost = [e for e in result.history if e.step is Step.LOST]
    assert {e.buyer for e in lost} == {1, 2, 3}
    assert all(e.note is not None and e.note.startswith("ended by ticketsim") for e in lost)


def _threads_of(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


@pytest.mark.parametrize(
    ("kind", "strategy"),
    [("threads", "thread-lock"), ("asyncio", "task-lock"), ("asyncio", "task-no-await")],
)
def test_ctrl_c_ends_a_sale_of_threads_or_tasks_at_once(
    tmp_path: Path, kind: str, strategy: str
) -> None:
    """Buyers inside a long race window (an awaited one, or one blocking the loop):
    Ctrl-C ends the program with 130 and one line, without waiting for them all."""
    window = 3.0
    buyers = 4
    args = [sys.executable, "-m", "ticketsim", "run", "--workers", kind, "--strategy"]
    args += [strategy, "--buyers", str(buyers), "--delay", str(window), "--timeout", "30"]
    args += ["--db", str(tmp_path / "t.json"), "--seed", "1"]
    program = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        # The gate: the buyers' threads (or the event loop's) exist; the sale cannot end
        # before a window, so the interrupt lands inside it.
        deadline = time.monotonic() + 30
        while _threads_of(program.pid) < 2 and time.monotonic() < deadline:
            time.sleep(0.002)
        os.killpg(program.pid, signal.SIGINT)
        interrupted = time.monotonic()
        _, err = program.communicate(timeout=30)
        took = time.monotonic() - interrupted
    finally:
        program.kill()
        program.communicate()
    assert program.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "interrupted" in lines[0]
    # Not every buyer's window in turn (a lock, or a loop blocked by each): at most one.
    assert took < window * buyers


def _ctrl_c_once_a_buyer_has_read(event: Event) -> None:
    """A watcher that is Ctrl-C at the first read: it lands while that buyer is in its
    race window and the others wait behind it (for the lock, the office, the loop, their
    turn) or have yet to read."""
    if event.step is Step.READ:
        raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("kind", "strategy", "lockstep"),
    [
        ("threads", "none", False),
        ("threads", "none", True),
        ("threads", "thread-lock", False),
        ("threads", "thread-office", False),
        ("asyncio", "task-none", False),
        ("asyncio", "task-none", True),
        ("asyncio", "task-no-await", False),
        ("asyncio", "task-office", False),
    ],
)
def test_an_interrupted_sale_of_threads_or_tasks_leaves_no_buyer_running(
    db_path: Path, kind: str, strategy: str, lockstep: bool
) -> None:
    """A buyer process is killed; a thread cannot be, and one left in a 10 s window
    would write its sale into the db after ticketsim had given it back."""
    _interrupted_at_the_first_read(
        db_path, strategy=strategy, worker_kind=kind, buyers=4, delay=10.0, lockstep=lockstep
    )


def _interrupted_at_the_first_read(
    db_path: Path, buyers: int, pacer: PacerFactory | None = None, **options: object
) -> None:
    """A sale with ``options``, Ctrl-C as its first buyer has read: once it has ended,
    no thread of it is left to write later, and nobody got past the race window."""
    before = set(threading.enumerate())
    with pytest.raises(KeyboardInterrupt):
        sale(
            db_path,
            buyers=buyers,
            tickets=buyers,
            timeout=30.0,
            pacer=pacer,
            watch=_ctrl_c_once_a_buyer_has_read,
            **options,
        )
    assert set(threading.enumerate()) - before == set()
    db = dbfile.load(db_path)
    assert (db.remaining, db.ledger) == (buyers, ())


def test_a_thousand_tasks_woken_as_the_sale_ends_record_nothing_more(db_path: Path) -> None:
    """Ctrl-C while the first of 1,000 no-await tasks blocks the loop in its window: each
    task the loop then ran recorded its check and read before its window stopped it,
    and 2,000 events filled the pipe nobody was reading while ticketsim waited for the
    loop (5 s, then left it running)."""
    started = time.monotonic()
    _interrupted_at_the_first_read(
        db_path, strategy="task-no-await", worker_kind="asyncio", buyers=1000, delay=10.0
    )
    assert time.monotonic() - started < STOP_S


def test_a_task_told_the_sale_ended_in_its_awaited_window_does_not_write(
    db_path: Path,
) -> None:
    """Not cancelled, as when a cancel was lost (asyncio.wait_for in 3.11 returns a lock
    granted in the same turn): it looks for itself before it writes."""
    dbfile.write_atomic(db_path, dbfile.TicketDB.fresh(1))
    ended = threading.Event()
    pacer = TaskEnding(TaskPacer(), ended)

    async def buy() -> None:
        asyncio.get_running_loop().call_later(0.05, ended.set)
        await take_ticket(FileStore(str(db_path)), 1, 0.5, _nothing, pacer, 5.0, yields=True)

    with pytest.raises(SaleEnded):
        asyncio.run(buy())
    assert dbfile.load(db_path).ledger == ()


def _nothing(*args: object, **kwargs: object) -> None:
    del args, kwargs


@frozen
class _LastHeldBack(Lockstep):
    """Threading's lockstep, with buyer ``last`` held before its check until the sale
    is ended: the others read and wait at the barrier for a buyer that never comes."""

    last: int = 0
    aborted: threading.Event = field(default_factory=threading.Event)

    def before_check(self, number: int, timeout: float) -> None:
        if number == self.last:
            self.aborted.wait(timeout)

    def abort(self) -> None:
        self.aborted.set()
        super().abort()


def _held_back(ctx: BaseContext, config: RunConfig) -> _LastHeldBack:
    del ctx
    cell = types.SimpleNamespace(value=1)
    return _LastHeldBack(
        threading.Barrier(config.buyers), cell, threading.Condition(), config.buyers
    )


def test_an_interrupt_lets_go_of_buyer_threads_waiting_at_the_lockstep_barrier(
    db_path: Path,
) -> None:
    _interrupted_at_the_first_read(
        db_path, strategy="none", worker_kind="threads", buyers=4, delay=1.0, pacer=_held_back
    )


@pytest.mark.parametrize(("kind", "strategy"), [("threads", "none"), ("asyncio", "task-none")])
def test_a_history_of_threads_or_tasks_is_read_back_as_one(
    db_path: Path, tmp_path: Path, kind: str, strategy: str
) -> None:
    from ticketsim.analysis import history

    result = sale(db_path, strategy=strategy, worker_kind=kind, tickets=1, buyers=3, lockstep=True)
    saved = tmp_path / "h.jsonl"
    history.save(saved, result)
    again = history.load(saved, db_path)
    assert again.config.worker_kind == kind
    before, after = build_report(result), build_report(again)
    assert (after.workers, after.lesson, after.verdict) == (kind, before.lesson, before.verdict)


@pytest.mark.parametrize("delay", [0.0, 0.005])
def test_unforced_the_event_loop_runs_every_ready_task_at_an_await(
    db_path: Path, delay: float
) -> None:
    """No lockstep: asyncio runs the tasks the gate woke in order, each up to its first
    await, so with an await between read and write (even sleep(0)) every task reads
    before any writes; without one, each task's purchase runs whole."""
    tickets, buyers = 3, 9
    awaited = sale(
        db_path,
        strategy="task-none",
        worker_kind="asyncio",
        tickets=tickets,
        buyers=buyers,
        delay=delay,
    )
    report = build_report(awaited)
    assert (report.sold, report.oversold) == (buyers, buyers - tickets)
    assert [e.value for e in awaited.history if e.step is Step.READ] == [tickets] * buyers
    unawaited = sale(
        db_path,
        strategy="task-no-await",
        worker_kind="asyncio",
        tickets=tickets,
        buyers=buyers,
        delay=delay,
    )
    assert_safe_and_live(unawaited)


class _HangTask(TaskPacer):
    """The first task to read hangs right after its read: awaiting for ever (the loop
    runs on), or blocking the loop's thread itself (nothing runs)."""

    def __init__(self, *, blocking: bool) -> None:
        self.blocking = blocking
        self.released = threading.Event()
        self.hung = False

    async def after_read(self, number: int, timeout: float) -> None:
        del number, timeout
        if self.hung:
            return
        self.hung = True
        if self.blocking:
            self.released.wait()
        else:
            await asyncio.Event().wait()


@pytest.mark.parametrize("blocking", [False, True], ids=["awaiting", "blocking-the-loop"])
def test_a_hung_buyer_task_stalls_the_sale_and_does_not_hang_ticketsim(
    db_path: Path, blocking: bool
) -> None:
    hang = _HangTask(blocking=blocking)
    stall_s, buyers = 1.0, 3
    started = time.monotonic()
    try:
        result = sale(
            db_path,
            strategy="task-none",
            worker_kind="asyncio",
            tickets=2,
            buyers=buyers,
            timeout=stall_s,
            pacer=lambda ctx, config: hang,  # type: ignore[arg-type,return-value]
        )
    finally:
        hang.released.set()  # the loop's thread is a daemon: this only tidies up
    took = time.monotonic() - started
    assert result.stalled is not None
    assert "no progress" in result.stalled
    # The stall guard, then a bounded wait for the loop to take the cancellations.
    assert took < stall_s + STOP_S + stall_s
    # A task that awaits for ever holds up only itself; one that blocks the loop's thread
    # holds up every task, which is why a blocking call in a coroutine is a bug.
    lost = [e for e in result.history if e.step is Step.LOST]
    assert len(lost) == (buyers if blocking else 1)
    assert all(e.note is not None and e.note.startswith("ended by ticketsim") for e in lost)


@pytest.mark.parametrize(("kind", "strategy"), [("threads", "none"), ("asyncio", "task-none")])
def test_the_printed_report_says_what_ran_the_buyers_and_the_lesson(
    db_path: Path, kind: str, strategy: str
) -> None:
    from rich.console import Console

    from ticketsim.views.render import report_view

    report = build_report(
        sale(db_path, strategy=strategy, worker_kind=kind, tickets=1, buyers=2, lockstep=True)
    )
    with open(os.devnull, "w") as nowhere:
        console = Console(width=400, record=True, file=nowhere)
        console.print(report_view(report))
    text = console.export_text()
    assert f"{kind}, seed {report.seed}" in text
    assert f"on {report.crew}" in text
    assert report.lesson is not None
    assert f"Lesson: {report.lesson}" in text
    fix = "thread-lock" if kind == "threads" else "task-lock"
    assert f"Run it again with --strategy {fix}." in text
