"""Helpers shared by the tests that run real sales."""

from __future__ import annotations

import contextlib
import itertools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ticketsim.analysis.checker import Kind, check_db
from ticketsim.analysis.report import build_report
from ticketsim.core.events import OUTCOMES, Event, Step
from ticketsim.core.exits import ExitCode
from ticketsim.core.settings import RunConfig
from ticketsim.engine.databases import PrivateServers
from ticketsim.engine.runner import run_sale

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ticketsim.core.result import RunResult
    from ticketsim.engine.runner import PacerFactory, Watcher

START_METHODS = ("fork", "spawn", "forkserver")


@contextlib.contextmanager
def fresh_db() -> Iterator[Path]:
    """A db path of its own for each hypothesis example (fixtures are not reset per example)."""
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / "tickets.json"


#: One real PostgreSQL and one real Redis for the whole session, each started the first
#: time a test sells on it (a server per sale would cost a second each), and stopped
#: when the session ends (``tests/conftest.py``).
SERVERS = PrivateServers()


def sale(
    db_path: Path,
    *,
    pacer: PacerFactory | None = None,
    watch: Watcher | None = None,
    **options: object,
) -> RunResult:
    options.setdefault("delay", 0.0)
    options.setdefault("timeout", 20.0)
    config = RunConfig(db_path=db_path, **options)  # type: ignore[arg-type]
    return run_sale(config, pacer=pacer, watch=watch, servers=SERVERS)


def assert_protocol(result: RunResult) -> None:
    """Every buyer started, took its steps in order and ended with exactly one outcome."""
    buyers = result.config.buyers
    by_buyer: dict[int, list[Event]] = {}
    for event in result.history:
        by_buyer.setdefault(event.buyer, []).append(event)
    assert sorted(by_buyer) == list(range(1, buyers + 1))
    # Pool workers run many buyers each; buyer threads and tasks share ticketsim's process.
    if result.config.workers is None and result.config.worker_kind == "processes":
        assert len({events[0].pid for events in by_buyer.values()}) == buyers
    for events in by_buyer.values():
        steps = [e.step for e in events if e.step is not Step.TORN]
        assert steps[0] is Step.READY
        assert steps[1] is Step.CHECK
        assert sum(s in OUTCOMES for s in steps) == 1
        assert steps[-1] in OUTCOMES
        assert [e.t for e in events] == sorted(e.t for e in events)


def expected_race(strategy: str, tickets: int, buyers: int) -> dict[str, int]:
    """What lockstep must produce: every buyer reads ``tickets``, so all take seat 1.

    Writes then land in buyer order. The db file and the seat map keep only the last
    write, so every earlier sale is lost; the unlocked Value keeps a ledger of every
    acknowledged sale, so nothing is lost, but the count says only one was sold.
    """
    if tickets == 0:
        return dict.fromkeys(
            ("sold", "oversold", "double_booked", "lost_sales", "ledger", "remaining"), 0
        )
    keeps_all = strategy == "value-unlocked"
    return {
        "sold": buyers,
        "oversold": max(0, buyers - tickets),
        "double_booked": 1 if buyers > 1 else 0,
        "lost_sales": 0 if keeps_all else buyers - 1,
        "ledger": buyers if keeps_all else 1,
        "remaining": tickets - 1,
    }


def assert_forced_race(result: RunResult, tickets: int, buyers: int) -> None:
    strategy = result.config.strategy
    report = build_report(result)
    want = expected_race(strategy, tickets, buyers)
    got = {key: getattr(report, key) for key in want if key != "ledger"}
    got["ledger"] = report.ledger_sales or 0
    assert got == want
    # Every read happened before any write, so no read could see a write half done.
    assert report.torn_reads == 0
    assert result.final is not None
    ledger = [s.buyer for s in result.final.ledger]
    if strategy == "value-unlocked":
        assert sorted(ledger) == sorted(f"buyer-{n}" for n in range(1, want["sold"] + 1))
        problems = {v.kind for v in check_db(result.final)}
        assert problems == (
            set() if buyers == 1 or not tickets else {Kind.COUNT_MISMATCH, Kind.SEAT_CONFLICT}
        )
    else:
        # The last writer's snapshot (or seat claim) is what is left: a consistent db.
        assert ledger == ([f"buyer-{buyers}"] if tickets else [])
        assert check_db(result.final) == []
    assert report.exit_code is (ExitCode.OK if report.violations == () else ExitCode.VIOLATED)
    assert bool(report.violations) == (buyers > 1 and tickets > 0)
    assert_protocol(result)


def assert_safe_and_live(result: RunResult) -> None:
    tickets, buyers = result.initial.remaining, result.config.buyers
    report = build_report(result)
    assert report.violations == ()
    assert report.exit_code is ExitCode.OK
    assert report.sold == min(tickets, buyers)  # liveness: a lock that sells nothing is no fix
    assert result.final is not None
    assert result.final.remaining == tickets - report.sold
    assert sorted(s.seat for s in result.final.ledger) == list(range(1, report.sold + 1))
    assert_protocol(result)
    # Serialisability, read off the history: inside the lock each read sees every earlier
    # write, so in time order the counts read go T, T-1, ..., 1, then 0 for the rest ...
    reads = sorted((e for e in result.history if e.step is Step.READ), key=lambda e: e.t)
    assert [e.value for e in reads] == [max(tickets - i, 0) for i in range(buyers)]
    # ... and no two read-to-write sections overlap.
    spans = sorted(
        (r.t, w.t)
        for r in reads
        for w in result.history
        if w.step is Step.WRITE and w.buyer == r.buyer
    )
    assert all(a_end < b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))


def script() -> str:
    """The installed ``ticketsim`` console script, beside this interpreter."""
    found = shutil.which("ticketsim", path=str(Path(sys.executable).parent))
    assert found is not None, "install the project (pip install -e '.[test]') first"
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux ``/proc``)."""
    found, todo = [], [pid]
    while todo:
        try:  # a process that ends while it is looked at has no threads left to list
            threads = list(Path(f"/proc/{todo.pop()}/task").glob("*/children"))
        except OSError:
            continue
        for children in threads:
            try:
                kids = [int(k) for k in children.read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def python(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a fresh interpreter that imports this checkout's ticketsim:
    for what a test must not do to its own process (lower its limits, start a server
    under them)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parents[1],
        check=False,
    )
