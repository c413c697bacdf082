"""Schedules as text and data: parsing, completion, preemptions, equivalence, PCT."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticketsim.core import schedule as sched
from ticketsim.core.catalog import CATALOG
from ticketsim.core.events import Event, Step
from ticketsim.core.schedule import Action, Model, Move, Schedule, ScheduleError
from ticketsim.engine.strategies import STRATEGIES

UNGUARDED = Model(guarded=False, reads_commute=True)
GUARDED = Model(guarded=True, reads_commute=False)
OFFICE = Model(guarded=False, reads_commute=False)
SEATS = Model(guarded=False, reads_commute=True, locks_seats=True)  # pg-skip-locked's


def s(text: str, buyers: int = 2) -> Schedule:
    return sched.parse(text, buyers)


def test_a_schedule_prints_as_it_was_written() -> None:
    assert str(s("1r 2r 1w 2w")) == "1r 2r 1w 2w"
    assert str(s("1R,2r, 1w   2W")) == "1r 2r 1w 2w"


@pytest.mark.parametrize(
    ("text", "buyers", "completed"),
    [
        ("1r 2r", 2, "1r 2r 1w 2w"),
        ("2r", 2, "2r 2w 1r 1w"),
        ("2r 1r", 3, "2r 1r 2w 1w 3r 3w"),
        ("1r 1w", 1, "1r 1w"),
        ("3r", 3, "3r 3w 1r 1w 2r 2w"),
    ],
    ids=["pending-writes-in-read-order", "others-after", "third-buyer-last", "whole", "later"],
)
def test_steps_left_out_follow_pending_writes_first(text: str, buyers: int, completed: str) -> None:
    assert str(sched.parse(text, buyers)) == completed
    assert str(sched.parse(text, buyers, complete=False)) == text


@pytest.mark.parametrize(
    ("text", "buyers", "message"),
    [
        ("", 2, "is empty"),
        ("   ", 2, "is empty"),
        ("1x", 2, "'1x' is not BUYER then r or w"),
        ("r1", 2, "'r1' is not BUYER then r or w"),
        ("0r", 2, "'0r' is not BUYER then r or w"),
        ("3r", 2, "names buyer 3, but buyers=2"),
        ("1w", 2, "'1w' is out of order for buyer 1: its next step is 1r"),
        ("1r 1r", 2, "its next step is 1w"),
        ("1r 1w 1w", 2, "it has no steps left"),
    ],
    ids=[
        "empty",
        "blank",
        "bad-move",
        "reversed",
        "buyer-0",
        "too-many",
        "write-first",
        "read-twice",
        "write-twice",
    ],
)
def test_bad_schedules_say_what_to_write(text: str, buyers: int, message: str) -> None:
    with pytest.raises(ScheduleError, match=message.replace("(", r"\(")) as caught:
        sched.parse(text, buyers)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("text", "preemptions"),
    [("1r 1w 2r 2w", 0), ("1r 2r 1w 2w", 2), ("1r 2r 2w 1w", 1), ("2r 1r 1w 2w", 1)],
)
def test_preemptions_count_switches_away_from_an_unfinished_buyer(
    text: str, preemptions: int
) -> None:
    assert s(text).preemptions() == preemptions


@pytest.mark.parametrize("buyers", [1, 2, 3, 4])
def test_every_interleaving_is_listed_once(buyers: int) -> None:
    listed = list(sched.all_schedules(buyers))
    assert len(listed) == len(set(listed)) == sched.interleavings(buyers)
    assert sched.interleavings(buyers) == math.factorial(2 * buyers) // 2**buyers
    for schedule in listed:
        assert sched.parse(str(schedule), buyers) == schedule


def test_two_buyers_by_hand() -> None:
    """4 steps, 2 of them reads: C(4, 2) = 6 orders. Under a lock only the 2 serial ones
    can run, and they differ only by the buyers' names: one class. Without a lock,
    swapping the two reads changes nothing, and two buyers that both read before either
    wrote are alike: 2 classes, serial and "both read, then both write". An office read
    is a whole purchase, so whoever buys second matters: 3."""
    assert sched.interleavings(2) == 6
    assert [str(c) for c in sched.reduced(2, UNGUARDED)] == ["1r 1w 2r 2w", "1r 2r 2w 1w"]
    assert [str(c) for c in sched.reduced(2, GUARDED)] == ["1r 1w 2r 2w"]
    assert [str(c) for c in sched.reduced(2, OFFICE)] == [
        "1r 1w 2r 2w", "1r 2r 2w 1w", "1r 2r 1w 2w"
    ]  # fmt: skip
    assert (UNGUARDED.feasible(2), GUARDED.feasible(2), OFFICE.feasible(2)) == (6, 2, 6)


@pytest.mark.parametrize("model", [UNGUARDED, GUARDED, OFFICE], ids=["none", "lock", "office"])
@pytest.mark.parametrize("bound", [None, 0, 1, 2])
def test_the_reduced_schedules_are_feasible_distinct_and_simplest_first(
    model: Model, bound: int | None
) -> None:
    made = list(sched.reduced(4, model, preemption_bound=bound))
    assert len(made) == len(set(made)) > 0
    for schedule in made:
        assert model.blocked_at(schedule) is None
        assert sched.parse(str(schedule), 4) == schedule
    preemptions = [c.preemptions() for c in made]
    assert preemptions == sorted(preemptions)
    assert bound is None or max(preemptions) <= bound


def test_a_preemption_bound_of_0_leaves_the_serial_order() -> None:
    made = sched.reduced(3, UNGUARDED, preemption_bound=0)
    assert [str(c) for c in made] == ["1r 1w 2r 2w 3r 3w"]
    assert made.bounded  # the other classes were left out


@pytest.mark.parametrize(
    ("model", "bound", "made", "bounded"),
    [
        (UNGUARDED, None, 6, False),
        (UNGUARDED, 1, 4, True),
        (UNGUARDED, 2, 6, False),
        (GUARDED, 0, 1, False),
    ],
)
def test_a_bound_that_leaves_classes_out_says_so(
    model: Model, bound: int | None, made: int, bounded: bool
) -> None:
    """Three unlocked buyers' six classes need up to two preemptions; locked ones none."""
    schedules = sched.reduced(3, model, preemption_bound=bound)
    assert not schedules.bounded  # known once every schedule within the bound is made
    assert len(list(schedules)) == made
    assert schedules.bounded is bounded


def test_the_classes_are_made_as_the_search_goes() -> None:
    """The first schedules of a sale with 81,729,648,000 orders come at once."""
    made = sched.reduced(8, UNGUARDED)
    assert str(next(made)) == "1r 1w 2r 2w 3r 3w 4r 4w 5r 5w 6r 6w 7r 7w 8r 8w"
    assert str(next(made)) == "1r 2r 2w 1w 3r 3w 4r 4w 5r 5w 6r 6w 7r 7w 8r 8w"


#: Ways a buyer's write can use what it read: write back the count it read less one
#: (the tutorial's lost update), or take one off the count as it is now (an atomic
#: decrement after a stale check).
_WRITES = ("read-less-one", "decrement-now")


def _sale(schedule: Schedule, model: Model, tickets: int, write: str) -> tuple[object, ...]:
    """A model of the sale under ``schedule``: what it ends with, whatever the buyers'
    names (the count, the seats sold with how often each, whether an invariant broke)."""
    if model is SEATS:  # each read locks the lowest seat free of sales and locks
        locked: dict[int, int] = {}
        sold: list[int] = []
        for action in schedule.actions:
            free = [n for n in range(1, tickets + 1) if n not in sold and n not in locked.values()]
            if action.move is Move.READ and free:
                locked[action.buyer] = free[0]
            elif action.move is Move.WRITE and action.buyer in locked:
                sold.append(locked.pop(action.buyer))
        return tickets - len(sold), tuple(sorted(sold)), len(set(sold)) < len(sold)
    remaining, seen, seats = tickets, {}, []
    for action in schedule.actions:
        purchase = action.move is Move.READ if model is OFFICE else action.move is Move.WRITE
        if action.move is Move.READ:
            seen[action.buyer] = remaining
        if purchase and seen[action.buyer] > 0:
            seats.append(seen[action.buyer])
            remaining = seen[action.buyer] - 1 if write == _WRITES[0] else remaining - 1
    broken = len(seats) > tickets or len(set(seats)) < len(seats)
    return remaining, tuple(sorted(seats)), broken


@given(
    buyers=st.integers(1, 4),
    tickets=st.integers(0, 4),
    model=st.sampled_from([UNGUARDED, GUARDED, OFFICE, SEATS]),
    write=st.sampled_from(_WRITES),
)
def test_the_reduced_search_ends_every_way_every_order_does(
    buyers: int, tickets: int, model: Model, write: str
) -> None:
    """Over every order of up to 4 buyers' steps (2,520), the few explore runs end in
    every way some order ends: so it finds a violation whenever the full enumeration
    does, and the first it finds is among the simplest. (With seats locked by reads,
    which orders can run depends on the tickets.)"""
    every = [s for s in sched.all_schedules(buyers) if model.blocked_at(s, tickets) is None]
    full = {_sale(s, model, tickets, write) for s in every}
    reduced = list(sched.reduced(buyers, model, tickets=tickets))
    assert all(model.blocked_at(s, tickets) is None for s in reduced)
    assert {_sale(s, model, tickets, write) for s in reduced} == full
    assert len(every) == model.feasible(buyers, tickets)
    breaking = [s for s in every if _sale(s, model, tickets, write)[2]]
    found = next((s for s in reduced if _sale(s, model, tickets, write)[2]), None)
    assert (found is None) == (not breaking)
    if found is not None:
        assert found.preemptions() == min(s.preemptions() for s in breaking)


def test_the_lock_model_says_which_step_would_wait() -> None:
    schedule = s("1r 2r 1w 2w")
    assert GUARDED.blocked_at(schedule) == 1
    assert UNGUARDED.blocked_at(schedule) is None
    assert sched.explain_blocked(schedule, 1) == (
        "step 2 (2r) would make buyer-2 wait for the lock buyer-1 holds until its step 1w"
    )
    # The buyer that waits is not among those it waits for (it said buyer-2 held it).
    assert sched.explain_blocked(s("1r 2r 2w 1w"), 2) == (
        "step 3 (2w) would make buyer-2 wait for the lock buyer-1 holds until its step 1w"
    )


def test_the_seat_model_says_which_read_would_wait_and_for_whom() -> None:
    """SKIP LOCKED: with one ticket, a second reader finds the only seat locked."""
    schedule = s("1r 2r 2w 1w")
    assert SEATS.blocked_at(schedule, tickets=1) == 1
    assert SEATS.blocked_at(schedule, tickets=2) is None
    assert SEATS.blocked_at(s("1r 1w 2r 2w"), tickets=1) is None  # sold out: no wait
    assert SEATS.explain(schedule, 1, tickets=1) == (
        "step 2 (2r) would make buyer-2 wait for a seat: every unsold one is locked, by "
        "buyer-1, until their w"
    )
    assert [SEATS.feasible(3, t) for t in range(4)] == [90, 18, 18, 90]


def test_a_bound_that_leaves_out_only_orders_that_cannot_run_leaves_out_nothing() -> None:
    """Two buyers, one seat: the one order with a preemption waits for the seat, so the
    serial order, within a bound of 0, is every class there is."""
    made = sched.reduced(2, SEATS, preemption_bound=0, tickets=1)
    assert [str(c) for c in made] == ["1r 1w 2r 2w"]
    assert not made.bounded
    made = sched.reduced(2, SEATS, preemption_bound=0, tickets=2)
    assert [str(c) for c in made] == ["1r 1w 2r 2w"]
    assert made.bounded  # with two seats, 1r 2r 2w 1w runs and was left out


@pytest.mark.parametrize("strategy", [name.value for name in STRATEGIES])
@given(buyers=st.integers(1, 5), depth=st.integers(1, 4), seed=st.integers(0, 10**6))
def test_pct_schedules_are_complete_and_feasible(
    strategy: str, buyers: int, depth: int, seed: int
) -> None:
    model = CATALOG[strategy].model()  # type: ignore[index]
    rng = random.Random(seed)
    draws = [rng.random() for _ in range(buyers + depth)]
    tickets = seed % (buyers + 1)
    schedule = sched.pct_schedule(buyers, depth, model, draws, tickets)
    assert sched.parse(str(schedule), buyers) == schedule
    assert model.blocked_at(schedule, tickets) is None
    assert sched.pct_schedule(buyers, depth, model, draws, tickets) == schedule  # same draws


def test_a_history_prints_as_the_schedule_it_followed() -> None:
    def ev(buyer: int, step: Step, t: float) -> Event:
        return Event(buyer=buyer, step=step, t=t, pid=buyer)

    history = [
        ev(1, Step.READY, 0),
        ev(2, Step.READY, 0.1),
        ev(2, Step.READ, 1),
        ev(1, Step.READ, 2),
        ev(1, Step.WRITE, 3),
        ev(1, Step.OK, 3.5),
        ev(2, Step.FAIL, 4),
        ev(3, Step.READY, 0.2),
        ev(3, Step.ERROR, 5),
    ]
    assert str(sched.from_history(history)) == "2r 1r 1w 2w"
    assert sched.from_history([]) == Schedule(())


def test_actions_order_by_buyer_then_move() -> None:
    assert sorted([Action(2, Move.READ), Action(1, Move.WRITE), Action(1, Move.READ)]) == [
        Action(1, Move.READ),
        Action(1, Move.WRITE),
        Action(2, Move.READ),
    ]
