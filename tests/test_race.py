"""Real sales with real processes: the race forced to happen, and the lock that stops it."""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticketsim import db as dbfile
from ticketsim.buyer import KillFirstHolder
from ticketsim.checker import Kind, check_db
from ticketsim.errors import ConfigError, DbError
from ticketsim.events import OUTCOMES, Event, Step
from ticketsim.report import ExitCode, build_report
from ticketsim.runner import RunConfig, RunResult, run_sale
from ticketsim.stores import FileStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.context import BaseContext

START_METHODS = ("fork", "spawn", "forkserver")


@contextlib.contextmanager
def fresh_db() -> Iterator[Path]:
    """A db path of its own for each hypothesis example (fixtures are not reset per example)."""
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / "tickets.json"


def sale(db_path: Path, **options: object) -> RunResult:
    options.setdefault("delay", 0.0)
    options.setdefault("timeout", 20.0)
    return run_sale(RunConfig(db_path=db_path, **options))  # type: ignore[arg-type]


def assert_protocol(result: RunResult) -> None:
    """Every buyer started, took its steps in order and ended with exactly one outcome."""
    buyers = result.config.buyers
    by_buyer: dict[int, list[Event]] = {}
    for event in result.history:
        by_buyer.setdefault(event.buyer, []).append(event)
    assert sorted(by_buyer) == list(range(1, buyers + 1))
    assert len({events[0].pid for events in by_buyer.values()}) == buyers
    for events in by_buyer.values():
        steps = [e.step for e in events if e.step is not Step.TORN]
        assert steps[0] is Step.READY
        assert steps[1] is Step.CHECK
        assert sum(s in OUTCOMES for s in steps) == 1
        assert steps[-1] in OUTCOMES
        assert [e.t for e in events] == sorted(e.t for e in events)


def expected_race(tickets: int, buyers: int) -> dict[str, int]:
    """What lockstep must produce: every buyer reads ``tickets``, so all take seat 1."""
    if tickets == 0:
        return {"sold": 0, "oversold": 0, "double_booked": 0, "lost_sales": 0, "ledger": 0}
    return {
        "sold": buyers,
        "oversold": max(0, buyers - tickets),
        "double_booked": 1 if buyers > 1 else 0,
        "lost_sales": buyers - 1,
        "ledger": 1,
    }


def assert_forced_race(result: RunResult, tickets: int, buyers: int) -> None:
    report = build_report(result)
    want = expected_race(tickets, buyers)
    assert report.sold == want["sold"]
    assert report.oversold == want["oversold"]
    assert report.double_booked == want["double_booked"]
    assert report.lost_sales == want["lost_sales"]
    assert report.ledger_sales == want["ledger"]
    # Every read happened before any write, so no read could see a write half done.
    assert report.torn_reads == 0
    assert result.final is not None
    assert check_db(result.final) == []  # each naive write is a whole, consistent snapshot
    if tickets:
        # Writes were taken in buyer order, so the last buyer's snapshot is what is left.
        assert [s.buyer for s in result.final.ledger] == [f"buyer-{buyers}"]
    broken = want["oversold"] or want["double_booked"] or want["lost_sales"]
    assert report.exit_code is (ExitCode.VIOLATED if broken else ExitCode.OK)
    assert_protocol(result)


@pytest.mark.parametrize(
    ("tickets", "buyers"),
    [(1, 2), (1, 5), (10, 20), (3, 3), (5, 1), (0, 4)],
    ids=[
        "1-ticket-2-buyers",
        "1-ticket-5-buyers",
        "10-tickets-20-buyers",
        "3-for-3",
        "alone",
        "none-left",
    ],
)
def test_lockstep_makes_the_unprotected_sale_oversell_every_time(
    db_path: Path, tickets: int, buyers: int
) -> None:
    result = sale(db_path, tickets=tickets, buyers=buyers, lockstep=True)
    assert_forced_race(result, tickets, buyers)


@pytest.mark.parametrize("method", START_METHODS)
def test_forced_race_is_the_same_under_every_start_method(db_path: Path, method: str) -> None:
    result = sale(db_path, tickets=2, buyers=4, lockstep=True, start_method=method)
    assert result.start_method == method
    assert_forced_race(result, 2, 4)
    story = next(v for v in build_report(result).violations if v.kind is Kind.DOUBLE_BOOKED)
    assert story.explanation.startswith("Lost update: All 4 buyers")
    assert story.seat == 1


@given(
    tickets=st.integers(0, 5),
    buyers=st.integers(1, 6),
    method=st.sampled_from(START_METHODS),
)
def test_forced_race_counts_follow_from_the_sizes(tickets: int, buyers: int, method: str) -> None:
    with fresh_db() as path:
        result = sale(path, tickets=tickets, buyers=buyers, lockstep=True, start_method=method)
    assert_forced_race(result, tickets, buyers)


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


@given(
    tickets=st.integers(0, 6),
    buyers=st.integers(1, 6),
    delay=st.sampled_from([0.0, 0.001, 0.005]),
    seed=st.integers(0, 2**32 - 1),
    method=st.sampled_from(START_METHODS),
)
def test_lock_sells_exactly_min_tickets_buyers(
    tickets: int, buyers: int, delay: float, seed: int, method: str
) -> None:
    with fresh_db() as path:
        result = sale(
            path,
            strategy="lock",
            tickets=tickets,
            buyers=buyers,
            delay=delay,
            seed=seed,
            start_method=method,
        )
    assert_safe_and_live(result)


@pytest.mark.parametrize("method", START_METHODS)
def test_lock_is_safe_under_every_start_method(db_path: Path, method: str) -> None:
    result = sale(db_path, strategy="lock", tickets=3, buyers=5, delay=0.002, start_method=method)
    assert result.start_method == method
    assert_safe_and_live(result)


def test_lock_holds_when_buyers_outnumber_tickets_many_times(db_path: Path) -> None:
    assert_safe_and_live(sale(db_path, strategy="lock", tickets=10, buyers=40, seed=7))


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
    from ticketsim.runner import window

    assert [window(0.1, 42, n) for n in range(1, 6)] == [window(0.1, 42, n) for n in range(1, 6)]
    assert window(0.1, 42, 1) != window(0.1, 43, 1)
    assert all(0.1 <= window(0.1, s, 1) <= 0.15 for s in range(50))


def test_a_killed_lock_holder_is_reported_as_a_stall_and_no_process_survives(
    db_path: Path,
) -> None:
    victims: list[Any] = []

    def kill_first(ctx: BaseContext, config: RunConfig) -> KillFirstHolder:
        victims.append(ctx.Value("i", 0))
        return KillFirstHolder(victims[-1])

    started = time.monotonic()
    result = run_sale(
        RunConfig(
            db_path=db_path, strategy="lock", buyers=3, timeout=1.0, start_method="fork", delay=0.0
        ),
        pacer=kill_first,
    )
    assert time.monotonic() - started < 15  # bounded: stall guard + join grace
    report = build_report(result)
    assert report.exit_code is ExitCode.STALLED
    assert report.stalled is not None
    assert "no progress" in report.stalled
    assert report.sold == 0
    victim = victims[0].value
    assert victim in {1, 2, 3}
    assert {e.buyer for e in result.history if e.step is Step.WAIT} == {1, 2, 3}
    assert [e.step for e in result.history if e.buyer == victim][-1] is Step.READ
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
        step: Step, *, value: int | None = None, seat: int | None = None, note: str | None = None
    ) -> None:
        seen.append((step, note))

    assert FileStore(str(db_path), naive=True).read(record).remaining == 4
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
