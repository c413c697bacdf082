"""Real sales with real processes: keeping a db, stalls, torn reads, settings, timing."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import Counter
from typing import TYPE_CHECKING

import pytest
from sales import sale

from ticketsim.analysis.checker import check_db
from ticketsim.analysis.report import build_report
from ticketsim.core import db as dbfile
from ticketsim.core.events import OUTCOMES, Step
from ticketsim.core.exits import ExitCode
from ticketsim.core.settings import RunConfig
from ticketsim.engine.runner import run_sale
from ticketsim.errors import ConfigError, DbError
from ticketsim.sale.stores import FileStore, NaiveFileStore

if TYPE_CHECKING:
    from pathlib import Path


def test_keep_sells_what_is_left_and_the_ledger_adds_up(db_path: Path) -> None:
    first = sale(db_path, strategy="lock", tickets=5, buyers=3)
    assert build_report(first).sold == 3
    second = sale(db_path, strategy="lock", tickets=99, buyers=4, keep=True)
    report = build_report(second)
    assert second.initial.remaining == 2
    assert report.tickets == 2
    assert report.sold == 2
    assert report.ok
    assert second.final is not None
    assert len(second.final.ledger) == 5
    assert check_db(second.final) == []


def test_keep_refuses_an_inconsistent_db_and_leaves_it_alone(db_path: Path) -> None:
    db_path.write_text(
        '{"event": "x", "tickets": 3, "remaining": 3, "ledger": [\n'
        '{"buyer": "b", "seat": 1, "pid": 1, "time": 0}]}'
    )
    before = db_path.read_bytes()
    with pytest.raises(DbError, match="plus 1 sale"):
        sale(db_path, strategy="lock", keep=True)
    assert db_path.read_bytes() == before


def test_same_seed_gives_the_same_race_windows() -> None:
    from ticketsim.engine.runner import window

    assert [window(0.1, 42, n) for n in range(1, 6)] == [window(0.1, 42, n) for n in range(1, 6)]
    assert window(0.1, 42, 1) != window(0.1, 43, 1)
    assert all(0.1 <= window(0.1, s, 1) <= 0.15 for s in range(50))


def test_a_killed_lock_holder_is_reported_as_a_stall_and_no_process_survives(
    db_path: Path,
) -> None:
    started = time.monotonic()
    result = run_sale(
        RunConfig(
            db_path=db_path,
            strategy="lock",
            buyers=3,
            timeout=1.0,
            start_method="fork",
            delay=0.0,
            kill_holder=True,
        )
    )
    assert time.monotonic() - started < 15  # bounded: stall guard + join grace
    report = build_report(result)
    assert report.exit_code is ExitCode.STALLED
    assert report.stalled is not None
    assert "no progress" in report.stalled
    assert report.verdict.endswith("; 2 buyer(s) never got to buy")
    assert report.sold == 0
    (fault,) = result.faults
    victim = int(fault.split()[0].removeprefix("buyer-"))
    assert fault.endswith("holding a multiprocessing.Lock, which no one else can release")
    assert {e.buyer for e in result.history if e.step is Step.WAIT} == {1, 2, 3}
    endings = {e.buyer: e for e in result.history if e.step is Step.LOST}
    assert set(endings) == {1, 2, 3}
    # Issue 14: a planned kill says so, and is no unexplained death.
    assert endings[victim].note == (
        "killed on purpose: SIGKILLed inside its critical section, just after its read"
    )
    assert report.killed_on_purpose == (f"buyer-{victim}",)
    assert all(
        endings[b].note == "ended by ticketsim: " + report.stalled for b in {1, 2, 3} - {victim}
    )
    assert multiprocessing.active_children() == []
    for pid in {e.pid for e in result.history}:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_torn_reads_are_recorded_and_retried(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dbfile.write_atomic(db_path, dbfile.TicketDB.fresh(4))
    real_load = dbfile.load
    failures = iter([DbError(str(db_path), "the file is empty"), DbError(str(db_path), "x")])

    def flaky_load(path: str) -> dbfile.TicketDB:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return real_load(path)

    monkeypatch.setattr(dbfile, "load", flaky_load)
    seen: list[tuple[Step, str | None]] = []

    def record(
        step: Step,
        *,
        value: int | None = None,
        seat: int | None = None,
        note: str | None = None,
        error: str | None = None,
    ) -> None:
        seen.append((step, note))

    assert NaiveFileStore(str(db_path)).read(record).remaining == 4
    assert seen == [(Step.TORN, "the file is empty"), (Step.TORN, "x")]


def test_an_atomic_store_does_not_mistake_a_corrupt_db_for_a_torn_read(db_path: Path) -> None:
    db_path.write_text("{")
    with pytest.raises(DbError, match="not valid JSON"):
        FileStore(str(db_path)).read(lambda *a, **k: None)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"buyers": 0}, "buyers"),
        ({"buyers": -3}, "buyers"),
        ({"buyers": 10_000_000}, "buyers"),
        ({"buyers": True}, "buyers"),
        ({"tickets": -1}, "tickets"),
        ({"delay": -0.1}, "delay"),
        ({"delay": float("nan")}, "delay"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 0.1, "delay": 0.1}, "timeout"),
        ({"strategy": "mutex"}, "strategy"),
        ({"start_method": "vfork"}, "start_method"),
        ({"lockstep": True, "strategy": "lock"}, "lockstep"),
    ],
    ids=str,
)
def test_bad_settings_are_refused_before_anything_runs(
    db_path: Path, options: dict[str, object], name: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        RunConfig(db_path=db_path, **options)  # type: ignore[arg-type]
    assert caught.value.name == name
    assert str(caught.value).startswith(f"{name}=")
    assert not db_path.exists()


def test_history_times_fall_inside_the_sale(db_path: Path) -> None:
    result = sale(db_path, strategy="lock", tickets=2, buyers=3)
    outcomes = [e.t for e in result.history if e.step in OUTCOMES]
    assert min(outcomes) >= result.opened_at
    assert result.elapsed_s == pytest.approx(max(outcomes) - result.opened_at)
    assert Counter(e.step for e in result.history)[Step.READY] == 3
