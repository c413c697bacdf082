"""The event pipe: what a buyer's recorder writes straight to it is the event it recorded."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os

from hypothesis import given
from hypothesis import strategies as st

from ticketsim.core.events import Event, Step
from ticketsim.sale.channel import EventChannel, StepRecorder

_NUMBERS = st.none() | st.integers(-(2**63), 2**63 - 1)
_CHARS = st.characters(exclude_categories=["Cs"])  # a lone surrogate is escaped on the way
#: Short enough to travel whole (a note is cut to fit one atomic write, an error to 255
#: bytes): at most 4 bytes a character.
_NOTES = st.none() | st.text(_CHARS, max_size=900)
_ERRORS = st.none() | st.text(_CHARS, max_size=60)


class _Kept:
    """A channel that is not the pipe: the recorder hands it whole events."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def put(self, event: Event) -> None:
        self.events.append(event)


@given(
    buyer=st.integers(1, 2**32 - 1),
    step=st.sampled_from(Step),
    value=_NUMBERS,
    seat=_NUMBERS,
    note=_NOTES,
    error=_ERRORS,
)
def test_the_pipe_carries_what_the_recorder_recorded(
    buyer: int, step: Step, value: int | None, seat: int | None, note: str | None, error: str | None
) -> None:
    channel = EventChannel(multiprocessing.get_context("fork"))
    kept = _Kept()
    try:
        StepRecorder(channel.sender, buyer, os.getpid())(
            step, value=value, seat=seat, note=note, error=error
        )
        StepRecorder(kept, buyer, os.getpid())(step, value=value, seat=seat, note=note, error=error)
        through_the_pipe = channel.get(timeout=10)
    finally:
        channel.close()
    (recorded,) = kept.events
    assert dataclasses.replace(through_the_pipe, t=recorded.t) == recorded
    assert through_the_pipe.t <= recorded.t  # stamped when recorded
