"""Every yes and no of ``ticketsim strategies``, observed in a real sale.

Each test below derives one claim from what actually happens and compares it with
the table: changing the table without changing the behaviour (or the other way
round) fails here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sales import SERVERS, descendants, sale, script

from ticketsim.analysis.checker import Kind
from ticketsim.analysis.report import build_report
from ticketsim.core import db as dbfile
from ticketsim.core.catalog import CATALOG, Claims
from ticketsim.core.events import Step
from ticketsim.core.names import StoreKind
from ticketsim.core.settings import RunConfig, lockstep_possible
from ticketsim.engine.runner import run_sale
from ticketsim.engine.strategies import STRATEGIES, Setup
from ticketsim.errors import DbError
from ticketsim.sale.channel import EventChannel
from ticketsim.sale.steps import BuyerSpec, Pacer
from ticketsim.sale.stores import FileStore, NaiveFileStore
from ticketsim.sale.stores._ledger import WholeSeen

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ticketsim.core.events import Step as StepType

#: The stall guard in tests that kill buyers: long enough that a loaded 2-core machine
#: never looks stalled when it is only slow, short enough to keep the suite quick.
STALL_S = 3.0

NAMES = [name.value for name in STRATEGIES]


def claims(strategy: str) -> Claims:
    return CATALOG[strategy].claims  # type: ignore[index]


def test_a_racing_count_never_claims_to_survive_a_kill() -> None:
    """Where the count races, it disagrees with the ledger whether a buyer dies or not:
    such a strategy claims no consistency after a kill."""
    for info in CATALOG.values():
        if not info.claims.count:
            assert not info.claims.crash_consistent, info.name


def test_every_claim_has_a_test_here() -> None:
    tested = {
        "count",
        "seats",
        "ledger",
        "killed_holder",
        "durable",
        "separate_programs",
        "crash_consistent",
    }
    assert {f.name for f in dataclasses.fields(Claims)} == tested


@pytest.mark.parametrize("strategy", NAMES)
def test_what_a_strategy_protects_in_a_race(db_path: Path, strategy: str) -> None:
    """Two tickets, three buyers; the race is forced wherever the strategy allows it.
    (Two, so that a buyer that gives up when refused leaves a ticket unsold.)"""
    forced = not CATALOG[strategy].serialises and lockstep_possible(strategy, 3, 2)  # type: ignore[index]
    result = sale(
        db_path,
        strategy=strategy,
        tickets=2,
        buyers=3,
        lockstep=forced,
        delay=0.0 if forced else 0.01,
    )
    report = build_report(result)
    kinds = {v.kind for v in report.violations}
    observed = {
        "count": not kinds & {Kind.OVERSOLD, Kind.NEGATIVE_REMAINING}
        and report.remaining == report.tickets - report.sold,
        "seats": not kinds & {Kind.DOUBLE_BOOKED, Kind.SEAT_CONFLICT},
        "ledger": Kind.LOST_SALE not in kinds and report.ledger_sales == report.sold,
    }
    table = claims(strategy)
    assert observed == {"count": table.count, "seats": table.seats, "ledger": table.ledger}
    assert report.ok is CATALOG[strategy].safe  # type: ignore[index]


@pytest.mark.parametrize("strategy", NAMES)
def test_a_buyer_killed_inside_its_critical_section(db_path: Path, strategy: str) -> None:
    config = RunConfig(
        db_path=db_path,
        strategy=strategy,
        tickets=3,
        buyers=3,
        delay=0.0,
        timeout=STALL_S,
        start_method="fork",
        kill_holder=True,
    )
    result = run_sale(config, servers=SERVERS)
    report = build_report(result)
    assert len(result.faults) == 1  # somebody really was killed, in its critical section
    assert "inside its critical section" in result.faults[0]
    survived = result.stalled is None
    assert survived is claims(strategy).killed_holder, report.verdict
    consistent = all(v.kind is not Kind.COUNT_MISMATCH for v in report.violations)
    if survived and claims(strategy).count:  # a racing count disagrees, killed or not
        assert consistent is claims(strategy).crash_consistent, report.verdict
    if survived and consistent and CATALOG[strategy].safe:  # type: ignore[index]
        assert report.ok, report.verdict  # and nothing was lost or sold twice on the way
    lost = [e for e in result.history if e.step is Step.LOST]
    assert lost  # the victim's outcome is unknown, and the history says so
    assert all(e.kind == "info" for e in lost)
    assert multiprocessing.active_children() == []


class _Crash(Exception):
    """The process dies here."""


def _noop(step: StepType, **_: object) -> None:
    del step


@contextlib.contextmanager
def _one_buyer(db_path: Path, timeout: float) -> Iterator[Setup]:
    """What a strategy is set up with for one buyer of 2 tickets on a fresh db."""
    ctx = multiprocessing.get_context("fork")
    initial = dbfile.TicketDB.fresh(2)
    dbfile.write_atomic(db_path, initial)
    channel = EventChannel(ctx)
    try:
        yield Setup(ctx, str(db_path), initial, 1, channel.sender, timeout, servers=SERVERS)
    finally:
        channel.close()


def _sale_is_in_the_file_at_once(db_path: Path, strategy: str) -> bool:
    with _one_buyer(db_path, 10.0) as setup, STRATEGIES[strategy].provide(setup) as tools:  # type: ignore[index]
        assert tools.purchase(BuyerSpec(1, 0.0, 10.0), os.getpid(), _noop, Pacer()) == 1
        return len(dbfile.load(db_path).ledger) == 1


def _a_write_that_dies_halfway_leaves_the_db_whole(
    db_path: Path, store: FileStore | NaiveFileStore, monkeypatch: pytest.MonkeyPatch
) -> bool:
    before = dbfile.TicketDB.fresh(2)
    dbfile.write_atomic(db_path, before)

    def dying_dump(obj: object, fp: Any, **_: object) -> None:
        fp.write(json.dumps(obj)[:20])
        raise _Crash

    def dying_dumps(db: dbfile.TicketDB) -> str:
        raise _Crash

    with monkeypatch.context() as patch:
        patch.setattr(json, "dump", dying_dump)  # the json module ticketsim.core.db writes with
        patch.setattr(dbfile, "dumps", dying_dumps)
        with pytest.raises(_Crash):
            # Seen whole: the write that encodes the db (the fast path appends bytes).
            store.sell(WholeSeen.of(before), dbfile.Sale("buyer-1", 1, os.getpid(), time.time()))
    try:
        return dbfile.load(db_path) == before
    except DbError:
        return False


@pytest.mark.parametrize("strategy", NAMES)
def test_whether_each_sale_is_durable_as_it_is_made(
    db_path: Path, strategy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    durable = _sale_is_in_the_file_at_once(db_path, strategy)
    if durable:
        ctx = multiprocessing.get_context("fork")
        setup = Setup(ctx, str(db_path), dbfile.TicketDB.fresh(2), 1, None, 10.0, servers=SERVERS)
        with STRATEGIES[strategy].provide(setup) as tools:  # type: ignore[index]
            assert isinstance(tools.store, (FileStore, NaiveFileStore))
            durable = _a_write_that_dies_halfway_leaves_the_db_whole(
                db_path, tools.store, monkeypatch
            )
    assert durable is claims(strategy).durable


# --- two separate programs on one db ----------------------------------------------------

#: Program A's race window. A is stopped in it until B is done or waits for A, so it
#: need only last long enough for the test to see A in it.
WINDOW_S = 2.0
#: The interpreter of the programs: their servers (PostgreSQL's) are not looked at.
_PYTHON = os.path.realpath(sys.executable)


def _pythons(pid: int) -> list[int]:
    """The Python processes below program ``pid``: its buyers, office, manager."""
    found = []
    for child in descendants(pid):
        with contextlib.suppress(OSError):
            if os.path.realpath(f"/proc/{child}/exe") == _PYTHON:
                found.append(child)
    return found


def _asleep(pid: int) -> bool:
    try:
        return "nanosleep" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


def _sleeper(pid: int) -> int | None:
    """A Python process below program ``pid`` that sleeps in ``time.sleep``, if one does:
    a buyer (or the office) in its race window, having read the db and not yet written
    it; with no race window, a buyer waiting for a lock another program holds
    (filelock's polling). Nothing else there sleeps."""
    return next((child for child in _pythons(pid) if _asleep(child)), None)


def _waits(pid: int) -> bool:
    """Program ``pid`` (with no race window) waits for a lock another program holds: a
    buyer of its does (:func:`_sleeper`), or, before it has started any process, the
    program itself does, loading its SQLite file in SQLite's busy handler."""
    return _sleeper(pid) is not None or (not _pythons(pid) and _asleep(pid))


def _program(db_path: Path, strategy: str, buyers: int, delay: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            script(),
            "run",
            "--keep",
            "--json",
            "--strategy",
            strategy,
            "--buyers",
            str(buyers),
            "--delay",
            str(delay),
            "--timeout",
            "30",
            "--start-method",
            "fork",
            "--db",
            str(db_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _report(program: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = program.communicate(timeout=120)
    assert program.returncode in (0, 1), err
    report: dict[str, Any] = json.loads(out)
    return report


#: Two programs of a database strategy each sell from a copy of the db file (a private
#: server each, or the SQLite file beside the db, loaded afresh): what protects one
#: store's strategies across programs is the store's, so one of each kind of copy
#: stands for them (Redis's private server is made as PostgreSQL's).
SEPARATE = [
    name
    for name in NAMES
    if CATALOG[name].store is StoreKind.FILE  # type: ignore[index]
] + ["sqlite-immediate", "pg-for-update"]


def test_one_database_strategy_stands_for_its_store_across_programs() -> None:
    for info in CATALOG.values():
        if info.store is not StoreKind.FILE:
            assert info.claims.separate_programs is claims("sqlite-immediate").separate_programs


@pytest.mark.skipif(not Path("/proc/self/wchan").exists(), reason="needs Linux /proc/PID/wchan")
@pytest.mark.parametrize("strategy", SEPARATE)
def test_two_programs_selling_the_last_ticket_at_once(db_path: Path, strategy: str) -> None:
    """A reads the last ticket, and is stopped in its race window; only then does B
    start, and A goes on once B has sold, or waits for A.

    Unless something outside both programs serialises them, B reads the same ticket,
    and both sell it. However long B takes to start, A is still inside its window.
    """
    dbfile.write_atomic(db_path, dbfile.TicketDB.fresh(1))
    first = _program(db_path, strategy, buyers=1, delay=WINDOW_S)
    deadline = time.monotonic() + 60
    while (holder := _sleeper(first.pid)) is None:
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "program A never reached its race window"
        time.sleep(0.01)
    os.kill(holder, signal.SIGSTOP)
    try:
        second = _program(db_path, strategy, buyers=1, delay=0.0)
        while second.poll() is None and not _waits(second.pid):
            assert time.monotonic() < deadline, "program B neither ended nor waited for A"
            time.sleep(0.01)
    finally:
        os.kill(holder, signal.SIGCONT)
    a, b = _report(first), _report(second)
    final = dbfile.load(db_path)
    protected = a["sold"] + b["sold"] == 1 and len(final.ledger) == 1
    assert protected is claims(strategy).separate_programs, (a["verdict"], b["verdict"])
    if protected:
        assert (a["ok"], b["ok"]) == (True, True), (a["verdict"], b["verdict"])
        assert (a["sold"], b["sold"]) == (1, 0)  # B waited for A's lock, then found none
    else:
        # Both told their buyer "yes" for the one ticket; B wrote first, A wrote over it.
        assert (a["sold"], b["sold"]) == (1, 1), (a["verdict"], b["verdict"])
        assert [s.buyer for s in final.ledger] == ["buyer-1"]


def test_two_filelock_programs_share_one_db_and_their_ledgers_add_up(db_path: Path) -> None:
    dbfile.write_atomic(db_path, dbfile.TicketDB.fresh(10))
    programs = [_program(db_path, "filelock", buyers=8, delay=0.02) for _ in range(2)]
    reports = [_report(p) for p in programs]
    final = dbfile.load(db_path)
    assert sum(r["sold"] for r in reports) == 10  # 16 buyers wanted 10 tickets
    assert all(r["ok"] for r in reports), [r["verdict"] for r in reports]
    assert final.remaining == 0
    assert sorted(s.seat for s in final.ledger) == list(range(1, 11))
    assert len({(s.buyer, s.pid) for s in final.ledger}) == 10


def test_the_ticket_office_waits_out_the_start_of_slow_buyers(db_path: Path) -> None:
    """The office gave up after --timeout with no request, while the parent waits up to
    30 s for slow buyers (spawn, a big sale) to be ready: a sale of 100 spawned buyers
    with --timeout 1 opened on an office that had gone, and sold nothing."""
    with _one_buyer(db_path, 1.0) as setup, STRATEGIES["office"].provide(setup) as tools:  # type: ignore[index]
        time.sleep(2.0)  # the buyers still starting, twice the timeout
        assert tools.purchase(BuyerSpec(1, 0.0, 5.0), os.getpid(), _noop, Pacer()) == 1
    assert len(dbfile.load(db_path).ledger) == 1
