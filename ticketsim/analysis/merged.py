"""One history from many hosts: the events every host wrote to the store, in the
store's order, with an ``info`` ending for every buyer whose host never reported one.

The hosts' clocks need not agree (``--clock-skew`` makes them disagree on purpose), so
the events are ordered by the store's clock, which stamped each one as it arrived;
what each host's own clock said is kept beside it (``host_t``) to show what trusting
it would have done. Pure functions of the events: a saved history is merged as a live
one is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ticketsim.core.boards import ClockCheck
from ticketsim.core.events import ENDINGS, Event, Step

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence


def in_store_order(events: Iterable[Event]) -> list[Event]:
    """``events`` ordered by the store's clock; events it stamped alike keep the order
    the store gave them (a stable sort of the order they were read back in).

    A buyer has one ending: a second one is the first reported twice (a write its host
    gave up on, delivered after the host reported it again), and is dropped.
    """
    ordered, ended = [], set()
    for event in sorted(events, key=lambda e: e.t):
        if event.step in ENDINGS:
            if event.buyer in ended:
                continue
            ended.add(event.buyer)
        ordered.append(event)
    return ordered


def unreported(
    history: Sequence[Event], buyers: Mapping[int, str], at: float, why: str
) -> list[Event]:
    """A ``lost`` event (``info``: the outcome is unknown) for each buyer of ``buyers``
    (number to host) whose history has no ending, stamped ``at`` on the store's clock.

    A buyer cut off from the store, or whose host died, may or may not have bought: the
    checker counts only what is certain, and the report says which hosts went quiet.
    """
    finished = {e.buyer for e in history if e.step in ENDINGS}
    pids = {e.buyer: e.pid for e in history if e.step is Step.READY}
    return [
        Event(
            number,
            Step.LOST,
            at,
            pids.get(number, 0),
            note=f"its host {host} did not report an outcome: {why}",
            error="HostUnreported",
            host=host,
        )
        for number, host in sorted(buyers.items())
        if number not in finished
    ]


def clock_check(history: Sequence[Event]) -> ClockCheck:
    """Compare the store's order of ``history`` (as :func:`in_store_order` gives it)
    with the order its hosts' clocks would give."""
    timed = [e for e in history if e.host_t is not None]
    misplaced, latest = 0, float("-inf")
    gaps: dict[str, list[float]] = {}
    for event in timed:
        host_t = event.host_t if event.host_t is not None else 0.0
        if host_t < latest:
            misplaced += 1
        latest = max(latest, host_t)
        gaps.setdefault(event.host or "?", []).append(host_t - event.t)
    offsets = tuple(
        (host, sorted(values)[len(values) // 2]) for host, values in sorted(gaps.items())
    )
    return ClockCheck(len(timed), misplaced, offsets)
