"""Unit tests of buyer events: JSON round trips and the validation of rebuilt events."""

from __future__ import annotations

import json
import re
from enum import IntEnum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticketsim.core.events import OUTCOMES, Event, Step, buyer_name, from_json, to_jsonl
from ticketsim.core.settings import MAX_BUYERS, MAX_TICKETS
from ticketsim.sale import channel

_FINITE = st.floats(allow_nan=False, allow_infinity=False)
_EVENTS = st.builds(
    Event,
    buyer=st.integers(min_value=1),
    step=st.sampled_from(Step),
    t=_FINITE,
    pid=st.integers(),
    value=st.none() | st.integers(),
    seat=st.none() | st.integers(),
    note=st.none() | st.text(),
    error=st.none() | st.text(min_size=1, max_size=64),
)


def _row(**changes: Any) -> dict[str, Any]:
    """A valid event row with some fields replaced."""
    row: dict[str, Any] = {"buyer": 3, "step": "write", "t": 12.5, "pid": 4242}
    row.update(changes)
    return row


def test_buyer_name_and_event_name() -> None:
    assert buyer_name(1) == "buyer-1"
    assert buyer_name(12) == "buyer-12"
    assert Event(buyer=7, step=Step.OK, t=1.0, pid=1).name == "buyer-7"


def test_outcomes_are_ok_fail_error() -> None:
    assert frozenset({Step.OK, Step.FAIL, Step.ERROR}) == OUTCOMES


def test_to_json_leaves_out_unset_fields_and_keeps_zero() -> None:
    bare = Event(buyer=2, step=Step.READY, t=1.5, pid=99)
    assert bare.to_json() == {"type": "invoke", "buyer": 2, "step": "ready", "t": 1.5, "pid": 99}
    write = Event(buyer=2, step=Step.WRITE, t=2.0, pid=99, value=0, seat=5, note="")
    assert write.to_json() == {
        "type": "step",
        "buyer": 2,
        "step": "write",
        "t": 2.0,
        "pid": 99,
        "value": 0,
        "seat": 5,
        "note": "",
    }


@pytest.mark.parametrize(
    ("step", "kind"),
    [
        (Step.READY, "invoke"),
        (Step.OK, "ok"),
        (Step.FAIL, "fail"),
        (Step.ERROR, "info"),
        (Step.READ, "step"),
        (Step.TORN, "step"),
    ],
)
def test_each_event_has_its_jepsen_type(step: Step, kind: str) -> None:
    assert Event(buyer=1, step=step, t=1.0, pid=1).to_json()["type"] == kind


@pytest.mark.parametrize("step", list(Step), ids=[step.value for step in Step])
def test_every_step_round_trips(step: Step) -> None:
    event = Event(buyer=4, step=step, t=100.25, pid=5151, value=3, seat=2, note="why", error="E")
    assert from_json(event.to_json()) == event
    assert from_json(json.loads(json.dumps(event.to_json()))) == event
    assert from_json(Event(buyer=4, step=step, t=0.0, pid=1).to_json()).step is step


@given(event=_EVENTS)
def test_any_event_round_trips_through_json(event: Event) -> None:
    assert from_json(event.to_json()) == event
    assert from_json(json.loads(json.dumps(event.to_json()))) == event


def test_whole_number_t_comes_back_as_float() -> None:
    event = from_json(_row(t=7))
    assert event.t == 7.0
    assert type(event.t) is float


@given(events=st.lists(_EVENTS, max_size=8))
def test_to_jsonl_gives_one_line_per_event_in_order(events: list[Event]) -> None:
    text = to_jsonl(events)
    lines = text.split("\n")
    assert lines[-1] == ""  # every line, the last one included, ends with a newline
    assert len(lines) - 1 == len(events)
    assert [from_json(json.loads(line)) for line in lines[:-1]] == events
    assert to_jsonl(tuple(events)) == text


class _Seat(IntEnum):
    FIRST = 1


_ANY_NUMBER = st.integers() | st.booleans() | st.sampled_from(_Seat)
#: Events as any caller may build them: the dataclass checks no types, so a bool, an
#: IntEnum, a whole-number time or a time that is not finite can reach the writer.
_ODD_EVENTS = st.builds(
    Event,
    buyer=st.integers(min_value=1) | st.booleans(),
    step=st.sampled_from(Step),
    t=st.floats() | st.integers() | st.booleans(),
    pid=_ANY_NUMBER,
    value=st.none() | _ANY_NUMBER,
    seat=st.none() | _ANY_NUMBER,
    note=st.none() | st.text(),
)


@given(events=st.lists(_EVENTS | _ODD_EVENTS, max_size=8))
def test_to_jsonl_writes_each_event_as_json_dumps_does(events: list[Event]) -> None:
    """Lines are written without ``json.dumps`` for speed; the text must be the same."""
    assert to_jsonl(events) == "".join(json.dumps(e.to_json()) + "\n" for e in events)


def test_to_jsonl_of_nothing_is_empty() -> None:
    assert to_jsonl([]) == ""


def test_to_jsonl_keeps_a_newline_in_a_note_on_one_line() -> None:
    event = Event(buyer=1, step=Step.ERROR, t=3.0, pid=2, note="line one\nline two\u2028")
    text = to_jsonl([event, event])
    assert text.count("\n") == 2
    assert len(text.splitlines()) == 2


REJECTED: list[tuple[object, str]] = [
    ([1, "ready"], "an event must be a JSON object, got list"),
    ("ready", "an event must be a JSON object, got str"),
    (None, "an event must be a JSON object, got NoneType"),
    (_row(step="sold"), "step='sold' is not one of the steps"),
    (_row(step="READY"), "step='READY' is not one of the steps"),
    ({"buyer": 1, "t": 1.0, "pid": 1}, "step=None is not one of the steps"),
    (_row(buyer=0), "buyer=0 must be a buyer number from 1"),
    (_row(buyer=-2), "buyer=-2 must be a buyer number from 1"),
    (_row(buyer=True), "buyer=True must be a buyer number from 1"),
    (_row(buyer="3"), "buyer='3' must be a buyer number from 1"),
    (_row(buyer=3.0), "buyer=3.0 must be a buyer number from 1"),
    ({"step": "ready", "t": 1.0, "pid": 1}, "buyer=None must be a buyer number from 1"),
    (_row(t=float("nan")), "t=nan must be a number of seconds"),
    (_row(t=float("inf")), "t=inf must be a number of seconds"),
    (_row(t=float("-inf")), "t=-inf must be a number of seconds"),
    (_row(t="12.5"), "t='12.5' must be a number of seconds"),
    (_row(t=True), "t=True must be a number of seconds"),
    (_row(t=None), "t=None must be a number of seconds"),
    (_row(pid=True), "pid=True must be a whole number"),
    (_row(pid="4242"), "pid='4242' must be a whole number"),
    (_row(pid=42.0), "pid=42.0 must be a whole number"),
    (_row(value="3"), "value='3' must be a whole number"),
    (_row(value=2.5), "value=2.5 must be a whole number"),
    (_row(value=False), "value=False must be a whole number"),
    (_row(seat=1.0), "seat=1.0 must be a whole number"),
    (_row(seat=True), "seat=True must be a whole number"),
    (_row(seat=[1]), "seat=[1] must be a whole number"),
    (_row(note=5), "note=5 must be a string"),
    (_row(note=["oops"]), "note=['oops'] must be a string"),
    (_row(error=7), "error=7 must be a word of 1 to 64 characters"),
    (_row(error=""), "error='' must be a word of 1 to 64 characters"),
]
REJECTED_IDS = [
    "list",
    "string",
    "null",
    "unknown-step",
    "step-wrong-case",
    "step-missing",
    "buyer-zero",
    "buyer-negative",
    "buyer-bool",
    "buyer-string",
    "buyer-float",
    "buyer-missing",
    "t-nan",
    "t-infinity",
    "t-minus-infinity",
    "t-string",
    "t-bool",
    "t-missing",
    "pid-bool",
    "pid-string",
    "pid-float",
    "value-string",
    "value-float",
    "value-bool",
    "seat-float",
    "seat-bool",
    "seat-list",
    "note-int",
    "note-list",
    "error-int",
    "error-empty",
]


@pytest.mark.parametrize(("row", "message"), REJECTED, ids=REJECTED_IDS)
def test_from_json_rejects_naming_the_field(row: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        from_json(row)
    assert str(caught.value) == message


def test_from_json_rejects_a_t_too_large_for_a_float() -> None:
    with pytest.raises(ValueError, match="must be a number of seconds"):
        from_json(_row(t=10**400))


# --- the pipe's encoding: what a buyer sends, the parent gets ----------------------------

_SENT = st.builds(
    Event,
    buyer=st.integers(min_value=1, max_value=MAX_BUYERS),
    step=st.sampled_from(Step),
    t=st.floats(allow_nan=False),
    pid=st.integers(min_value=1, max_value=2**31 - 1),
    value=st.none() | st.integers(min_value=-MAX_TICKETS, max_value=MAX_TICKETS),
    seat=st.none() | st.integers(min_value=0, max_value=MAX_TICKETS),
    note=st.none() | st.text(max_size=100),
    error=st.none() | st.text(min_size=1, max_size=64).filter(lambda e: e.isprintable()),
)


@given(event=_SENT)
def test_any_event_a_buyer_sends_arrives_as_it_was(event: Event) -> None:
    data = channel.encode(event)
    assert len(data) <= channel.MAX_EVENT_BYTES
    assert channel.decode(data) == event


@pytest.mark.parametrize("note", ["x" * 10_000, "é" * 5_000, "\udcff" * 3])
def test_a_note_too_long_or_not_utf8_still_fits_one_atomic_write(note: str) -> None:
    event = Event(7, Step.ERROR, 1.5, 4242, note=note, error="DbWriteError")
    data = channel.encode(event)
    assert len(data) <= channel.MAX_EVENT_BYTES
    got = channel.decode(data)
    assert got.note is not None
    assert (got.buyer, got.step, got.t, got.pid) == (7, Step.ERROR, 1.5, 4242)
    assert got.error == "DbWriteError"
    if len(note.encode("utf-8", "backslashreplace")) > channel.MAX_EVENT_BYTES:
        assert got.note.endswith("...")
        assert note.startswith(got.note[:-3])
