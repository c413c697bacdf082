"""Unit tests of the report: every figure derived from a hand-made run result."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from ticketsim.analysis.checker import Kind
from ticketsim.analysis.report import Report, build_report
from ticketsim.core.db import Sale, TicketDB
from ticketsim.core.events import Event, Step, buyer_name
from ticketsim.core.exits import ExitCode
from ticketsim.core.result import RunResult
from ticketsim.core.settings import RunConfig
from ticketsim.engine.runner import run_sale

if TYPE_CHECKING:
    from pathlib import Path

JSON_KEYS = {
    "system",
    "cut_off",
    "hosts",
    "retries",
    "gave_up",
    "complete",
    "survivors",
    "killed_on_purpose",
    "died",
    "strategy",
    "pool",
    "crew",
    "workers",
    "lesson",
    "startup_s",
    "caveat",
    "schedule",
    "faults",
    "io_error",
    "safe",
    "buyers",
    "tickets",
    "sold",
    "refused",
    "saw_but_refused",
    "unfinished",
    "remaining",
    "ledger_sales",
    "oversold",
    "double_booked",
    "lost_sales",
    "torn_reads",
    "ok",
    "verdict",
    "exit_code",
    "stalled",
    "final_unknown",
    "violations",
    "elapsed_s",
    "throughput",
    "delay",
    "seed",
    "start_method",
    "db",
}


def _pid(buyer: int) -> int:
    return 7000 + buyer


def _ev(buyer: int, step: Step, *, value: int | None = None, seat: int | None = None) -> Event:
    return Event(buyer=buyer, step=step, t=0.0, pid=_pid(buyer), value=value, seat=seat)


def _timed(*events: Event) -> tuple[Event, ...]:
    return tuple(replace(event, t=100.0 + i) for i, event in enumerate(events, start=1))


def _sale(buyer: int, seat: int) -> Sale:
    return Sale(buyer=buyer_name(buyer), seat=seat, pid=_pid(buyer), time=1795000000.0 + seat)


def _result(
    db_path: Path,
    *,
    strategy: str,
    buyers: int,
    tickets: int,
    initial: TicketDB,
    final: TicketDB | None,
    history: tuple[Event, ...],
    final_error: str | None = None,
    stalled: str | None = None,
    elapsed_s: float = 2.0,
) -> RunResult:
    config = RunConfig(
        buyers=buyers, tickets=tickets, strategy=strategy, db_path=db_path, delay=0.01, seed=7
    )
    return RunResult(
        config=config,
        start_method="fork",
        seed=7,
        initial=initial,
        final=final,
        final_error=final_error,
        history=history,
        opened_at=100.0,
        elapsed_s=elapsed_s,
        stalled=stalled,
    )


def _lock_run(db_path: Path, *, elapsed_s: float = 2.0) -> RunResult:
    """lock, 3 buyers, 2 tickets: buyer-1 and buyer-2 buy, buyer-3 saw 2 left but is refused."""
    history = _timed(
        *(_ev(b, Step.READY) for b in (1, 2, 3)),
        *(_ev(b, Step.CHECK, value=2) for b in (1, 2, 3)),
        _ev(1, Step.ENTER),
        _ev(1, Step.READ, value=2),
        _ev(1, Step.WRITE, value=1, seat=1),
        _ev(1, Step.LEAVE),
        _ev(1, Step.OK, seat=1),
        _ev(2, Step.ENTER),
        _ev(2, Step.TORN),
        _ev(2, Step.READ, value=1),
        _ev(2, Step.WRITE, value=0, seat=2),
        _ev(2, Step.LEAVE),
        _ev(2, Step.OK, seat=2),
        _ev(3, Step.ENTER),
        _ev(3, Step.READ, value=0),
        _ev(3, Step.LEAVE),
        _ev(3, Step.FAIL),
    )
    initial = TicketDB.fresh(2)
    return _result(
        db_path,
        strategy="lock",
        buyers=3,
        tickets=2,
        initial=initial,
        final=initial.sell(_sale(1, 1)).sell(_sale(2, 2)),
        history=history,
        elapsed_s=elapsed_s,
    )


def _race_run(db_path: Path) -> RunResult:
    """none, 3 buyers, 1 ticket: all read 1 before any writes; the last write wins."""
    history = _timed(
        *(_ev(b, Step.CHECK, value=1) for b in (1, 2, 3)),
        _ev(2, Step.TORN),
        *(_ev(b, Step.READ, value=1) for b in (1, 2, 3)),
        *(_ev(b, Step.WRITE, value=0, seat=1) for b in (1, 2, 3)),
        _ev(3, Step.TORN),
        *(_ev(b, Step.OK, seat=1) for b in (1, 2, 3)),
    )
    initial = TicketDB.fresh(1)
    return _result(
        db_path,
        strategy="none",
        buyers=3,
        tickets=1,
        initial=initial,
        final=initial.sell(_sale(3, 1)),
        history=history,
    )


def test_clean_lock_run_report(db_path: Path) -> None:
    report = build_report(_lock_run(db_path))
    assert (report.strategy, report.safe, report.buyers, report.tickets) == ("lock", True, 3, 2)
    assert report.sold == 2
    assert report.refused == 1
    assert report.saw_but_refused == 1
    assert report.unfinished == 0
    assert report.remaining == 0
    assert report.ledger_sales == 2
    assert report.oversold == 0
    assert report.double_booked == 0
    assert report.lost_sales == 0
    assert report.torn_reads == 1
    assert report.violations == ()
    assert report.stalled is None
    assert report.ok
    assert report.exit_code is ExitCode.OK
    assert report.verdict == "OK: sold 2 of 2 ticket(s) to 3 buyer(s); every invariant held"
    assert (report.seed, report.start_method, report.delay) == (7, "fork", 0.01)
    assert report.db == str(db_path)


def test_race_run_report(db_path: Path) -> None:
    report = build_report(_race_run(db_path))
    assert (report.strategy, report.safe, report.buyers, report.tickets) == ("none", False, 3, 1)
    assert report.sold == 3
    assert report.refused == 0
    assert report.saw_but_refused == 0
    assert report.unfinished == 0
    assert report.remaining == 0
    assert report.ledger_sales == 1
    assert report.oversold == 2
    assert report.double_booked == 1
    assert report.lost_sales == 2
    assert report.torn_reads == 2
    assert [v.kind for v in report.violations] == [
        Kind.OVERSOLD,
        Kind.DOUBLE_BOOKED,
        Kind.LOST_SALE,
    ]
    assert not report.ok
    assert report.exit_code is ExitCode.VIOLATED
    assert report.verdict == (
        "OVERSOLD: 3 sold for 1 ticket(s), 2 too many; 1 seat(s) sold twice or more; "
        "2 sale(s) missing from the ledger"
    )


def test_double_booked_without_overselling_is_a_lost_update_in_the_verdict(
    db_path: Path,
) -> None:
    history = _timed(
        _ev(1, Step.READ, value=2),
        _ev(2, Step.READ, value=2),
        _ev(1, Step.WRITE, value=1, seat=1),
        _ev(2, Step.WRITE, value=1, seat=1),
        _ev(1, Step.OK, seat=1),
        _ev(2, Step.OK, seat=1),
    )
    initial = TicketDB.fresh(2)
    report = build_report(
        _result(
            db_path,
            strategy="none",
            buyers=2,
            tickets=2,
            initial=initial,
            final=initial.sell(_sale(2, 1)),
            history=history,
        )
    )
    assert (report.sold, report.oversold, report.double_booked, report.lost_sales) == (2, 0, 1, 1)
    assert report.ledger_sales == 1
    assert report.remaining == 1
    assert report.verdict == (
        "LOST UPDATE: 1 seat(s) sold twice or more; 1 sale(s) missing from the ledger"
    )
    assert report.exit_code is ExitCode.VIOLATED


def test_stalled_run_is_not_ok_even_without_violations(db_path: Path) -> None:
    history = _timed(
        _ev(1, Step.ENTER),
        _ev(1, Step.READ, value=1),
        _ev(1, Step.WRITE, value=0, seat=1),
        _ev(1, Step.LEAVE),
        _ev(1, Step.OK, seat=1),
        _ev(2, Step.WAIT),
    )
    initial = TicketDB.fresh(1)
    report = build_report(
        _result(
            db_path,
            strategy="lock",
            buyers=2,
            tickets=1,
            initial=initial,
            final=initial.sell(_sale(1, 1)),
            history=history,
            stalled="no progress for 30 s",
        )
    )
    assert report.violations == ()
    assert report.unfinished == 1
    assert report.sold == 1
    assert not report.ok
    assert report.exit_code is ExitCode.STALLED
    assert report.verdict == "STALLED: no progress for 30 s; 1 buyer(s) never got to buy"


def test_a_certain_violation_wins_over_a_stall(db_path: Path) -> None:
    # Issue 14: oversold is oversold however the sale ended; the stall is said too.
    result = replace(_race_run(db_path), stalled="buyer-2 never finished")
    report = build_report(result)
    assert report.violations
    assert report.exit_code is ExitCode.VIOLATED
    assert report.verdict.startswith("OVERSOLD:")
    assert report.verdict.endswith("; and the sale stalled (buyer-2 never finished)")
    assert not report.ok


def test_unfinished_counts_errors_and_missing_outcomes(db_path: Path) -> None:
    history = _timed(
        _ev(1, Step.READ, value=4),
        _ev(1, Step.WRITE, value=3, seat=1),
        _ev(1, Step.OK, seat=1),
        _ev(2, Step.CHECK, value=3),
        _ev(2, Step.ERROR),
        _ev(3, Step.READY),
        _ev(4, Step.CHECK, value=0),
        _ev(4, Step.FAIL),
    )
    initial = TicketDB.fresh(4)
    report = build_report(
        _result(
            db_path,
            strategy="none",
            buyers=4,
            tickets=4,
            initial=initial,
            final=initial.sell(_sale(1, 1)),
            history=history,
        )
    )
    assert report.sold == 1
    assert report.refused == 1
    assert report.saw_but_refused == 0  # buyer-4 looked and saw none left
    assert report.unfinished == 2  # buyer-2 (error) and buyer-3 (no outcome)
    # Issue 14: "none" is not safe, so selling fewer is no violation, but two buyers
    # that never finished make the sale incomplete: not OK, exit 3.
    assert not report.ok
    assert report.exit_code is ExitCode.STALLED
    assert [d.buyers for d in report.died] == [("buyer-2",), ("buyer-3",)]
    assert report.verdict.startswith("INCOMPLETE: 2 of 4 buyer(s) ended without an outcome")


def test_unsafe_strategy_underselling_is_violated_for_a_safe_one(db_path: Path) -> None:
    history = _timed(_ev(1, Step.READ, value=0), _ev(1, Step.FAIL))
    initial = TicketDB.fresh(1)
    report = build_report(
        _result(
            db_path,
            strategy="lock",
            buyers=1,
            tickets=1,
            initial=initial,
            final=initial,
            history=history,
        )
    )
    assert [v.kind for v in report.violations] == [Kind.UNDERSOLD]
    assert report.exit_code is ExitCode.VIOLATED
    assert report.verdict == "VIOLATED: sold fewer tickets than it could"


def test_unreadable_final_db(db_path: Path) -> None:
    history = _timed(_ev(1, Step.READ, value=1), _ev(1, Step.OK, seat=1))
    report = build_report(
        _result(
            db_path,
            strategy="none",
            buyers=1,
            tickets=1,
            initial=TicketDB.fresh(1),
            final=None,
            history=history,
            final_error="the file is empty",
        )
    )
    assert report.remaining is None
    assert report.ledger_sales is None
    assert report.lost_sales is None  # unknown, not 0 (issue 14)
    assert [v.kind for v in report.violations] == [Kind.UNREADABLE_DB]
    assert "the file is empty" in report.violations[0].explanation
    assert report.verdict == "VIOLATED: the db was left unreadable, so its sales are unknown"
    assert report.exit_code is ExitCode.VIOLATED
    data = report.to_json()
    assert data["remaining"] is None
    assert data["ledger_sales"] is None
    assert data["lost_sales"] is None


def test_kept_db_counts_only_this_runs_sales(db_path: Path) -> None:
    initial = TicketDB.fresh(3).sell(_sale(9, 1))
    history = _timed(
        _ev(1, Step.READ, value=2),
        _ev(1, Step.WRITE, value=1, seat=2),
        _ev(1, Step.OK, seat=2),
    )
    report = build_report(
        _result(
            db_path,
            strategy="lock",
            buyers=1,
            tickets=3,
            initial=initial,
            final=initial.sell(_sale(1, 2)),
            history=history,
        )
    )
    assert report.tickets == 2  # on sale when the sale opened, not config.tickets
    assert report.ledger_sales == 1
    assert report.remaining == 1
    assert report.ok


@pytest.mark.parametrize(
    ("elapsed", "throughput"),
    [(2.0, 1.0), (0.0, 0.0), (0.5, 4.0)],
    ids=["two-seconds", "zero", "half-second"],
)
def test_throughput(db_path: Path, elapsed: float, throughput: float) -> None:
    report = build_report(_lock_run(db_path, elapsed_s=elapsed))
    assert report.throughput == throughput


@pytest.mark.parametrize(
    ("run", "strategy", "exit_code", "head"),
    [
        ("lock", "lock", ExitCode.OK, "OK:"),
        ("race", "none", ExitCode.VIOLATED, "OVERSOLD:"),
        ("stalled", "lock", ExitCode.STALLED, "STALLED:"),
    ],
    ids=["ok", "oversold", "stalled"],
)
def test_to_json(db_path: Path, run: str, strategy: str, exit_code: ExitCode, head: str) -> None:
    if run == "lock":
        result = _lock_run(db_path, elapsed_s=1.23456789)
    elif run == "race":
        result = replace(_race_run(db_path), elapsed_s=1.23456789)
    else:
        result = replace(_lock_run(db_path, elapsed_s=1.23456789), stalled="gave up")
    report = build_report(result)
    data = report.to_json()
    assert set(data) == JSON_KEYS
    assert json.loads(json.dumps(data)) == data
    assert data["ok"] is (exit_code is ExitCode.OK)
    assert data["exit_code"] == int(exit_code)
    assert data["verdict"].startswith(head)
    assert data["verdict"] == report.verdict
    assert data["elapsed_s"] == 1.234568
    assert data["strategy"] == strategy
    for key in ("buyers", "tickets", "sold", "oversold", "remaining", "refused", "stalled"):
        assert data[key] == getattr(report, key)
    assert data["violations"] == [v.to_json() for v in report.violations]
    assert len(data["violations"]) == len(report.violations)


def test_to_json_violations_are_plain_data(db_path: Path) -> None:
    data = build_report(_race_run(db_path)).to_json()
    kinds = [v["kind"] for v in data["violations"]]
    assert kinds == ["oversold", "double-booked", "lost-sale"]
    assert data["violations"][1]["seat"] == 1
    assert data["violations"][2]["buyers"] == ["buyer-1", "buyer-2"]
    assert data["db"] == str(db_path)
    assert isinstance(json.dumps(data), str)


def test_a_sale_whose_buyers_were_all_cut_off_says_so(db_path: Path) -> None:
    """Not "killed on purpose ()": a buyer cut off by a partition was not killed."""
    report = build_report(run_sale(RunConfig(db_path=db_path, buyers=2, tickets=1, delay=0.0)))
    cut = replace(report, cut_off=("buyer-1", "buyer-2"), stalled=None)
    assert cut.verdict == (
        "INCOMPLETE: all 2 buyer(s) were stopped on purpose; planned faults: 2 buyer(s) cut "
        "off on purpose, outcome unknown (buyer-1 and buyer-2); no buyer was left to buy, so "
        "nothing about the sale was checked"
    )


def test_report_is_frozen(db_path: Path) -> None:
    report = build_report(_lock_run(db_path))
    assert isinstance(report, Report)
    with pytest.raises(AttributeError, match="sold"):
        report.sold = 5  # type: ignore[misc]


def _one_buyer_ended(db_path: Path, ending: Event) -> Report:
    """A lock sale of 2 buyers: buyer-1 buys, buyer-2 ends with ``ending``."""
    history = _timed(
        _ev(1, Step.READY),
        _ev(2, Step.READY),
        _ev(1, Step.CHECK, value=2),
        _ev(1, Step.READ, value=2),
        _ev(1, Step.WRITE, value=1, seat=1),
        _ev(1, Step.OK, seat=1),
        _ev(2, Step.CHECK, value=1),
        ending,
    )
    final = TicketDB(tickets=2, remaining=1, ledger=(_sale(1, 1),))
    result = _result(
        db_path,
        strategy="lock",
        buyers=2,
        tickets=2,
        initial=TicketDB.fresh(2),
        final=final,
        history=history,
    )
    return build_report(result)


def test_a_failed_write_is_known_by_its_error_not_by_its_note(db_path: Path) -> None:
    failed = Event(
        2,
        Step.ERROR,
        0.0,
        _pid(2),
        note=f"DbWriteError: {db_path}: disk full",
        error="DbWriteError",
    )
    report = _one_buyer_ended(db_path, failed)
    assert report.io_error == "disk full"
    assert report.exit_code is ExitCode.IO_ERROR
    assert report.died == ()
    # A note that only reads like one is another error: the buyer died unplanned.
    lookalike = replace(failed, note="DbWriteError: no such thing", error="GuardTimeout")
    report = _one_buyer_ended(db_path, lookalike)
    assert report.io_error is None
    assert report.exit_code is ExitCode.STALLED
    assert [d.why for d in report.died] == ["DbWriteError: no such thing"]


def test_a_planned_kill_is_known_by_its_error_not_by_its_note(db_path: Path) -> None:
    killed = Event(
        2, Step.LOST, 0.0, _pid(2), note="SIGKILLed before its check", error="killed-on-purpose"
    )
    report = _one_buyer_ended(db_path, killed)
    assert report.killed_on_purpose == ("buyer-2",)
    assert report.died == ()
    lookalike = replace(killed, note="killed on purpose: or so it says", error=None)
    report = _one_buyer_ended(db_path, lookalike)
    assert report.killed_on_purpose == ()
    assert [d.why for d in report.died] == ["killed on purpose: or so it says"]
