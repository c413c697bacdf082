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
    can run. Without one, swapping the two reads changes nothing, so 6 orders make 4
    classes: serial 1-then-2, serial 2-then-1, both read then 1 writes first, both read
    then 2 writes first."""
    assert sched.interleavings(2) == 6
    feasible, classes = sched.representatives(2, UNGUARDED)
    assert feasible == 6
    assert [str(c) for c in classes] == ["1r 1w 2r 2w", "2r 2w 1r 1w", "1r 2r 2w 1w", "1r 2r 1w 2w"]
    feasible, classes = sched.representatives(2, GUARDED)
    assert feasible == 2
    assert [str(c) for c in classes] == ["1r 1w 2r 2w", "2r 2w 1r 1w"]
    feasible, classes = sched.representatives(2, OFFICE)
    assert (feasible, len(classes)) == (6, 6)  # an office read is a whole purchase


def test_a_preemption_bound_keeps_the_simple_orders() -> None:
    _, none_preempted = sched.representatives(3, UNGUARDED, preemption_bound=0)
    assert len(none_preempted) == math.factorial(3)
    assert all(c.preemptions() == 0 for c in none_preempted)


def test_the_lock_model_says_which_step_would_wait() -> None:
    schedule = s("1r 2r 1w 2w")
    assert GUARDED.blocked_at(schedule) == 1
    assert UNGUARDED.blocked_at(schedule) is None
    assert sched.explain_blocked(schedule, 1) == (
        "step 2 (2r) would make buyer-2 wait for the lock buyer-1 holds until its step 1w"
    )


@given(st.data())
def test_canonical_forms_are_equivalent_and_stable(data: st.DataObject) -> None:
    buyers = data.draw(st.integers(1, 4))
    schedule = data.draw(st.sampled_from(list(sched.all_schedules(buyers))))
    canonical = UNGUARDED.canonical(schedule)
    assert UNGUARDED.canonical(canonical) == canonical
    assert canonical.actions <= schedule.actions
    assert sorted(canonical.actions) == sorted(schedule.actions)
    # Writes, and the order of each buyer's own steps, stay where they were.
    assert [a for a in canonical.actions if a.move is Move.WRITE] == [
        a for a in schedule.actions if a.move is Move.WRITE
    ]
    assert GUARDED.canonical(schedule) == schedule


@pytest.mark.parametrize("strategy", [name.value for name in STRATEGIES])
@given(buyers=st.integers(1, 5), depth=st.integers(1, 4), seed=st.integers(0, 10**6))
def test_pct_schedules_are_complete_and_feasible(
    strategy: str, buyers: int, depth: int, seed: int
) -> None:
    model = CATALOG[strategy].model()  # type: ignore[index]
    rng = random.Random(seed)
    draws = [rng.random() for _ in range(buyers + depth)]
    schedule = sched.pct_schedule(buyers, depth, model, draws)
    assert sched.parse(str(schedule), buyers) == schedule
    assert model.blocked_at(schedule) is None
    assert sched.pct_schedule(buyers, depth, model, draws) == schedule  # same draws, same order


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
