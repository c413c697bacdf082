"""Tests of one history merged from many hosts (:mod:`ticketsim.analysis.merged`), on
histories written by hand and on simulated multi-host sales drawn by hypothesis."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ticketsim.analysis.checker import Kind, Violation, check
from ticketsim.analysis.merged import clock_check, in_store_order, unreported
from ticketsim.core.db import Sale, TicketDB
from ticketsim.core.events import Event, Step, buyer_name

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

#: The store's clock as the sale opens (seconds since the epoch).
BASE: Final = 1_795_000_000.0


def _pid(buyer: int) -> int:
    return 4000 + buyer


def _ev(
    buyer: int,
    step: Step,
    t: float,
    host: str,
    skew: float,
    *,
    value: int | None = None,
    seat: int | None = None,
) -> Event:
    """An event the store stamped ``t``, recorded by ``host`` whose clock is ``skew`` ahead."""
    return Event(buyer, step, t, _pid(buyer), value=value, seat=seat, host=host, host_t=t + skew)


def _sale(buyer: int, seat: int, t: float = BASE) -> Sale:
    return Sale(buyer=buyer_name(buyer), seat=seat, pid=_pid(buyer), time=t)


def _kinds(found: list[Violation]) -> list[Kind]:
    return [v.kind for v in found]


def _only(found: list[Violation], kind: Kind) -> Violation:
    matching = [v for v in found if v.kind is kind]
    assert len(matching) == 1, found
    return matching[0]


def _host_t(event: Event) -> float:
    assert event.host_t is not None, event
    return event.host_t


def _by_host_clocks(history: Sequence[Event]) -> list[Event]:
    """What trusting the hosts' clocks would give: the events ordered, and timed, by them."""
    return [replace(e, t=_host_t(e)) for e in sorted(history, key=_host_t)]


# --- a lost update across two hosts -------------------------------------------------------


def _lost_update() -> list[Event]:
    """Buyer 1 on host-1 (clock right) and buyer 2 on host-2 (clock 2 s ahead) both read
    remaining=1 before either writes; both write it back as 0, both are sold seat 1."""
    steps = [
        (1, Step.READY, None, None),
        (2, Step.READY, None, None),
        (1, Step.CHECK, 1, None),
        (2, Step.CHECK, 1, None),
        (1, Step.READ, 1, None),
        (2, Step.READ, 1, None),
        (1, Step.WRITE, 0, 1),
        (2, Step.WRITE, 0, 1),
        (1, Step.OK, None, 1),
        (2, Step.OK, None, 1),
    ]
    hosts = {1: ("host-1", 0.0), 2: ("host-2", 2.0)}
    return [
        _ev(buyer, step, BASE + 0.25 * i, *hosts[buyer], value=value, seat=seat)
        for i, (buyer, step, value, seat) in enumerate(steps)
    ]


def test_lost_update_across_hosts_is_told_by_the_store_clock() -> None:
    history = _lost_update()
    initial = TicketDB.fresh(1)
    final = TicketDB(tickets=1, remaining=0, ledger=(_sale(1, 1), _sale(2, 1)))
    assert in_store_order(reversed(history)) == history

    found = check(initial, final, history, buyers=2, safe=False)
    assert Kind.OVERSOLD in _kinds(found)
    assert _only(found, Kind.OVERSOLD).buyers == ("buyer-1", "buyer-2")
    booked = _only(found, Kind.DOUBLE_BOOKED)
    assert booked.seat == 1
    assert booked.buyers == ("buyer-1", "buyer-2")
    assert booked.explanation.startswith("Lost update"), booked.explanation

    # host-2's clock puts its read 2 s later, after buyer 1's write: the same race
    # would be told as a stale count, which is not what happened.
    skewed = _by_host_clocks(history)
    reads = [e for e in skewed if e.step is Step.READ]
    first_write = next(e for e in skewed if e.step is Step.WRITE)
    assert reads[-1].buyer == 2
    assert reads[-1].t > first_write.t
    wrong = _only(check(initial, final, skewed, buyers=2, safe=False), Kind.DOUBLE_BOOKED)
    assert not wrong.explanation.startswith("Lost update"), wrong.explanation
    assert wrong.explanation.startswith("Stale count"), wrong.explanation


def test_clock_check_of_the_lost_update() -> None:
    report = clock_check(_lost_update())
    assert report.timed == 10
    # Every event of host-1 after the first comes behind a host-2 event its clock put later.
    assert report.misplaced == 4
    assert report.offsets == (("host-1", 0.0), ("host-2", 2.0))


def test_clock_check_moves_only_what_a_host_clock_puts_earlier() -> None:
    """A host time equal to an earlier one is not misplaced (ordering by host clocks
    would leave it where it is); events without a host time are not counted."""
    a, b = ("host-a", 0.0), ("host-b", -1.0)
    history = [
        _ev(1, Step.READY, BASE + 1, *a),  # host time +1
        _ev(2, Step.READY, BASE + 2, *b),  # +1: a tie, stays
        _ev(2, Step.READ, BASE + 2.5, *b, value=1),  # +1.5
        _ev(1, Step.READ, BASE + 3, *a, value=1),  # +3
        _ev(2, Step.WRITE, BASE + 3.5, *b, value=0, seat=1),  # +2.5: misplaced
        Event(3, Step.LOST, BASE + 3.75, 0, host="host-b"),  # no host time
        _ev(2, Step.OK, BASE + 4, *b, seat=1),  # +3: a tie with the latest, stays
        _ev(1, Step.WRITE, BASE + 4.25, *a, value=0, seat=1),  # +4.25
    ]
    report = clock_check(history)
    assert report.timed == 7
    assert report.misplaced == 1
    assert report.offsets == (("host-a", 0.0), ("host-b", -1.0))
    assert clock_check([]) == type(report)(0, 0, ())


# --- buyers whose host never reported ------------------------------------------------------


def test_unreported_ends_only_the_buyers_without_an_ending() -> None:
    t = iter(BASE + i for i in range(100))
    a, b = ("host-a", 0.0), ("host-b", -3.0)
    history = [
        _ev(1, Step.READY, next(t), *a),
        _ev(2, Step.READY, next(t), *b),
        _ev(3, Step.READY, next(t), *b),
        _ev(4, Step.READY, next(t), *a),
        _ev(6, Step.READY, next(t), *b),
        _ev(7, Step.READY, next(t), *a),
        _ev(1, Step.READ, next(t), *a, value=2),
        _ev(2, Step.READ, next(t), *b, value=2),
        _ev(1, Step.WRITE, next(t), *a, value=1, seat=1),
        _ev(2, Step.WRITE, next(t), *b, value=1, seat=1),
        _ev(1, Step.OK, next(t), *a, seat=1),
        _ev(4, Step.READ, next(t), *a, value=0),
        _ev(4, Step.FAIL, next(t), *a),
        _ev(6, Step.ERROR, next(t), *b),
        Event(7, Step.LOST, next(t), _pid(7), error="HostUnreported", host="host-a"),
    ]
    # Buyer 2 wrote but never reported its outcome; buyer 3 only got ready; buyer 5's
    # host reported nothing at all; 1, 4, 6 and 7 have an ending already.
    buyers = {n: ("host-a" if n in {1, 4, 5, 7} else "host-b") for n in range(1, 8)}
    at = BASE + 500.0
    lost = unreported(history, buyers, at, "the host was cut off from the store")

    assert [e.buyer for e in lost] == [2, 3, 5]
    for event in lost:
        assert event.step is Step.LOST
        assert event.kind == "info"
        assert event.t == at
        assert event.host == buyers[event.buyer]
        assert event.note is not None
        assert buyers[event.buyer] in event.note
        assert "cut off" in event.note
        assert event.error == "HostUnreported"
        assert event.pid == (0 if event.buyer == 5 else _pid(event.buyer))
    # Ending them again adds nothing: a lost event is an ending.
    assert unreported([*history, *lost], buyers, at + 1, "again") == []
    assert unreported(history, {}, at, "nobody") == []


@pytest.mark.parametrize("tickets", [2, 3])
@pytest.mark.parametrize("bought", [True, False])
def test_an_unknown_outcome_is_neither_a_sale_nor_a_lost_one(tickets: int, bought: bool) -> None:
    """Buyer 2's host went quiet after (or before) its write: it may have bought. A safe
    sale that sold buyer 1 and maybe buyer 2 broke nothing."""
    a, b = ("host-a", 0.0), ("host-b", 1.5)
    events = [
        _ev(1, Step.READY, BASE + 1, *a),
        _ev(2, Step.READY, BASE + 2, *b),
        _ev(1, Step.READ, BASE + 3, *a, value=tickets),
        _ev(1, Step.WRITE, BASE + 4, *a, value=tickets - 1, seat=1),
        _ev(1, Step.OK, BASE + 5, *a, seat=1),
        _ev(2, Step.READ, BASE + 6, *b, value=tickets - 1),
    ]
    if bought:
        events.append(_ev(2, Step.WRITE, BASE + 7, *b, value=tickets - 2, seat=2))
    history = events + unreported(events, {1: "host-a", 2: "host-b"}, BASE + 9, "cut off")
    assert [(e.buyer, e.kind) for e in history[len(events) :]] == [(2, "info")]

    ledger = (_sale(1, 1), _sale(2, 2)) if bought else (_sale(1, 1),)
    final = TicketDB(tickets=tickets, remaining=tickets - len(ledger), ledger=ledger)
    assert check(TicketDB.fresh(tickets), final, history, buyers=2, safe=True) == []


def test_certain_violations_are_found_beside_unknown_outcomes() -> None:
    """Two buyers told success for one ticket is oversold, whatever buyer 3 (whose
    host went quiet after its write) did."""
    a, b = ("host-a", 0.0), ("host-b", -1.0)
    events = [
        _ev(1, Step.READ, BASE + 1, *a, value=1),
        _ev(2, Step.READ, BASE + 2, *b, value=1),
        _ev(3, Step.READ, BASE + 3, *b, value=1),
        _ev(1, Step.WRITE, BASE + 4, *a, value=0, seat=1),
        _ev(2, Step.WRITE, BASE + 5, *b, value=0, seat=1),
        _ev(3, Step.WRITE, BASE + 6, *b, value=0, seat=1),
        _ev(1, Step.OK, BASE + 7, *a, seat=1),
        _ev(2, Step.OK, BASE + 8, *b, seat=1),
    ]
    buyers = {1: "host-a", 2: "host-b", 3: "host-b"}
    history = events + unreported(events, buyers, BASE + 9, "cut off")
    final = TicketDB(tickets=1, remaining=0, ledger=(_sale(1, 1), _sale(2, 1), _sale(3, 1)))
    found = check(TicketDB.fresh(1), final, history, buyers=3, safe=False)
    oversold = _only(found, Kind.OVERSOLD)
    assert oversold.buyers == ("buyer-1", "buyer-2")
    assert "2 buyers" in oversold.explanation
    assert _only(found, Kind.DOUBLE_BOOKED).buyers == ("buyer-1", "buyer-2")
    assert Kind.LOST_SALE not in _kinds(found)


# --- simulated sales on several hosts ------------------------------------------------------

#: At least this many sales per property: a race that oversells, or hosts whose clocks
#: differ, is drawn in only some of them (the ``ci`` profile's 8 may miss both); a
#: profile that asks for more gets more. Each sale takes about a millisecond.
_ENOUGH: Final = settings(max_examples=max(settings().max_examples, 60))

#: What a buyer does at its 1st, 2nd, ... turn in the interleaving.
_STAGES: Final = ("ready", "check", "read", "write", "end")


@dataclass(frozen=True)
class Scenario:
    """An unprotected counter sale on several hosts, as the store recorded it."""

    tickets: int
    buyers: dict[int, str]  #: buyer number -> its host
    skews: dict[str, float]  #: host -> its clock minus the store's
    events: list[Event]  #: every event that reached the store, in the store's order
    dropped: frozenset[int]  #: buyers whose ending never reached the store
    final: TicketDB  #: what the store holds after the sale


@st.composite
def scenarios(draw: st.DrawFn, *, equal_skews: bool = False) -> Scenario:
    count = draw(st.integers(1, 6), label="buyers")
    tickets = draw(st.integers(0, 4), label="tickets")
    hosts = [f"host-{h}" for h in range(1, draw(st.integers(1, 3), label="hosts") + 1)]
    skew = st.integers(-5000, 5000).map(lambda ms: ms / 1000)
    if equal_skews:
        one = draw(skew, label="skew")
        skews = dict.fromkeys(hosts, one)
    else:
        skews = {host: draw(skew, label=f"skew of {host}") for host in hosts}
    buyers = {
        n: draw(st.sampled_from(hosts), label=f"host of buyer {n}") for n in range(1, count + 1)
    }
    turns = [n for n in buyers for _ in _STAGES]
    order = draw(st.permutations(turns), label="interleaving")
    gaps = draw(st.lists(st.integers(1, 2000), min_size=len(order), max_size=len(order)))
    dropped = draw(st.frozensets(st.sampled_from(sorted(buyers))), label="dropped")

    remaining = tickets
    ledger: list[Sale] = []
    events: list[Event] = []
    read: dict[int, int] = {}
    seats: dict[int, int] = {}
    done: dict[int, int] = dict.fromkeys(buyers, 0)
    elapsed_ms = 0
    for buyer, gap in zip(order, gaps, strict=True):
        elapsed_ms += gap
        t = BASE + elapsed_ms / 1000  # strictly increasing: 1 ms is far above the ulp
        stage = _STAGES[done[buyer]]
        done[buyer] += 1
        step: Step | None = None
        value: int | None = None
        if stage == "ready":
            step = Step.READY
        elif stage in {"check", "read"}:
            step, value = (Step.CHECK if stage == "check" else Step.READ), remaining
            read[buyer] = remaining
        elif stage == "write":
            if read[buyer] > 0:  # the naive strategy: count down what it read, take the seat
                step, remaining = Step.WRITE, read[buyer] - 1
                value, seats[buyer] = remaining, tickets - read[buyer] + 1
                ledger.append(_sale(buyer, seats[buyer], t))
        elif buyer not in dropped:
            step = Step.OK if buyer in seats else Step.FAIL
        if step is not None:
            host = buyers[buyer]
            seat = seats.get(buyer) if step in {Step.WRITE, Step.OK} else None
            events.append(_ev(buyer, step, t, host, skews[host], value=value, seat=seat))
    final = TicketDB(tickets=tickets, remaining=remaining, ledger=tuple(ledger))
    return Scenario(tickets, buyers, skews, events, dropped, final)


def _merge(sale: Scenario, rng: random.Random) -> tuple[list[Event], list[Event]]:
    """The history merged from the events read back in any order, and its lost endings
    (in the order given to the merge)."""
    shuffled = list(sale.events)
    rng.shuffle(shuffled)
    lost = unreported(shuffled, sale.buyers, sale.events[-1].t + 1.0, "the host was cut off")
    rng.shuffle(lost)
    return in_store_order([*shuffled, *lost]), lost


@_ENOUGH
@given(scenarios(), st.randoms(use_true_random=False))
def test_the_store_clock_restores_the_interleaving(sale: Scenario, rng: random.Random) -> None:
    history, lost = _merge(sale, rng)
    # The store's order, and events it stamped alike keep the order they were given in.
    assert history == [*sale.events, *lost]
    assert sorted(e.buyer for e in lost) == sorted(sale.dropped)
    assert all(e.kind == "info" and e.host == sale.buyers[e.buyer] for e in lost)


@_ENOUGH
@given(scenarios(), st.randoms(use_true_random=False))
def test_merged_history_is_checked_for_what_is_certain(sale: Scenario, rng: random.Random) -> None:
    history, _ = _merge(sale, rng)
    found = check(
        TicketDB.fresh(sale.tickets), sale.final, history, buyers=len(sale.buyers), safe=False
    )
    sold = sum(1 for e in history if e.step is Step.OK)
    assert (Kind.OVERSOLD in _kinds(found)) == (sold > sale.tickets), found
    assert Kind.LOST_SALE not in _kinds(found), found


def _misplaced(history: Sequence[Event]) -> int:
    """Events the store saw after one whose host's clock said later than theirs."""
    timed = [e for e in history if e.host_t is not None]
    return sum(
        1 for i, event in enumerate(timed) if any(_host_t(p) > _host_t(event) for p in timed[:i])
    )


def _check_clocks(sale: Scenario, history: Sequence[Event]) -> int:
    report = clock_check(history)
    assert report.timed == len(sale.events)
    assert report.misplaced == _misplaced(history)
    used = sorted(set(sale.buyers.values()))
    assert [host for host, _ in report.offsets] == used
    for host, offset in report.offsets:
        assert offset == pytest.approx(sale.skews[host], abs=1e-6)
    if len({sale.skews[host] for host in used}) == 1:
        assert report.misplaced == 0
    return report.misplaced


@_ENOUGH
@given(scenarios(), st.randoms(use_true_random=False))
def test_clock_check_counts_what_host_clocks_would_misplace(
    sale: Scenario, rng: random.Random
) -> None:
    history, _ = _merge(sale, rng)
    _check_clocks(sale, history)


@_ENOUGH
@given(scenarios(equal_skews=True), st.randoms(use_true_random=False))
def test_clocks_skewed_alike_misplace_nothing(sale: Scenario, rng: random.Random) -> None:
    history, _ = _merge(sale, rng)
    assert _check_clocks(sale, history) == 0


def test_an_ending_reported_twice_counts_once() -> None:
    """A host that gave up on a write and reported the ending again: one sale, not two."""
    told = Event(1, Step.OK, 10.0, 7, seat=1, host="host-1", host_t=10.0)
    again = Event(1, Step.OK, 12.0, 7, seat=1, host="host-1", host_t=12.0, note="late")
    history = in_store_order([again, Event(1, Step.READY, 9.0, 7, host="host-1"), told])
    assert history == [Event(1, Step.READY, 9.0, 7, host="host-1"), told]
