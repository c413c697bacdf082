"""Each database strategy against a bare script that makes the same purchases with the
same client: what ticketsim's recording, processes and checks cost (goal: at least 0.9
of the bare script's purchases per second; the script exits 1 when one is not met).
(``redis-fenced`` has no bare twin: its fencing is the lock's plus two scripts; its
cost shows beside ``redis-lock``'s in ``compare``.)

Both sides fork the same number of buyers, each connected before the sale opens (and
having rehearsed one purchase as ticketsim's buyers do: ``Store.rehearsal``), open the
sale once every buyer has said it is ready, at once, through the same gate
(``ticketsim.sale.gate``: a byte on a pipe wakes every buyer together; a
``multiprocessing.Event`` lets them through one by one, which spares a store its
contention: behind it the bare SQLite buyers sold up to ten times faster than behind the
pipe); each buyer looks at the count, then sends its strategy's statements (the bare
side imports them from the store's module, so they cannot drift), and the clock stops
when the last buyer knows its outcome. Purchases per second count the buyers, whether
they bought or gave up: a strategy whose buyers give up on a conflict
(``pg-repeatable-read``) sells 4 to 12 of 60 tickets depending on how the buyers
happened to collide, and sales per second measured that luck, not the speed.
Rounds take turns (ticketsim, bare, ticketsim, ...) on one private server per store,
and the medians and their ratio are printed.

    python benchmarks/stores.py [--runs 9] [--buyers 60] [--strategy pg-update ...]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from goals import Goal, report

from ticketsim.analysis.report import build_report
from ticketsim.core import db as dbfile
from ticketsim.core.exits import ExitCode
from ticketsim.core.names import StoreKind, StrategyName
from ticketsim.core.settings import RunConfig
from ticketsim.engine.databases import PLANS, PrivateServers, make_store
from ticketsim.engine.runner import run_sale
from ticketsim.sale.gate import PipeGate, StartGate
from ticketsim.sale.stores import postgres as pg
from ticketsim.sale.stores import redis as rd
from ticketsim.sale.stores import sqlite as sq
from ticketsim.sale.transaction import MAX_BACKOFF_S

#: A bare purchase: ``buy(db, buyer, pid)``; a Redis one also takes ``keys=``, and the
#: others ``sql=`` (its rehearsal's, as a ticketsim buyer's: ``_bare_buyer``).
Buy = Callable[..., None]
#: The sale's own keys, which a bare Redis purchase names unless it rehearses.
_KEYS = rd.Keys()
#: The tickets on sale, which ticketsim's buyers are given: a bare buyer reads them once,
#: before the sale opens (one buyer process, one value).
_TICKETS = [0]


# --- the bare purchases: the same statements, no history, no checks ------------------


def _sqlite_immediate(
    db: sqlite3.Connection, buyer: str, pid: int, sql: sq.Statements = sq.SALE
) -> None:
    db.execute(sql.immediate)
    (remaining,) = db.execute(sql.read).fetchone()
    if remaining > 0:
        db.execute(sql.write, (remaining - 1,))
        db.execute(sql.ledger, (0, buyer, pid, time.time()))
    db.execute("COMMIT")


def _sqlite_update(
    db: sqlite3.Connection, buyer: str, pid: int, sql: sq.Statements = sq.SALE
) -> None:
    db.execute("BEGIN")
    if db.execute(sql.update).fetchone() is not None:
        db.execute(sql.ledger, (0, buyer, pid, time.time()))
    db.execute("COMMIT")


def _pg_update(db: Any, buyer: str, pid: int, sql: pg.Statements = pg.SALE) -> None:
    db.execute("BEGIN")
    if db.execute(sql.update).fetchone() is not None:
        db.execute(sql.insert_sale, (0, buyer, pid, time.time()))
    db.execute("COMMIT")


def _pg_naive(db: Any, buyer: str, pid: int, sql: pg.Statements = pg.SALE) -> None:
    # No transaction, as PostgresStore's naive read and sell: each statement commits
    # on its own (autocommit), so the row's lock is held by one UPDATE at a time.
    (remaining,) = db.execute(sql.read).fetchone()
    if remaining > 0:
        db.execute(sql.write, (remaining - 1,))
        db.execute(sql.insert_sale, (0, buyer, pid, time.time()))


def _pg_for_update(db: Any, buyer: str, pid: int, sql: pg.Statements = pg.SALE) -> None:
    db.execute("BEGIN")
    (remaining,) = db.execute(sql.for_update).fetchone()
    if remaining > 0:
        db.execute(sql.write, (remaining - 1,))
        db.execute(sql.insert_sale, (0, buyer, pid, time.time()))
    db.execute("COMMIT")


def _pg_serializable(db: Any, buyer: str, pid: int, sql: pg.Statements = pg.SALE) -> None:
    import psycopg

    while True:
        try:
            db.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
            (remaining,) = db.execute(sql.read).fetchone()
            if remaining > 0:
                db.execute(sql.write, (remaining - 1,))
                db.execute(sql.insert_sale, (0, buyer, pid, time.time()))
            db.execute("COMMIT")
            return
        except psycopg.errors.SerializationFailure:
            db.execute("ROLLBACK")
            _pause()


def _redis_decr(db: Any, buyer: str, pid: int, keys: rd.Keys = _KEYS) -> None:
    left = int(db.decr(keys.remaining))
    if left < 0:
        db.incr(keys.remaining)
        return
    db.rpush(keys.ledger, f"0 {buyer} {pid} {time.time()!r}")


def _redis_lua(db: Any, buyer: str, pid: int, keys: rd.Keys = _KEYS) -> None:
    db.eval(rd._SELL_ONE, 2, keys.remaining, keys.ledger, f"{buyer} {pid} {time.time()!r}", 10**6)


def _redis_watch(db: Any, buyer: str, pid: int, keys: rd.Keys = _KEYS) -> None:
    import redis

    with db.pipeline() as pipe:
        while True:
            try:
                pipe.watch(keys.remaining)
                remaining = int(pipe.get(keys.remaining) or 0)
                if remaining <= 0:
                    return
                pipe.multi()
                pipe.set(keys.remaining, remaining - 1)
                pipe.rpush(keys.ledger, f"0 {buyer} {pid} {time.time()!r}")
                pipe.execute()
                return
            except redis.WatchError:
                _pause()


def _pause() -> None:
    """Between a refused transaction and the next try, as ticketsim's buyers pause
    (``ticketsim.sale.transaction``): a retry policy is part of a strategy's purchase."""
    time.sleep(random.uniform(0, MAX_BACKOFF_S))


def _sqlite_naive(
    db: sqlite3.Connection, buyer: str, pid: int, sql: sq.Statements = sq.SALE
) -> None:
    (remaining,) = db.execute(sql.read).fetchone()
    if remaining > 0:
        db.execute(sql.write, (remaining - 1,))
        db.execute(sql.ledger, (0, buyer, pid, time.time()))


def _sqlite_deferred(
    db: sqlite3.Connection, buyer: str, pid: int, sql: sq.Statements = sq.SALE
) -> None:
    db.execute("PRAGMA busy_timeout = 0")
    while True:
        try:
            db.execute("BEGIN DEFERRED")
            (remaining,) = db.execute(sql.read).fetchone()
            if remaining > 0:
                db.execute(sql.write, (remaining - 1,))
                db.execute(sql.ledger, (0, buyer, pid, time.time()))
            db.execute("COMMIT")
            return
        except sqlite3.OperationalError:
            if db.in_transaction:
                db.execute("ROLLBACK")
            _pause()


def _pg_in(begin: str, *, advisory: bool = False, retry: bool = False) -> Buy:
    """BEGIN, read the count (having taken the advisory lock when ``advisory``), write it
    back: the transaction of several PostgreSQL strategies, tried again on a refusal
    when ``retry``."""

    def buy(db: Any, buyer: str, pid: int, sql: pg.Statements = pg.SALE) -> None:
        import psycopg

        while True:
            try:
                db.execute(begin)
                if advisory:
                    db.execute(sql.advisory)
                (remaining,) = db.execute(sql.read).fetchone()
                if remaining > 0:
                    db.execute(sql.write, (remaining - 1,))
                    db.execute(sql.insert_sale, (0, buyer, pid, time.time()))
                db.execute("COMMIT")
                return
            except psycopg.errors.SerializationFailure:
                db.execute("ROLLBACK")
                if not retry:
                    return
                _pause()

    return buy


def _pg_ledger(begin: str, *, unique: bool = False) -> Buy:
    """Count the ledger, then INSERT a sale (with a UNIQUE claim of the seat)."""

    def buy(db: Any, buyer: str, pid: int, sql: pg.Statements = pg.SALE) -> None:
        import psycopg

        while True:
            try:
                db.execute(begin)
                (count,) = db.execute(sql.count_ledger).fetchone()
                if count < _TICKETS[0]:
                    if unique:
                        db.execute(sql.claim, (count + 1,))
                    db.execute(sql.insert_sale, (count + 1, buyer, pid, time.time()))
                db.execute("COMMIT")
                return
            except (psycopg.errors.SerializationFailure, psycopg.errors.UniqueViolation):
                db.execute("ROLLBACK")
                _pause()

    return buy


def _pg_skip_locked(db: Any, buyer: str, pid: int, sql: pg.Statements = pg.SALE) -> None:
    while True:
        db.execute("BEGIN")
        row = db.execute(sql.skip_locked).fetchone()
        if row is None:
            free = db.execute(sql.free_seats).fetchone()[0]
            db.execute("COMMIT")
            if free:
                _pause()
                continue
            return
        db.execute(sql.take_seat, (buyer, row[0]))
        db.execute(sql.insert_sale, (row[0], buyer, pid, time.time()))
        db.execute("COMMIT")
        return


def _pg_optimistic(db: Any, buyer: str, pid: int, sql: pg.Statements = pg.SALE) -> None:
    while True:
        db.execute("BEGIN")
        remaining, version = db.execute(sql.versioned).fetchone()
        if remaining <= 0:
            db.execute("COMMIT")
            return
        if db.execute(sql.write_version, (remaining - 1, version)).rowcount != 1:
            db.execute("ROLLBACK")
            _pause()
            continue
        db.execute(sql.insert_sale, (0, buyer, pid, time.time()))
        db.execute("COMMIT")
        return


def _redis_naive(db: Any, buyer: str, pid: int, keys: rd.Keys = _KEYS) -> None:
    remaining = int(db.get(keys.remaining) or 0)
    if remaining > 0:
        db.set(keys.remaining, remaining - 1)
        db.rpush(keys.ledger, f"0 {buyer} {pid} {time.time()!r}")


def _redis_lock(db: Any, buyer: str, pid: int, keys: rd.Keys = _KEYS) -> None:
    token = f"{pid}-{time.monotonic_ns()}"
    while not db.set(keys.lock, token, nx=True, px=int(rd.LEASE_S * 1000)):
        time.sleep(rd.LOCK_POLL_S)
    remaining = int(db.get(keys.remaining) or 0)
    if remaining > 0:
        with db.pipeline(transaction=False) as pipe:
            pipe.set(keys.remaining, remaining - 1)
            pipe.rpush(keys.ledger, f"0 {buyer} {pid} {time.time()!r}").execute()
    db.eval(rd._UNLOCK, 1, keys.lock, token)


BARE: dict[str, Buy] = {
    "sqlite-naive": _sqlite_naive,
    "sqlite-deferred": _sqlite_deferred,
    "pg-naive": _pg_naive,
    "pg-advisory": _pg_in("BEGIN", advisory=True),
    "pg-repeatable-read": _pg_in("BEGIN ISOLATION LEVEL REPEATABLE READ"),
    "pg-write-skew": _pg_ledger("BEGIN ISOLATION LEVEL REPEATABLE READ"),
    "pg-ledger-serializable": _pg_ledger("BEGIN ISOLATION LEVEL SERIALIZABLE"),
    "pg-skip-locked": _pg_skip_locked,
    "pg-unique": _pg_ledger("BEGIN", unique=True),
    "pg-optimistic": _pg_optimistic,
    "redis-naive": _redis_naive,
    "redis-lock": _redis_lock,
    "sqlite-immediate": _sqlite_immediate,
    "sqlite-update": _sqlite_update,
    "pg-update": _pg_update,
    "pg-for-update": _pg_for_update,
    "pg-serializable": _pg_serializable,
    "redis-decr": _redis_decr,
    "redis-lua": _redis_lua,
    "redis-watch": _redis_watch,
}


def _connect(kind: StoreKind, location: str) -> Any:
    if kind is StoreKind.SQLITE:
        return sqlite3.connect(location, timeout=30, isolation_level=None)
    if kind is StoreKind.POSTGRES:
        return pg.connect(location)
    return rd.connect(location)


def _look(kind: StoreKind, db: Any) -> None:
    if kind is StoreKind.REDIS:
        db.get(rd.REMAINING)
    else:
        db.execute(sq.SALE.read if kind is StoreKind.SQLITE else pg.SALE.read).fetchone()


def _bare_buyer(
    kind: StoreKind,
    location: str,
    buy: Buy,
    number: int,
    gate: PipeGate,
    ready: Any,
    ends: Any,
    over: Any,
) -> None:
    db = _connect(kind, location)
    _look(kind, db)  # as a ticketsim buyer's store prepares: connected, and read once
    if kind is StoreKind.POSTGRES:  # and the server has opened the purchase's tables
        _TICKETS[0], model = db.execute("SELECT tickets, model FROM ticketsim.sale").fetchone()
        db.execute(pg.OPEN_TABLES[model])
    # As a ticketsim buyer rehearses (Tools.rehearse): one purchase, on keys of its own
    # (Redis) or with statements on no table (the SQL stores).
    if kind is StoreKind.REDIS:
        with rd.Keys.rehearsing(db) as keys:
            buy(db, f"buyer-{number}", os.getpid(), keys=keys)
    else:
        rehearsal = pg.REHEARSAL if kind is StoreKind.POSTGRES else sq.REHEARSAL
        buy(db, f"buyer-{number}", os.getpid(), sql=rehearsal)
    ready.release()
    gate.wait(60)
    # A ticketsim buyer looks at the count before it buys (its `check` step): the same.
    _look(kind, db)
    buy(db, f"buyer-{number}", os.getpid())
    ends[number] = time.monotonic()
    # As ticketsim's buyers do: a process that ends during the sale takes a core from
    # the buyers still buying while the kernel takes its memory down.
    over[1].release()
    over[0].wait_over(120)


def bare(strategy: str, location: str, buyers: int) -> float:
    """Purchases per second of the bare script: its buyers over the time from the
    opening of the sale until the last of them was done."""
    kind = PLANS[strategy].store  # type: ignore[index]
    store = make_store(kind, location)
    store.load(dbfile.TicketDB.fresh(buyers))
    ctx = multiprocessing.get_context("fork")
    start, ends = StartGate(ctx), ctx.Array("d", buyers + 1)
    ready = ctx.Semaphore(0)  # a buyer is connected and waits at the gate
    over = (start.gate, ctx.Semaphore(0))  # the sale is over; a buyer is done
    processes = [
        ctx.Process(
            target=_bare_buyer,
            args=(kind, location, BARE[strategy], n, start.gate, ready, ends, over),
        )
        for n in range(1, buyers + 1)
    ]
    try:
        for process in processes:
            process.start()
        # Opened as ticketsim opens it: once every buyer has said it is ready. (A fixed
        # pause instead gave the bare side a quiet machine that ticketsim's sale,
        # opened at once, never has.)
        for _ in processes:
            if not ready.acquire(timeout=120):
                raise SystemExit(f"{strategy}: a bare buyer never got ready")
        opened = time.monotonic()
        start.set()
        for _ in processes:
            if not over[1].acquire(timeout=120):
                raise SystemExit(f"{strategy}: a bare buyer never finished")
        start.end()
        for process in processes:
            process.join(120)
    finally:
        start.close()
    return buyers / (float(max(ends[1:])) - opened)


def ticketsim(strategy: str, db_path: Path, buyers: int, servers: PrivateServers) -> float:
    config = RunConfig(
        strategy=strategy, buyers=buyers, tickets=buyers, delay=0.0, db_path=db_path,
        start_method="fork", seed=1,
    )  # fmt: skip
    report = build_report(run_sale(config, servers=servers))
    ended = report.exit_code in (ExitCode.OK, ExitCode.VIOLATED) and report.stalled is None
    if not ended or report.elapsed_s <= 0:  # stalled, or buyers dead: no speed to measure
        raise SystemExit(f"{strategy}: the sale did not end well: {report.verdict}")
    # Every buyer has an outcome (bought, refused, gave up), and elapsed_s runs from the
    # opening of the sale to the last of them: the naive ones' too, right or wrong.
    return buyers / report.elapsed_s


def goals(runs: int, buyers: int, chosen: list[str] | None = None) -> list[Goal]:
    """Each strategy's purchases per second against its bare script's, rounds taking turns:
    the median of the rounds' ratios, against issue 19's bound of 0.9."""
    print(f"{buyers} buyers, one ticket each; medians of {runs} rounds taken in turns")
    print(f"{'strategy':18} {'ticketsim':>12} {'bare':>12} {'ratio':>7}")
    found: list[Goal] = []
    with tempfile.TemporaryDirectory() as folder, PrivateServers() as servers:
        db_path = Path(folder) / "tickets.json"
        for strategy in chosen or list(BARE):
            kind = PLANS[StrategyName(strategy)].store
            location = (
                str(Path(folder) / "bare.sqlite") if kind is StoreKind.SQLITE else servers[kind]
            )
            ours, theirs = [], []
            for _ in range(runs):
                ours.append(ticketsim(strategy, db_path, buyers, servers))
                theirs.append(bare(strategy, location, buyers))
            a, b = statistics.median(ours), statistics.median(theirs)
            ratio = statistics.median(o / t for o, t in zip(ours, theirs, strict=True))
            print(f"{strategy:18} {a:10.0f}/s {b:10.0f}/s {ratio:7.2f}")
            found.append(Goal(f"`{strategy}` against its bare script", ratio, 0.9, ">=", "x"))
        with contextlib.suppress(OSError):
            os.remove(db_path)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--buyers", type=int, default=60)
    parser.add_argument("--strategy", action="append", choices=sorted(BARE))
    options = parser.parse_args()
    report(goals(options.runs, options.buyers, options.strategy))


if __name__ == "__main__":
    main()
