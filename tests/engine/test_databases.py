"""The lessons of the real databases, each forced, not left to luck.

Every sale here runs on a real store: a SQLite file, or the session's PostgreSQL and
Redis servers (``sales.SERVERS``). ``lockstep`` makes every buyer read before any
writes, then write in buyer order; the strategies that take a lock cannot be forced
so, and are checked for what the lock promises instead: no two buyers inside at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import signal
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sales import SERVERS, assert_protocol, descendants, fresh_db, sale, script
from server_processes import users_of

from ticketsim.analysis import history as historyfile
from ticketsim.analysis.checker import Kind
from ticketsim.analysis.report import build_report
from ticketsim.core import db as dbfile
from ticketsim.core.catalog import CATALOG
from ticketsim.core.events import Step
from ticketsim.core.exits import ExitCode
from ticketsim.core.frozen import replace
from ticketsim.core.names import StoreKind, StrategyName
from ticketsim.core.settings import RunConfig
from ticketsim.engine.databases import PLANS, PrivateServers, make_store
from ticketsim.engine.runner import run_sale
from ticketsim.errors import ConfigError, ServerUnavailable, StoreError
from ticketsim.sale.buyer import Lockstep
from ticketsim.sale.guards import NoGuard
from ticketsim.sale.steps import BuyerSpec, GuardedTools, Pacer, Tools
from ticketsim.sale.stores import postgres as pg
from ticketsim.sale.stores import redis as rd
from ticketsim.sale.stores import sqlite as sq
from ticketsim.sale.stores.database import DatabaseStore
from ticketsim.sale.transaction import TransactionTools
from ticketsim.servers import _folder

if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.context import BaseContext

    from ticketsim.core.result import RunResult

DATABASES = [info.name.value for info in CATALOG.values() if info.store is not StoreKind.FILE]
SAFE = [name for name in DATABASES if CATALOG[name].safe]
LOCKED = [name for name in DATABASES if CATALOG[name].serialises]


def _steps(result: RunResult, step: Step) -> list[int]:
    return [e.buyer for e in result.history if e.step is step]


def _forced(db_path: Path, strategy: str, tickets: int, buyers: int = 3) -> RunResult:
    return sale(db_path, strategy=strategy, tickets=tickets, buyers=buyers, lockstep=True)


@pytest.mark.parametrize("strategy", ["sqlite-naive", "pg-naive", "redis-naive"])
def test_a_read_then_a_write_oversells(db_path: Path, strategy: str) -> None:
    report = build_report(_forced(db_path, strategy, tickets=1))
    assert (report.sold, report.oversold) == (3, 2)
    assert {v.kind for v in report.violations} >= {Kind.OVERSOLD, Kind.DOUBLE_BOOKED}
    assert report.retries == report.gave_up == 0


def test_write_skew_oversells_under_repeatable_read_without_a_single_error(
    db_path: Path,
) -> None:
    result = _forced(db_path, "pg-write-skew", tickets=1)
    report = build_report(result)
    assert (report.sold, report.oversold) == (3, 2)
    assert _steps(result, Step.COMMIT) == [1, 2, 3]  # every transaction was accepted
    assert report.retries == report.gave_up == 0
    assert not _steps(result, Step.ERROR)


def test_serializable_refuses_the_same_write_skew_and_a_retry_sells_it_right(
    db_path: Path,
) -> None:
    result = _forced(db_path, "pg-ledger-serializable", tickets=1)
    report = build_report(result)
    assert report.ok, report.verdict
    assert (report.sold, report.oversold) == (1, 0)
    assert set(_steps(result, Step.RETRY)) == {2, 3}  # each loser was refused, then retried
    assert all(
        "serialization failure" in (e.note or "") for e in result.history if e.step is Step.RETRY
    )


def test_repeatable_read_without_a_retry_leaves_tickets_unsold(db_path: Path) -> None:
    result = _forced(db_path, "pg-repeatable-read", tickets=3)
    report = build_report(result)
    assert (report.sold, report.oversold, report.gave_up) == (1, 0, 2)
    assert report.remaining == 2
    assert [v.kind for v in report.violations] == [Kind.UNDERSOLD]
    assert "serialization failure" in report.violations[0].explanation


@pytest.mark.parametrize(
    ("strategy", "refusal"),
    [
        ("pg-serializable", "serialization failure"),
        ("pg-optimistic", "version"),
        ("redis-watch", "WATCH"),
        ("sqlite-deferred", "SQLITE_BUSY"),
    ],
)
def test_a_refused_transaction_is_retried_and_every_ticket_sold(
    db_path: Path, strategy: str, refusal: str
) -> None:
    result = _forced(db_path, strategy, tickets=3)
    report = build_report(result)
    assert report.ok, report.verdict
    assert report.sold == 3
    # Buyer 1 wrote first; buyers 2 and 3 had read before it, so each was refused once.
    assert _steps(result, Step.RETRY) == [2, 3]
    assert all(refusal in (e.note or "") for e in result.history if e.step is Step.RETRY)


def test_a_unique_seat_refuses_the_second_buyer_of_it(db_path: Path) -> None:
    result = _forced(db_path, "pg-unique", tickets=1)
    report = build_report(result)
    assert report.ok, report.verdict
    assert _steps(result, Step.RETRY) == [2, 3]
    assert all("unique violation" in (e.note or "") for e in result.history if e.step is Step.RETRY)


@pytest.mark.parametrize("strategy", ["pg-skip-locked", "redis-decr", "redis-lua"])
def test_atomic_claims_let_every_buyer_read_at_once_and_still_sell_each_seat_once(
    db_path: Path, strategy: str
) -> None:
    result = _forced(db_path, strategy, tickets=3)
    report = build_report(result)
    assert report.ok, report.verdict
    assert sorted(s.seat for s in result.final.ledger) == [1, 2, 3]  # type: ignore[union-attr]
    reads = [e.t for e in result.history if e.step is Step.READ]
    writes = [e.t for e in result.history if e.step is Step.WRITE]
    assert len(reads) == 3
    assert max(reads) < min(writes)  # all three read before anyone wrote: no waiting
    assert report.retries == 0


def test_skip_locked_cannot_be_forced_with_more_buyers_than_seats(db_path: Path) -> None:
    """A reader that finds every free seat locked waits for the others, who wait for it
    to read: lockstep is refused before anything runs, and says why."""
    with pytest.raises(ConfigError, match="every free seat locked"):
        _forced(db_path, "pg-skip-locked", tickets=2)
    assert not db_path.exists()


@pytest.mark.parametrize("strategy", LOCKED)
def test_a_lock_lets_one_buyer_in_at_a_time(db_path: Path, strategy: str) -> None:
    result = sale(db_path, strategy=strategy, tickets=3, buyers=5, delay=0.005)
    report = build_report(result)
    assert report.ok, report.verdict
    held: list[tuple[float, float]] = []
    # The buyers that wrote: one that found none left may hold nothing (a zero-row
    # UPDATE locks no row), and may overlap with another that found none.
    for buyer in _steps(result, Step.WRITE):
        events = [e for e in result.history if e.buyer == buyer]
        enter = [e.t for e in events if e.step is Step.ENTER]
        leave = [e.t for e in events if e.step is Step.LEAVE]
        assert len(enter) == len(leave) >= 1
        held += zip(enter, leave, strict=True)
    held.sort()
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(held))


def test_a_lease_shorter_than_the_holders_pause_oversells(db_path: Path) -> None:
    result = sale(db_path, strategy="redis-lock", tickets=1, buyers=2, pause_holder=True)
    report = build_report(result)
    assert (report.sold, report.oversold) == (2, 1)
    assert "SIGSTOPped" in result.faults[0]


def test_a_fencing_token_refuses_the_paused_holders_stale_write(db_path: Path) -> None:
    result = sale(db_path, strategy="redis-fenced", tickets=1, buyers=2, pause_holder=True)
    report = build_report(result)
    assert report.ok, report.verdict
    assert report.sold == 1
    paused = int(result.faults[0].split()[0].removeprefix("buyer-"))
    assert _steps(result, Step.RETRY) == [paused]  # fenced off, then found none left


@given(
    strategy=st.sampled_from(SAFE),
    tickets=st.integers(0, 4),
    buyers=st.integers(1, 5),
    delay=st.sampled_from([0.0, 0.002]),
)
def test_a_safe_database_strategy_sells_exactly_min_tickets_buyers(
    strategy: str, tickets: int, buyers: int, delay: float
) -> None:
    """The strategy is drawn too: a profile's examples spread over every store (the
    ``deep`` profile covers each strategy many times)."""
    with fresh_db() as db_path:
        report = build_report(
            sale(db_path, strategy=strategy, tickets=tickets, buyers=buyers, delay=delay)
        )
    assert report.ok, report.verdict
    assert report.sold == min(tickets, buyers)


def _private_folder(kind: str, owner: int, timeout: float = 30.0) -> Path:
    """The folder of the private server ``ticketsim`` process ``owner`` started, once a
    server process works in it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for root in {Path(tempfile.gettempdir()), Path("/tmp")}:
            for folder in root.glob(f"ticketsim-srv.{kind}.{owner}.*"):
                if users_of(folder):
                    return folder
        time.sleep(0.05)
    raise AssertionError(f"no {kind} server of process {owner} within {timeout:g} s")


@pytest.mark.parametrize(("strategy", "kind"), [("pg-naive", "pg"), ("redis-naive", "redis")])
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "ctrl-c"])
def test_a_private_server_goes_with_its_ticketsim(
    db_path: Path, own_temp: Path, strategy: str, kind: str, signum: signal.Signals
) -> None:
    """Mid-sale, the run's own server and buyers end with it, however it ends; a Ctrl-C
    removes the folder at once, a SIGKILL leaves it to the next start's sweep."""
    run = subprocess.Popen(
        [script(), "run", "--strategy", strategy, "--buyers", "3", "--delay", "30",
         "--timeout", "60", "--start-method", "fork", "--db", str(db_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        folder = _private_folder(kind, run.pid)
        assert folder.parent == own_temp
        deadline = time.monotonic() + 30
        while sum(1 for _ in descendants(run.pid)) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)  # the buyers are up: the sale is on
        buyers = [pid for pid in descendants(run.pid) if pid not in users_of(folder)]
        run.send_signal(signum)
        _, err = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate(timeout=10)
    deadline = time.monotonic() + 10
    while (users_of(folder) or _alive(buyers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert users_of(folder) == []
    assert _alive(buyers) == []
    if signum is signal.SIGINT:
        assert run.returncode == 130, err
        assert not folder.exists()
    else:
        assert folder in _folder.sweep()  # the next start takes it away
        assert not folder.exists()


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


@dataclasses.dataclass(frozen=True)
class _KillTheServerAfterTheReads(Lockstep):
    """Lockstep, and the first buyer past the barrier SIGKILLs the server's whole process
    group and waits until it is gone, before any buyer may write."""

    group: int = 0
    killed: Any = None

    def after_read(self, number: int, timeout: float) -> None:
        self.barrier.wait(timeout)
        with self.killed.get_lock():
            if not self.killed.value:
                _kill_group(self.group, timeout)
                self.killed.value = 1
        self.wait_turn(number, timeout)


class _KillTheServerOnceAllBought(Pacer):
    """The last buyer to be done with its purchase SIGKILLs the server's whole process
    group and waits until it is gone: every buyer has committed, none is told more."""

    def __init__(self, group: int, done: Any, buyers: int) -> None:
        self.group, self.count, self.buyers = group, done, buyers

    def done(self, number: int) -> None:
        with self.count.get_lock():
            self.count.value += 1
            if self.count.value == self.buyers:
                _kill_group(self.group, 10.0)


def _kill_group(group: int, timeout: float) -> None:
    os.killpg(group, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while _group_alive(group) and time.monotonic() < deadline:
        time.sleep(0.01)


def _group_alive(group: int) -> bool:
    """Whether a process of ``group`` still runs (a zombie, which its parent has not
    reaped yet, does not: it holds no socket any more)."""
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            return True
    return False


def test_a_server_that_dies_mid_sale_ends_the_sale_with_every_outcome_unknown(
    db_path: Path,
) -> None:
    """Every buyer has read, none has written, when the server dies: no buyer is told
    anything, each ends ``info`` with the error that ended it, the db file keeps what it
    had, and the verdict is 'did not finish', not a claim about what was not seen."""
    with PrivateServers() as servers:
        servers[StoreKind.POSTGRES]
        postmaster = servers.running()[StoreKind.POSTGRES].pid
        assert postmaster is not None

        def pacer(ctx: BaseContext, config: RunConfig) -> Pacer:
            return _KillTheServerAfterTheReads(
                ctx.Barrier(config.buyers), ctx.Value("i", 1), ctx.Condition(),
                group=os.getpgid(postmaster), killed=ctx.Value("i", 0),
            )  # fmt: skip

        config = RunConfig(
            db_path=db_path, strategy="pg-naive", buyers=3, tickets=3, delay=0.0,
            timeout=10.0, start_method="fork",
        )  # fmt: skip
        result = run_sale(config, pacer=pacer, servers=servers)
    report = build_report(result)
    assert report.sold == 0
    errors = [e for e in result.history if e.step is Step.ERROR]
    assert sorted(e.buyer for e in errors) == [1, 2, 3]
    assert all(e.kind == "info" for e in errors)
    assert dbfile.load(db_path) == result.initial  # the db file as the sale opened it
    assert result.final is None
    assert result.final_unknown is not None
    assert report.violations == ()
    assert report.exit_code is ExitCode.STALLED


@pytest.mark.parametrize("users", [False, True], ids=["private", "users-store"])
def test_a_server_that_dies_after_the_sales_is_no_lost_update(db_path: Path, users: bool) -> None:
    """Every buyer bought, then the sale's server died with their sales before they
    were read back: the db file keeps what it had, and nobody knows what the sale
    left. That is a sale whose end is unknown (exit 3), not sales the buyers' writes
    lost (the checker, given the db file, called every one a LOST UPDATE); on the
    user's own store it was exit 4, with no report of what the buyers were told."""
    with PrivateServers() as servers:
        url = servers[StoreKind.POSTGRES]
        postmaster = servers.running()[StoreKind.POSTGRES].pid
        assert postmaster is not None

        def pacer(ctx: BaseContext, config: RunConfig) -> Pacer:
            return _KillTheServerOnceAllBought(
                os.getpgid(postmaster), ctx.Value("i", 0), config.buyers
            )

        config = RunConfig(
            db_path=db_path, strategy="pg-update", buyers=3, tickets=3, delay=0.0,
            timeout=10.0, start_method="fork", store=url if users else None,
        )  # fmt: skip
        result = run_sale(config, pacer=pacer, servers=servers)
    report = build_report(result)
    assert (report.sold, report.unfinished) == (3, 0)
    if not users:
        assert dbfile.load(db_path) == result.initial
    assert report.violations == ()
    assert report.exit_code is ExitCode.STALLED
    assert report.verdict.startswith("INCOMPLETE: 3 of 3 buyer(s) were told they got one")
    assert "could not be read back" in report.verdict if users else "went away" in report.verdict
    # Its history checks the same later: the db file is not what the sale left.
    saved = db_path.parent / "history.jsonl"
    historyfile.save(saved, result)
    again = build_report(historyfile.load(saved, db_path))
    assert (again.verdict, again.exit_code) == (report.verdict, report.exit_code)
    assert report.to_json()["final_unknown"] == result.final_unknown


def test_sales_given_private_servers_start_one_and_share_it(db_path: Path) -> None:
    """Handed servers that have started none yet (an empty mapping), two sales start one
    between them, rather than one each."""
    config = RunConfig(db_path=db_path, strategy="redis-lua", buyers=2, tickets=1, delay=0.0)
    with PrivateServers() as servers:
        assert build_report(run_sale(config, servers=servers)).ok
        first = servers.running()[StoreKind.REDIS].pid
        assert build_report(run_sale(config, servers=servers)).ok
        assert list(servers.running()) == [StoreKind.REDIS]
        assert servers.running()[StoreKind.REDIS].pid == first


REDIS = [name for name in DATABASES if CATALOG[name].store is StoreKind.REDIS]


def _rehearsals_made(db: Any) -> int:
    """How many rehearsals the server has seen set up: each makes its ledger expire
    (``Keys.make``), and nothing else of ticketsim's sets an expiry with EXPIRE."""
    stats = db.info("commandstats")
    return int(stats.get("cmdstat_expire", {}).get("calls", 0))


@pytest.mark.parametrize("strategy", REDIS)
def test_redis_buyers_rehearse_a_purchase_on_keys_of_their_own_and_leave_none(
    db_path: Path, strategy: str
) -> None:
    """Each buyer makes a whole purchase before the sale opens, on keys of its own, so
    that its first purchase in the sale is not its first one: the sale's keys, its
    history and its outcome are as if it had not, and no rehearsal key is left."""
    with contextlib.closing(rd.connect(SERVERS[StoreKind.REDIS])) as db:
        before = _rehearsals_made(db)
        result = sale(db_path, strategy=strategy, tickets=2, buyers=3)
        assert _rehearsals_made(db) - before == 3  # one a buyer
        assert list(db.scan_iter(match=rd.REHEARSAL + "*")) == []
    assert_protocol(result)  # one check and one outcome a buyer: no rehearsal step
    assert result.final is not None
    # Only the sale's buyers sold in the sale's ledger: no rehearsal's sale is there.
    assert {sale.buyer for sale in result.final.ledger} <= {"buyer-1", "buyer-2", "buyer-3"}
    if strategy in SAFE:  # the naive one oversells or not, as the buyers meet
        report = build_report(result)
        assert report.ok, report.verdict
        assert sorted(s.seat for s in result.final.ledger) == [1, 2]


def test_rehearsal_keys_expire_and_a_killed_buyers_are_swept_by_the_next_sale(
    db_path: Path,
) -> None:
    """A buyer killed while it rehearses leaves its keys behind: they were made to
    expire, and the next sale on the server takes them for ticketsim's own (not someone
    else's keys it must refuse to touch) and removes them."""
    assert build_report(sale(db_path, strategy="redis-decr", tickets=1, buyers=1)).ok
    keys = rd.Keys.rehearsal()  # this process's: no buyer's
    with contextlib.closing(rd.connect(SERVERS[StoreKind.REDIS])) as db:
        keys.make(db, 1)
        left = [key.decode() for key in db.scan_iter(match=rd.REHEARSAL + "*")]
        assert len(left) == 4  # remaining, ledger and the two fence keys; no lock yet
        assert all(0 < db.ttl(key) <= rd.REHEARSAL_TTL_S for key in left)
        assert build_report(sale(db_path, strategy="redis-decr", tickets=1, buyers=1)).ok
        assert list(db.scan_iter(match=rd.REHEARSAL + "*")) == []


def test_the_users_store_loses_a_killed_buyers_rehearsal_keys_when_the_sale_ends(
    db_path: Path,
) -> None:
    """On the user's own Redis, which outlives the run, the sale's end removes what a
    killed buyer's rehearsal left, expiry or not (a purchase's SET takes it away); keys
    that merely start the same are someone else's, and refused, not removed."""
    url = SERVERS[StoreKind.REDIS] + "?db=7"
    keys = rd.Keys.rehearsal()
    with contextlib.closing(rd.connect(url)) as db:
        db.flushdb()
        try:
            assert build_report(sale(db_path, strategy="redis-lua", tickets=2, buyers=1,
                                     store=url)).ok  # fmt: skip

            def killed_mid_rehearsal(event: object) -> None:
                # Left while the sale runs, after it vetted the store: as a buyer killed
                # between its rehearsal's SET and removing its keys leaves them.
                del event
                if not db.exists(keys.remaining):
                    keys.make(db, 1)
                    db.persist(keys.remaining)

            result = sale(
                db_path, strategy="redis-lua", tickets=2, buyers=2, store=url,
                watch=killed_mid_rehearsal,
            )  # fmt: skip
            assert build_report(result).ok
            assert list(db.scan_iter(match=rd.REHEARSAL + "*")) == []
            db.set(rd.REHEARSAL + "notes", "mine")
            with pytest.raises(StoreError, match="ticketsim:rehearsal:notes"):
                sale(db_path, strategy="redis-lua", tickets=2, buyers=2, store=url)
            assert db.get(rd.REHEARSAL + "notes") == b"mine"
        finally:
            db.flushdb()


SQL = [name for name in DATABASES if CATALOG[name].store is not StoreKind.REDIS]


@contextlib.contextmanager
def _every_lock_held(kind: StoreKind, location: str) -> Iterator[None]:
    """Another session holds every lock of the store's tables while the context lasts
    (on PostgreSQL, the sale's advisory lock too; a SQLite file in WAL mode has only its
    write lock, and readers never wait for it)."""
    if kind is StoreKind.SQLITE:
        with contextlib.closing(sqlite3.connect(location, isolation_level=None)) as other:
            other.execute("BEGIN EXCLUSIVE")
            yield
            other.execute("ROLLBACK")
        return
    with contextlib.closing(pg.connect(location)) as other:
        other.execute("SET lock_timeout = 5000")  # a lock left held fails the test, not hangs it
        other.execute("BEGIN")
        other.execute(
            "LOCK TABLE ticketsim.sale, ticketsim.ledger, ticketsim.claimed, ticketsim.seats"
            " IN ACCESS EXCLUSIVE MODE"
        )
        other.execute(pg.SALE.advisory)
        yield
        other.execute("ROLLBACK")


@pytest.mark.parametrize("strategy", SQL)
def test_a_sql_buyers_rehearsal_is_a_whole_purchase_that_needs_none_of_the_sales_locks(
    tmp_path: Path, strategy: str
) -> None:
    """A SQLite or PostgreSQL buyer's rehearsal makes a whole purchase, every step of
    it, while another session holds every lock the sale's purchase could wait for: its
    statements ask for none of them, and the store is left as it was."""
    plan = PLANS[StrategyName(strategy)]
    initial = dbfile.TicketDB.fresh(2)
    location = (
        str(tmp_path / "tickets.sqlite")
        if plan.store is StoreKind.SQLITE
        else SERVERS[StoreKind.POSTGRES]
    )
    store = make_store(plan.store, location, plan=plan.plan, initial=initial)
    store.load(initial)
    before = store.snapshot()
    tools: Tools = (
        GuardedTools(store, NoGuard()) if plan.plan is None else TransactionTools(store, plan.retry)
    )
    steps: list[Step] = []

    def record(step: Step, **_: object) -> None:
        steps.append(step)

    with contextlib.closing(store):
        store.prepare()
        if plan.store is StoreKind.POSTGRES:  # a naive statement would otherwise wait for ever
            store.db.execute("SET lock_timeout = 2000")  # type: ignore[attr-defined]
        with _every_lock_held(plan.store, location), store.rehearsal() as scratch:
            assert scratch is not None
            spec = BuyerSpec(1, window=0.0, timeout=2.0)  # a lock it waited for: GuardTimeout
            seat = replace(tools, store=scratch).purchase(spec, os.getpid(), record, Pacer())
        assert seat == 1
        assert Step.READ in steps
        assert Step.WRITE in steps
        assert store.snapshot() == before


def test_a_sqlite_rehearsals_statements_name_no_table() -> None:
    """In a file in WAL mode no lock of the sale's keeps a reader out, so the test above
    cannot see a rehearsal that reads the sale's tables: each statement runs here on a
    database that has no table at all, with the sale's parameters."""
    params = {"read": (), "write": (1,), "ledger": (1, "buyer-1", 2, 0.5), "update": ()}
    with contextlib.closing(sqlite3.connect(":memory:", isolation_level=None)) as empty:
        for field in dataclasses.fields(sq.Statements):  # a new statement needs params here
            if field.name != "immediate":
                empty.execute(getattr(sq.REHEARSAL, field.name), params[field.name]).fetchall()
        empty.execute(sq.REHEARSAL.immediate)
        assert empty.in_transaction
        empty.execute("ROLLBACK")
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            empty.execute(sq.SALE.read)


@pytest.mark.parametrize(
    ("strategy", "tables"),
    [
        ("pg-update", {"sale", "ledger", "ledger_n_seq"}),
        ("pg-unique", {"ledger", "claimed", "ledger_n_seq"}),
        ("pg-skip-locked", {"seats", "ledger", "ledger_n_seq"}),
    ],
)
def test_a_postgres_buyer_has_its_server_open_its_purchases_tables_before_the_sale(
    strategy: str, tables: set[str]
) -> None:
    """Before the sale opens, a buyer's server opens the tables, indexes and sequence its
    purchase will use (looked up for the first time inside the purchase, they cost every
    buyer's critical section), and takes no lock stronger than ACCESS SHARE for it."""
    plan = PLANS[StrategyName(strategy)]
    initial = dbfile.TicketDB.fresh(2)
    store = make_store(
        StoreKind.POSTGRES, SERVERS[StoreKind.POSTGRES], plan=plan.plan, initial=initial
    )
    store.load(initial)
    with contextlib.closing(store):
        db: Any = store.db  # type: ignore[attr-defined]
        db.execute("BEGIN")  # so that the locks prepare takes are held, to be seen
        store.prepare()
        held = db.execute(
            "SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE l.pid = pg_backend_pid() AND c.relnamespace = 'ticketsim'::regnamespace"
        ).fetchall()
        db.execute("ROLLBACK")
    assert {mode for _, mode in held} == {"AccessShareLock"}
    assert {name for name, _ in held} >= tables


def _rehearse_and_fail_midway(store: DatabaseStore) -> None:
    with store.rehearsal() as scratch:
        assert isinstance(scratch, DatabaseStore)
        scratch.db.execute("BEGIN")  # type: ignore[attr-defined]
        raise RuntimeError("refused midway")


@pytest.mark.parametrize("strategy", ["sqlite-update", "pg-update"])
def test_a_rehearsal_that_failed_midway_leaves_no_transaction_for_the_sale(
    tmp_path: Path, strategy: str
) -> None:
    """A rehearsal whose purchase failed inside its transaction (the buyer goes on to the
    sale: ``Tools.rehearse`` keeps no error) leaves the connection in none, so that the
    sale's first statement is not run inside what is left of the rehearsal's."""
    plan = PLANS[StrategyName(strategy)]
    location = (
        str(tmp_path / "tickets.sqlite")
        if plan.store is StoreKind.SQLITE
        else SERVERS[StoreKind.POSTGRES]
    )
    initial = dbfile.TicketDB.fresh(1)
    store = make_store(plan.store, location, plan=plan.plan, initial=initial)
    store.load(initial)
    with contextlib.closing(store):
        with pytest.raises(RuntimeError, match="refused midway"):
            _rehearse_and_fail_midway(store)
        db: Any = store.db  # type: ignore[attr-defined]
        if plan.store is StoreKind.SQLITE:
            assert not db.in_transaction
        else:
            assert db.info.transaction_status == 0  # idle
        seat = TransactionTools(store).purchase(
            BuyerSpec(1, window=0.0, timeout=2.0), os.getpid(), lambda *_, **__: None, Pacer()
        )
        assert seat == 1
        assert store.snapshot().remaining == 0


@pytest.mark.parametrize(
    ("key", "ours"),
    [
        ("ticketsim:rehearsal:123-0123456789ab:remaining", True),
        ("ticketsim:rehearsal:123-0123456789ab:fence-seen", True),
        ("ticketsim:rehearsal:123-0123456789ab:notes", False),
        ("ticketsim:rehearsal:123:remaining", False),
        ("ticketsim:rehearsal:x-0123456789ab:ledger", False),
        ("ticketsim:rehearsal:notes", False),
        ("ticketsim:remaining", False),
    ],
)
def test_only_the_keys_a_rehearsal_makes_count_as_ticketsims(key: str, ours: bool) -> None:
    assert rd.is_rehearsal_key(key) is ours
    made = rd.Keys.rehearsal()
    assert all(rd.is_rehearsal_key(name) for name in made._names())


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script(), "run", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_a_redis_with_no_room_for_the_buyers_is_refused_before_anything_is_written(
    db_path: Path,
) -> None:
    """Each buyer process holds a connection: on a server whose maxclients cannot take
    them all, the latecomers would be turned away one by one and the sale end with them
    unfinished. It is refused before the sale (exit 4, the system refused), the store
    as it was; a crew of a few processes fits, and sells."""
    # A server of its own: the count of clients must be this test's alone.
    with PrivateServers() as own, contextlib.closing(rd.connect(own[StoreKind.REDIS])) as db:
        url = own[StoreKind.REDIS]
        before = db.config_get("maxclients")["maxclients"]
        try:
            db.config_set("maxclients", 4)  # this client and 3 more
            with pytest.raises(ServerUnavailable, match="maxclients is 4") as refused:
                sale(db_path, strategy="redis-decr", tickets=3, buyers=4, store=url)
            assert "need 4 at once" in str(refused.value)
            assert "--pool N" in str(refused.value)
            assert db.dbsize() == 0  # nothing of the sale was made
            done = _run_cli("--strategy", "redis-decr", "--buyers", "4", "--store", url,
                            "--db", str(db_path))  # fmt: skip
            assert done.returncode == ExitCode.IO_ERROR, done.stderr
            assert len(done.stderr.splitlines()) == 1
            assert "3 more can connect" in done.stderr
            report = build_report(
                sale(db_path, strategy="redis-decr", tickets=3, buyers=4, pool=2, store=url)
            )
            assert report.ok, report.verdict
            assert report.sold == 3
        finally:
            db.config_set("maxclients", before)


def test_the_connections_a_sale_needs_at_once() -> None:
    """One a buyer process, or a pool worker; over hosts, two a buyer, one a host and
    the parent's (2 buyers on 2 hosts peaked at 7 in pg_stat_activity)."""
    assert RunConfig(buyers=30, strategy="redis-decr", delay=0.0).connections == 30
    assert RunConfig(buyers=30, pool=3, strategy="redis-decr", delay=0.0).connections == 3
    assert RunConfig(buyers=5, hosts=2, strategy="redis-decr", delay=0.0).connections == 13


@contextlib.contextmanager
def _limited_role(limit: int) -> Iterator[str]:
    """A PostgreSQL role that may have ``limit`` connections, and a database of its
    own: its URL. Both are dropped afterwards."""
    admin_url = SERVERS[StoreKind.POSTGRES]
    with contextlib.closing(pg.connect(admin_url)) as admin:
        admin.execute(f"CREATE ROLE ts_room LOGIN CONNECTION LIMIT {limit}")
        try:
            admin.execute("CREATE DATABASE ts_room OWNER ts_room")
            try:
                yield admin_url.replace("ticketsim@/postgres", "ts_room@/ts_room")
            finally:
                admin.execute("DROP DATABASE ts_room WITH (FORCE)")
        finally:
            admin.execute("DROP ROLE ts_room")


def test_a_host_with_no_room_for_its_buyers_is_refused_before_it_joins(db_path: Path) -> None:
    """'buyers' checked no room: it joined, wrote its row and an error a buyer, and said
    the sale never started (exit 3); the room check of 'run --hosts' sent the user to
    --pool, which it refuses."""
    with _limited_role(4) as url:
        opened = subprocess.run(
            [script(), "sale", "open", "--store", url, "--strategy", "pg-update", "--tickets",
             "2", "--timeout", "5"], capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert opened.returncode == 0, opened.stderr
        joined = subprocess.run(
            [script(), "buyers", "--store", url, "--count", "3", "--host", "ha"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert joined.returncode == ExitCode.IO_ERROR, joined.stdout + joined.stderr
        assert len(joined.stderr.splitlines()) == 1, joined.stderr
        assert "CONNECTION LIMIT is 4" in joined.stderr
        assert "need 6 at once; raise that limit, or lower --count" in joined.stderr
        with contextlib.closing(pg.connect(url)) as db:
            assert db.execute(f"SELECT count(*) FROM {pg.SCHEMA}.hosts").fetchone() == (0,)
        ran = _run_cli("--hosts", "2", "--strategy", "pg-update", "--buyers", "2",
                       "--store", url, "--db", str(db_path))  # fmt: skip
        assert ran.returncode == ExitCode.IO_ERROR, ran.stdout + ran.stderr
        assert "raise that limit, or lower --buyers" in ran.stderr
        assert "--pool" not in ran.stderr


def test_a_postgres_role_with_no_room_for_the_buyers_is_refused_before_anything_is_written(
    db_path: Path,
) -> None:
    """The role's CONNECTION LIMIT binds as the server's max_connections does."""
    with _limited_role(3) as url:
        with pytest.raises(ServerUnavailable, match="role's CONNECTION LIMIT is 3") as refused:
            sale(db_path, strategy="pg-update", tickets=2, buyers=4, store=url)
        assert "3 more can connect; this sale's buyers need 4 at once" in str(refused.value)
        with contextlib.closing(pg.connect(url)) as db:
            made = db.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (pg.SCHEMA,))
            assert made.fetchone() is None  # nothing of the sale was made
        report = build_report(
            sale(db_path, strategy="pg-update", tickets=2, buyers=4, pool=2, store=url)
        )
        assert report.ok, report.verdict
        assert report.sold == 2
        # Full when a buyer connects after all (another client came first): the buyer's
        # history says what to do, which is not to start the server.
        with contextlib.ExitStack() as others:
            for _ in range(3):
                others.enter_context(contextlib.closing(pg.connect(url)))
            with pytest.raises(ServerUnavailable, match="raise that limit, lower --buyers"):
                pg.connect(url)
