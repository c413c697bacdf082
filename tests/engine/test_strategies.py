"""Every strategy in real sales: the safe ones sell exactly what they should, the
unsafe ones oversell exactly as predicted when the race is forced."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sales import (
    START_METHODS,
    assert_forced_race,
    assert_safe_and_live,
    fresh_db,
    sale,
)

from ticketsim.analysis.checker import Kind
from ticketsim.analysis.report import build_report
from ticketsim.core.catalog import CATALOG
from ticketsim.core.db import Sale, TicketDB, load, write_atomic
from ticketsim.core.events import Step
from ticketsim.core.names import StoreKind
from ticketsim.sale.steps import Pacer

if TYPE_CHECKING:
    from pathlib import Path

# The strategies on the db file and in shared memory; the database strategies have
# theirs in tests/engine/test_databases.py (a transaction that retries is not
# serialised by a lock, so the lock's read-off-the-history checks here do not hold).
SAFE = [name.value for name, s in CATALOG.items() if s.safe and s.store is StoreKind.FILE]
UNSAFE = [name.value for name, s in CATALOG.items() if not s.safe and s.store is StoreKind.FILE]


def test_the_lists_are_what_the_tutorials_teach() -> None:
    assert SAFE == ["lock", "semaphore", "filelock", "manager", "value", "array", "office"]
    assert UNSAFE == ["none", "value-unlocked", "array-unlocked"]


@pytest.mark.parametrize("strategy", SAFE)
@given(
    tickets=st.integers(0, 6),
    buyers=st.integers(1, 6),
    delay=st.sampled_from([0.0, 0.002]),
    pool=st.one_of(st.none(), st.integers(1, 3)),
    method=st.sampled_from(START_METHODS),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_safe_strategy_sells_exactly_min_tickets_buyers(
    strategy: str,
    tickets: int,
    buyers: int,
    delay: float,
    pool: int | None,
    method: str,
    seed: int,
) -> None:
    with fresh_db() as path:
        result = sale(
            path,
            strategy=strategy,
            tickets=tickets,
            buyers=buyers,
            delay=delay,
            pool=pool,
            start_method=method,
            seed=seed,
        )
    assert_safe_and_live(result)


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("strategy", SAFE)
def test_a_safe_strategy_under_every_start_method(
    db_path: Path, strategy: str, method: str
) -> None:
    result = sale(db_path, strategy=strategy, tickets=3, buyers=5, delay=0.002, start_method=method)
    assert result.start_method == method
    assert_safe_and_live(result)


@pytest.mark.parametrize("strategy", SAFE)
def test_a_safe_strategy_with_many_more_buyers_than_tickets(db_path: Path, strategy: str) -> None:
    assert_safe_and_live(sale(db_path, strategy=strategy, tickets=10, buyers=40, seed=7))


@pytest.mark.parametrize("strategy", SAFE)
def test_a_safe_strategy_on_a_pool_smaller_than_the_crowd(db_path: Path, strategy: str) -> None:
    result = sale(db_path, strategy=strategy, tickets=4, buyers=12, pool=3, delay=0.001)
    assert_safe_and_live(result)
    assert len({e.pid for e in result.history if e.step.value == "ready"}) <= 3


CASES = [(1, 2), (1, 5), (10, 20), (3, 3), (5, 1), (0, 4)]


@pytest.mark.parametrize(("tickets", "buyers"), CASES, ids=[f"{t}-for-{b}" for t, b in CASES])
@pytest.mark.parametrize("strategy", UNSAFE)
def test_an_unsafe_strategy_oversells_exactly_as_predicted(
    db_path: Path, strategy: str, tickets: int, buyers: int
) -> None:
    result = sale(db_path, strategy=strategy, tickets=tickets, buyers=buyers, lockstep=True)
    assert_forced_race(result, tickets, buyers)


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("strategy", UNSAFE)
def test_the_forced_race_is_the_same_under_every_start_method(
    db_path: Path, strategy: str, method: str
) -> None:
    result = sale(
        db_path, strategy=strategy, tickets=2, buyers=4, lockstep=True, start_method=method
    )
    assert result.start_method == method
    assert_forced_race(result, 2, 4)
    story = next(v for v in build_report(result).violations if v.kind is Kind.DOUBLE_BOOKED)
    assert story.explanation == (
        "Lost update: All 4 buyers (buyer-1, buyer-2, buyer-3 and 1 more) read remaining=2 "
        "before any of them wrote it back; all were sold seat 1."
    )


@pytest.mark.parametrize("strategy", UNSAFE)
@given(tickets=st.integers(0, 5), buyers=st.integers(1, 6), method=st.sampled_from(START_METHODS))
def test_forced_race_counts_follow_from_the_sizes(
    strategy: str, tickets: int, buyers: int, method: str
) -> None:
    with fresh_db() as path:
        result = sale(
            path,
            strategy=strategy,
            tickets=tickets,
            buyers=buyers,
            lockstep=True,
            start_method=method,
        )
    assert_forced_race(result, tickets, buyers)


@pytest.mark.parametrize("strategy", UNSAFE)
def test_the_forced_race_on_a_pool_as_large_as_the_crowd(db_path: Path, strategy: str) -> None:
    result = sale(db_path, strategy=strategy, tickets=1, buyers=3, lockstep=True, pool=3)
    assert_forced_race(result, 1, 3)


def test_the_value_misconception_is_disproved_by_its_own_ledger(db_path: Path) -> None:
    """Tutorial 000 says Value carries a lock, so ``v.value -= 1`` is safe. It is not."""
    result = sale(db_path, strategy="value-unlocked", tickets=5, buyers=3, lockstep=True)
    report = build_report(result)
    assert report.sold == 3
    assert report.remaining == 4  # three decrements of 5, and the count says one
    kinds = [v.kind for v in report.violations]
    assert Kind.COUNT_MISMATCH in kinds
    assert Kind.SEAT_CONFLICT in kinds
    locked = build_report(sale(db_path, strategy="value", tickets=5, buyers=3))
    assert (locked.sold, locked.remaining, locked.violations) == (3, 2, ())


@pytest.mark.parametrize("strategy", SAFE)
def test_a_safe_strategy_sells_the_free_seats_of_a_db_with_holes(
    db_path: Path, strategy: str
) -> None:
    """``--keep`` on a db whose sold seats are not 1..k (a refund left seat 1 and 3 free):
    every strategy, the shared-memory ones too, must sell the seats that are free."""
    sold = tuple(Sale(f"buyer-{n}", n, 4100 + n, 1795000000.0 + n) for n in (1, 2, 3, 4))
    holes = TicketDB(tickets=5, remaining=1, ledger=sold).refund(1).refund(3)
    write_atomic(db_path, holes)
    report = build_report(sale(db_path, strategy=strategy, buyers=4, keep=True))
    assert report.violations == ()
    assert report.sold == 3
    final = load(db_path)
    assert sorted(s.seat for s in final.ledger) == [1, 2, 3, 4, 5]
    assert final.remaining == 0


@pytest.mark.parametrize(
    ("strategy", "kind"), [("office", "processes"), ("thread-office", "threads")]
)
def test_a_buyer_that_stops_waiting_for_the_office_is_sold_nothing_behind_its_back(
    db_path: Path, strategy: str, kind: str
) -> None:
    """The office serves one request at a time: of 12 buyers whose windows last at
    least 0.25 s each, the last cannot be answered within their patience (2 s), and
    give up. The office went on to sell to them as the sale ended: the db held sales
    that neither the history nor the report showed."""
    result = sale(
        db_path, strategy=strategy, worker_kind=kind, buyers=12, tickets=12, delay=0.25,
        timeout=1.0,
    )  # fmt: skip
    report = build_report(result)
    gave_up = [e for e in result.history if e.step is Step.ERROR]
    assert gave_up  # the race against their patience is not run: it cannot be won
    assert all("ticket office's answer" in (e.note or "") for e in gave_up)
    writes = [e for e in result.history if e.step is Step.WRITE]
    assert len(load(db_path).ledger) == len(writes) == report.sold == 12 - len(gave_up)


class _HangOnceAnswered(Pacer):
    """Every buyer hangs once the office has answered it: no progress, so the stall
    guard ends the sale (killing the buyers) while the office still serves the rest."""

    def after_read(self, number: int, timeout: float) -> None:
        del number, timeout
        time.sleep(60)  # the stall guard ends it long before


@pytest.mark.timeout(60)
def test_an_office_sale_that_stalls_ends(db_path: Path) -> None:
    """Buyers killed as they waited for their answers still count as waiters of the
    answers' condition: the office's notify_all waits for them for ever, holding its
    lock. The parent that then waited on the same condition to let the office finish
    never got the lock back, and the run hung."""
    started = time.monotonic()
    result = sale(
        db_path, strategy="office", buyers=6, tickets=6, delay=0.5, timeout=1.0,
        pacer=lambda ctx, config: _HangOnceAnswered(),
    )  # fmt: skip
    assert result.stalled is not None
    assert time.monotonic() - started < 30
    writes = [e for e in result.history if e.step is Step.WRITE]
    assert len(load(db_path).ledger) == len(writes)  # and nothing sold unseen
