"""The parent's inbox: every wait is bounded, and an abandoned one says why.

A fake pipe and crew stand in for the processes, so that each way a wait ends can be
forced without starting any.
"""

from __future__ import annotations

import queue
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from ticketsim.core.events import Event, Step
from ticketsim.engine.collect import Inbox
from ticketsim.sale import channel as channel_module
from ticketsim.sale.channel import EventChannel, encode, frame, step_code

if TYPE_CHECKING:
    from collections.abc import Collection


@dataclass
class FakeChannel:
    """A pipe that hands out its ``events``, then a fresh event of ``repeat`` (a buyer's
    step) at every call, or nothing."""

    events: list[Event] = field(default_factory=list)
    repeat: tuple[int, Step] | None = None

    def get(self, timeout: float, gather_s: float = 0.0) -> Event:
        del gather_s  # the events are all here already
        if self.events:
            return self.events.pop(0)
        if self.repeat is not None:
            time.sleep(0.01)
            return event(*self.repeat)
        time.sleep(min(timeout, 0.01))
        raise queue.Empty

    def decoded(self) -> list[Event]:
        return []  # get() keeps nothing back

    def receive(self, timeout: float, gather_s: float = 0.0) -> tuple[bytes, list[tuple[int, int]]]:
        """What the pipe gives a sale nobody watches: the next event, undecoded."""
        got = self.get(timeout, gather_s)
        return frame(encode(got)), [(got.buyer, step_code(got.step))]


@dataclass
class FakeCrew:
    running: bool = True
    at_once: int = 2

    def alive(self, ended: Collection[int] = frozenset()) -> bool:
        del ended
        return self.running


def inbox(channel: FakeChannel, crew: FakeCrew | None = None) -> Inbox:
    return Inbox(channel, crew or FakeCrew())  # type: ignore[arg-type]


def event(buyer: int, step: Step) -> Event:
    return Event(buyer, step, time.monotonic(), 100 + buyer)


def test_every_outcome_ends_the_wait_and_each_event_is_watched() -> None:
    seen: list[Event] = []
    events = [event(1, Step.READ), event(1, Step.OK), event(2, Step.FAIL)]
    box = Inbox(FakeChannel(list(events)), FakeCrew(), seen.append)  # type: ignore[arg-type]
    assert box.collect(until=None, expected=2, timeout=5) is None
    assert box.history == events
    assert seen == events


def test_a_wait_without_progress_is_abandoned_within_its_timeout() -> None:
    started = time.monotonic()
    reason = inbox(FakeChannel()).collect(until=None, expected=2, timeout=0.2)
    assert reason is not None
    assert reason.startswith("no progress for ")
    assert reason.endswith(": 2 buyer(s) still owed an outcome")
    assert time.monotonic() - started < 2


def test_events_that_are_not_progress_do_not_hold_off_a_stall() -> None:
    torn = FakeChannel(repeat=(1, Step.TORN))
    reason = inbox(torn).collect(until=None, expected=1, timeout=0.2)
    assert reason is not None
    assert "1 buyer(s) still owed an outcome (meanwhile " in reason
    assert "torn read(s) retried)" in reason


def test_a_crew_that_has_exited_ends_the_wait_without_a_stall() -> None:
    assert (
        inbox(FakeChannel(), FakeCrew(running=False)).collect(until=None, expected=3, timeout=5)
        is None
    )


def test_an_abort_ends_the_wait_with_its_reason() -> None:
    reason = inbox(FakeChannel()).collect(
        until=None, expected=1, timeout=5, aborted=lambda: "schedule infeasible"
    )
    assert reason == "schedule infeasible"


@pytest.mark.parametrize(
    ("method", "hint"),
    [("fork", "(its stderr says why)"), ("spawn", 'if __name__ == "__main__":')],
)
def test_buyers_that_never_got_ready_get_the_usual_cause(method: str, hint: str) -> None:
    reason = inbox(FakeChannel()).wait_ready(0.1, method)
    assert reason is not None
    assert "still owed 'ready'" in reason
    assert (hint in reason) is (method != "fork")


def test_a_buyer_already_finished_counts_as_ready() -> None:
    box = inbox(FakeChannel([event(2, Step.READY)]))
    box.history.append(event(1, Step.OK))
    assert box.wait_ready(5, "fork") is None


def test_draining_keeps_the_last_words() -> None:
    last = [event(1, Step.READ), event(1, Step.LOST)]
    box = inbox(FakeChannel(list(last)))
    box.drain()
    assert box.history == last


def test_a_sale_nobody_watches_is_followed_undecoded_and_its_history_is_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ready and sale phases on a real pipe, flooded, read in parts smaller than the
    pipe so that reads end inside records: what the parent decodes once the sale is
    over is every event sent, in order, and the wait ended on the last outcome."""
    import multiprocessing
    import threading

    monkeypatch.setattr(channel_module, "_CHUNK", 1000)

    channel = EventChannel(multiprocessing.get_context("fork"))
    buyers = 2000
    ready = [event(n, Step.READY) for n in range(1, buyers + 1)]
    sale = [
        event(n, step)
        for n in range(1, buyers + 1)
        for step in (Step.CHECK, Step.WAIT, Step.ENTER, Step.READ, Step.LEAVE, Step.OK)
    ]
    sale.insert(10, Event(3, Step.ERROR, 1.0, 103, note="é" * 900, error="DbError"))

    def flood(events: list[Event]) -> None:
        for sent in events:
            channel.sender.put(sent)

    box = Inbox(channel, FakeCrew(at_once=buyers))  # type: ignore[arg-type]

    def readied() -> str | None:
        return box.wait_ready(5, "fork")

    def sold() -> str | None:
        return box.collect(until=None, expected=buyers, timeout=5)

    try:
        for events, wait in (ready, readied), (sale, sold):
            writer = threading.Thread(target=flood, args=(events,))
            writer.start()
            assert wait() is None
            writer.join(10)
        assert box.history == [*ready, *sale]
    finally:
        channel.close()
