"""Unit tests of the invariant checker, on hand-made histories and dbs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ticketsim.analysis.checker import NAMES_SHOWN, Kind, Violation, check, check_db, names
from ticketsim.core.db import Sale, TicketDB
from ticketsim.core.events import Event, Step, buyer_name


def _pid(buyer: int) -> int:
    return 4000 + buyer


def _ev(buyer: int, step: Step, *, value: int | None = None, seat: int | None = None) -> Event:
    """An event of ``buyer`` from its own process; :func:`_timed` gives it its time."""
    return Event(buyer=buyer, step=step, t=0.0, pid=_pid(buyer), value=value, seat=seat)


def _timed(*events: Event) -> list[Event]:
    """The events in the order given, at t = 1, 2, 3, ... seconds."""
    return [replace(event, t=float(i)) for i, event in enumerate(events, start=1)]


def _sale(buyer: int, seat: int) -> Sale:
    return Sale(buyer=buyer_name(buyer), seat=seat, pid=_pid(buyer), time=1795000000.0 + seat)


def _kinds(found: list[Violation]) -> list[Kind]:
    return [v.kind for v in found]


def _only(found: list[Violation], kind: Kind) -> Violation:
    matching = [v for v in found if v.kind is kind]
    assert len(matching) == 1, found
    return matching[0]


def _sells(buyer: int, read: int, tickets: int) -> list[Event]:
    """A guarded purchase: read ``read`` left, write it back minus one, take the seat."""
    seat = tickets - read + 1
    return [
        _ev(buyer, Step.WAIT),
        _ev(buyer, Step.ENTER),
        _ev(buyer, Step.READ, value=read),
        _ev(buyer, Step.WRITE, value=read - 1, seat=seat),
        _ev(buyer, Step.LEAVE),
        _ev(buyer, Step.OK, seat=seat),
    ]


def _refused(buyer: int) -> list[Event]:
    return [
        _ev(buyer, Step.WAIT),
        _ev(buyer, Step.ENTER),
        _ev(buyer, Step.READ, value=0),
        _ev(buyer, Step.LEAVE),
        _ev(buyer, Step.FAIL),
    ]


def _race(buyers: list[int], read: int, *, reads_first: bool) -> list[Event]:
    """Unguarded buyers that all read ``read`` and all take seat 1 (tickets == read).

    ``reads_first``: every read comes before every write (a lost update); otherwise each
    buyer reads and writes in turn, so later reads come after earlier writes.
    """
    reads = [_ev(b, Step.READ, value=read) for b in buyers]
    writes = [_ev(b, Step.WRITE, value=read - 1, seat=1) for b in buyers]
    oks = [_ev(b, Step.OK, seat=1) for b in buyers]
    if reads_first:
        return _timed(*reads, *writes, *oks)
    interleaved = [e for pair in zip(reads, writes, strict=True) for e in pair]
    return _timed(*interleaved, *oks)


# --- names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, ""),
        (1, "buyer-1"),
        (2, "buyer-1 and buyer-2"),
        (3, "buyer-1, buyer-2 and buyer-3"),
        (4, "buyer-1, buyer-2, buyer-3 and 1 more"),
        (5, "buyer-1, buyer-2, buyer-3 and 2 more"),
        (50, "buyer-1, buyer-2, buyer-3 and 47 more"),
    ],
    ids=["none", "one", "two", "three", "four", "five", "fifty"],
)
def test_names(count: int, expected: str) -> None:
    assert names([buyer_name(n) for n in range(1, count + 1)]) == expected


def test_names_shows_three() -> None:
    assert NAMES_SHOWN == 3


def test_names_keeps_the_order_given() -> None:
    assert names(["buyer-9", "buyer-2"]) == "buyer-9 and buyer-2"
    assert names(("x", "y", "z")) == "x, y and z"


# --- a clean run ------------------------------------------------------------------------


def _clean_lock_run() -> tuple[TicketDB, TicketDB, list[Event]]:
    """3 buyers, 2 tickets, one at a time: seats 1 and 2 sold, buyer-3 reads 0 and fails."""
    initial = TicketDB.fresh(2)
    ready = [_ev(b, Step.READY) for b in (1, 2, 3)]
    checks = [_ev(b, Step.CHECK, value=2) for b in (1, 2, 3)]
    history = _timed(*ready, *checks, *_sells(1, 2, 2), *_sells(2, 1, 2), *_refused(3))
    final = initial.sell(_sale(1, 1)).sell(_sale(2, 2))
    return initial, final, history


def test_clean_serial_lock_run_has_no_violations() -> None:
    initial, final, history = _clean_lock_run()
    assert final == TicketDB(tickets=2, remaining=0, ledger=(_sale(1, 1), _sale(2, 2)))
    assert check(initial, final, history, buyers=3, safe=True) == []
    assert check(initial, final, history, buyers=3, safe=False) == []
    assert check_db(final) == []


def test_clean_run_with_earlier_sales_in_the_ledger() -> None:
    initial = TicketDB.fresh(3).sell(_sale(9, 1))
    history = _timed(*_sells(1, 2, 3), *_sells(2, 1, 3))
    final = initial.sell(_sale(1, 2)).sell(_sale(2, 3))
    assert check(initial, final, history, buyers=2, safe=True) == []


def test_nobody_buys_from_a_sold_out_db() -> None:
    initial = TicketDB(tickets=1, remaining=0, ledger=(_sale(9, 1),))
    history = _timed(*_refused(1), *_refused(2))
    assert check(initial, initial, history, buyers=2, safe=True) == []


# --- OVERSOLD ---------------------------------------------------------------------------


def test_three_sold_for_one_ticket_is_oversold() -> None:
    initial = TicketDB.fresh(1)
    history = _timed(
        _ev(1, Step.OK, seat=1),
        _ev(2, Step.OK, seat=1),
        _ev(3, Step.OK, seat=1),
    )
    final = initial.sell(_sale(3, 1))
    found = check(initial, final, history, buyers=3, safe=False)
    oversold = _only(found, Kind.OVERSOLD)
    assert oversold.explanation == (
        "Oversold: 3 buyers (buyer-1, buyer-2 and buyer-3) were told they got a ticket, but only 1 "
        "was on sale (2 too many)."
    )
    assert oversold.buyers == ("buyer-1", "buyer-2", "buyer-3")
    assert oversold.seat is None


def test_selling_exactly_what_was_on_sale_is_not_oversold() -> None:
    initial, final, history = _clean_lock_run()
    assert Kind.OVERSOLD not in _kinds(check(initial, final, history, buyers=3, safe=False))


def test_a_negative_initial_count_puts_nothing_on_sale() -> None:
    initial = TicketDB(tickets=1, remaining=-1)
    history = _timed(_ev(1, Step.OK, seat=3))
    found = check(initial, None, history, buyers=1, safe=False)
    assert "only 0 were on sale (1 too many)" in _only(found, Kind.OVERSOLD).explanation


def test_oversold_buyers_are_in_buyer_number_order() -> None:
    initial = TicketDB.fresh(1)
    history = _timed(_ev(10, Step.OK, seat=1), _ev(2, Step.OK, seat=2))
    found = check(initial, None, history, buyers=10, safe=False)
    assert _only(found, Kind.OVERSOLD).buyers == ("buyer-2", "buyer-10")


# --- DOUBLE_BOOKED ----------------------------------------------------------------------


def test_lost_update_story_when_both_read_before_either_wrote() -> None:
    initial = TicketDB.fresh(1)
    history = _race([1, 2], 1, reads_first=True)
    final = initial.sell(_sale(2, 1))
    found = check(initial, final, history, buyers=2, safe=False)
    double = _only(found, Kind.DOUBLE_BOOKED)
    assert double.explanation == (
        "Lost update: buyer-1 and buyer-2 both read remaining=1 before either wrote it back; "
        "both were sold seat 1."
    )
    assert double.buyers == ("buyer-1", "buyer-2")
    assert double.seat == 1
    assert sorted(_kinds(found)) == sorted([Kind.OVERSOLD, Kind.DOUBLE_BOOKED, Kind.LOST_SALE])


def test_stale_count_story_when_a_read_comes_after_a_write() -> None:
    initial = TicketDB.fresh(1)
    history = _race([1, 2], 1, reads_first=False)
    found = check(initial, None, history, buyers=2, safe=False)
    double = _only(found, Kind.DOUBLE_BOOKED)
    assert double.explanation == (
        "Stale count: buyer-1 and buyer-2 both read remaining=1, some after an older count "
        "had been written back over a newer one; both were sold seat 1."
    )
    assert double.buyers == ("buyer-1", "buyer-2")


def test_lost_update_story_for_three_buyers() -> None:
    initial = TicketDB.fresh(1)
    history = _race([3, 1, 2], 1, reads_first=True)
    double = _only(check(initial, None, history, buyers=3, safe=False), Kind.DOUBLE_BOOKED)
    assert double.explanation == (
        "Lost update: All 3 buyers (buyer-1, buyer-2 and buyer-3) read remaining=1 before "
        "any of them wrote it back; all were sold seat 1."
    )
    assert double.buyers == ("buyer-1", "buyer-2", "buyer-3")


def test_story_for_many_buyers_counts_the_rest() -> None:
    initial = TicketDB.fresh(1)
    history = _race([10, 2, 3, 4, 5], 1, reads_first=True)
    double = _only(check(initial, None, history, buyers=10, safe=False), Kind.DOUBLE_BOOKED)
    assert double.explanation.startswith(
        "Lost update: All 5 buyers (buyer-2, buyer-3, buyer-4 and 2 more) read remaining=1"
    )
    assert double.buyers == ("buyer-2", "buyer-3", "buyer-4", "buyer-5", "buyer-10")


def test_buyers_are_named_in_number_order_not_text_order() -> None:
    initial = TicketDB.fresh(1)
    history = _race([10, 2], 1, reads_first=True)
    double = _only(check(initial, None, history, buyers=10, safe=False), Kind.DOUBLE_BOOKED)
    assert double.explanation.startswith("Lost update: buyer-2 and buyer-10 both read")


def test_plain_story_when_the_reads_differ_or_are_missing() -> None:
    initial = TicketDB.fresh(2)
    differ = _timed(
        _ev(1, Step.READ, value=2),
        _ev(2, Step.READ, value=1),
        _ev(1, Step.OK, seat=1),
        _ev(2, Step.OK, seat=1),
    )
    no_reads = _timed(_ev(1, Step.OK, seat=1), _ev(2, Step.OK, seat=1))
    for history in (differ, no_reads):
        double = _only(check(initial, None, history, buyers=2, safe=False), Kind.DOUBLE_BOOKED)
        assert double.explanation == "Seat 1 was sold to buyer-1 and buyer-2."


def test_different_seats_are_not_double_booked() -> None:
    initial, final, history = _clean_lock_run()
    assert Kind.DOUBLE_BOOKED not in _kinds(check(initial, final, history, buyers=3, safe=True))


def test_selling_a_seat_already_in_the_initial_ledger_is_double_booked() -> None:
    initial = TicketDB.fresh(3).sell(_sale(9, 1))
    # buyer-1 read a stale count (3, not 2) and so took seat 1 again.
    history = _timed(
        _ev(1, Step.READ, value=3),
        _ev(1, Step.WRITE, value=2, seat=1),
        _ev(1, Step.OK, seat=1),
    )
    final = TicketDB(tickets=3, remaining=2, ledger=(_sale(1, 1),))
    found = check(initial, final, history, buyers=1, safe=False)
    double = _only(found, Kind.DOUBLE_BOOKED)
    assert double.seat == 1
    assert double.buyers == ("buyer-1",)
    assert "buyer-1" in double.explanation
    assert "buyer-9" not in double.buyers
    assert double.explanation.endswith("The seat had already been sold before this sale opened.")
    assert _kinds(found) == [Kind.DOUBLE_BOOKED]


def test_reselling_an_old_seat_story_is_about_one_buyer() -> None:
    initial = TicketDB.fresh(3).sell(_sale(9, 1))
    history = _timed(
        _ev(1, Step.READ, value=3),
        _ev(1, Step.WRITE, value=2, seat=1),
        _ev(1, Step.OK, seat=1),
    )
    double = _only(check(initial, None, history, buyers=1, safe=False), Kind.DOUBLE_BOOKED)
    assert "All 1 buyers" not in double.explanation
    assert "any of them" not in double.explanation


def test_two_buyers_reselling_an_old_seat() -> None:
    initial = TicketDB.fresh(2).sell(_sale(9, 1))
    history = _race([1, 2], 2, reads_first=True)
    double = _only(check(initial, None, history, buyers=2, safe=False), Kind.DOUBLE_BOOKED)
    assert double.explanation == (
        "Lost update: buyer-1 and buyer-2 both read remaining=2 before either wrote it back; "
        "both were sold seat 1. The seat had already been sold before this sale opened."
    )


# --- LOST_SALE --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ledger",
    [
        (_sale(1, 1),),
        (_sale(1, 1), Sale(buyer="buyer-2", seat=2, pid=999, time=1.0)),
        (_sale(1, 1), Sale(buyer="buyer-2", seat=1, pid=_pid(2), time=1.0)),
        (_sale(1, 1), Sale(buyer="buyer-3", seat=2, pid=_pid(2), time=1.0)),
    ],
    ids=["missing", "other-pid", "other-seat", "other-name"],
)
def test_ok_without_its_ledger_entry_is_a_lost_sale(ledger: tuple[Sale, ...]) -> None:
    initial = TicketDB.fresh(2)
    history = _timed(*_sells(1, 2, 2), *_sells(2, 1, 2))
    final = TicketDB(tickets=2, remaining=2 - len(ledger), ledger=ledger)
    lost = _only(check(initial, final, history, buyers=2, safe=True), Kind.LOST_SALE)
    assert lost.buyers == ("buyer-2",)
    assert lost.explanation == (
        "Lost sale: buyer-2 was told success, but the ledger has no entry for it: a later "
        "write, made from an older read of the db, replaced it."
    )


def test_several_lost_sales_are_one_violation() -> None:
    initial = TicketDB.fresh(3)
    history = _timed(*_sells(3, 3, 3), *_sells(1, 2, 3), *_sells(2, 1, 3))
    final = TicketDB(tickets=3, remaining=2, ledger=(_sale(3, 1),))
    found = check(initial, final, history, buyers=3, safe=False)
    lost = _only(found, Kind.LOST_SALE)
    assert lost.buyers == ("buyer-1", "buyer-2")
    assert lost.explanation.startswith(
        "Lost sale: buyer-1 and buyer-2 were told success, but the ledger has no entry for them"
    )
    assert _kinds(found) == [Kind.LOST_SALE]  # the count itself adds up


def test_an_unreadable_db_reports_no_lost_sale() -> None:
    initial = TicketDB.fresh(2)
    history = _timed(*_sells(1, 2, 2))
    assert Kind.LOST_SALE not in _kinds(check(initial, None, history, buyers=1, safe=False))


# --- check_db ---------------------------------------------------------------------------


def test_check_db_of_a_consistent_db_is_empty() -> None:
    assert check_db(TicketDB.fresh(5)) == []
    assert check_db(TicketDB.fresh(0)) == []
    assert check_db(TicketDB(tickets=3, remaining=1, ledger=(_sale(1, 3), _sale(2, 1)))) == []


def test_check_db_count_mismatch() -> None:
    db = TicketDB(tickets=3, remaining=2, ledger=())
    assert check_db(db) == [
        Violation(
            Kind.COUNT_MISMATCH,
            "remaining=2 plus 0 sale(s) in the ledger is not the 3 tickets put on sale",
        )
    ]


def test_check_db_remaining_above_tickets() -> None:
    db = TicketDB(tickets=2, remaining=3, ledger=())
    assert check_db(db) == [
        Violation(Kind.COUNT_MISMATCH, "remaining=3 is more than the 2 tickets put on sale")
    ]


def test_check_db_negative_remaining() -> None:
    db = TicketDB(tickets=1, remaining=-1, ledger=(_sale(1, 1), _sale(2, 1)))
    found = check_db(db)
    negative = _only(found, Kind.NEGATIVE_REMAINING)
    assert negative.explanation == "remaining=-1 is below zero"
    assert _kinds(found) == [Kind.NEGATIVE_REMAINING, Kind.SEAT_CONFLICT]


def test_check_db_negative_remaining_with_a_count_mismatch() -> None:
    found = check_db(TicketDB(tickets=0, remaining=-1))
    assert _kinds(found) == [Kind.NEGATIVE_REMAINING, Kind.COUNT_MISMATCH]


def test_check_db_a_seat_sold_twice() -> None:
    db = TicketDB(tickets=3, remaining=0, ledger=(_sale(2, 1), _sale(1, 2), _sale(3, 1)))
    conflict = _only(check_db(db), Kind.SEAT_CONFLICT)
    assert conflict.seat == 1
    assert conflict.buyers == ("buyer-2", "buyer-3")
    assert conflict.explanation == "the ledger sells seat 1 2 times (buyer-2 and buyer-3)"
    assert _kinds(check_db(db)) == [Kind.SEAT_CONFLICT]


@pytest.mark.parametrize("seat", [0, -1, 3, 100], ids=["zero", "negative", "past-end", "far"])
def test_check_db_a_seat_out_of_range(seat: int) -> None:
    db = TicketDB(tickets=2, remaining=1, ledger=(_sale(1, seat),))
    found = check_db(db)
    assert _kinds(found) == [Kind.SEAT_CONFLICT]
    assert found[0].seat == seat
    assert found[0].buyers == ("buyer-1",)
    assert found[0].explanation == f"the ledger sells seat {seat} to buyer-1, outside seats 1-2"


def test_check_includes_the_final_db_problems() -> None:
    initial = TicketDB.fresh(2)
    history = _timed(*_sells(1, 2, 2))
    final = TicketDB(tickets=2, remaining=2, ledger=(_sale(1, 1),))
    found = check(initial, final, history, buyers=1, safe=False)
    assert found == check_db(final)
    assert _kinds(found) == [Kind.COUNT_MISMATCH]


# --- UNDERSOLD --------------------------------------------------------------------------


def _undersold_run() -> tuple[TicketDB, TicketDB, list[Event]]:
    """2 tickets, 3 buyers: buyer-1 buys, buyer-2 wrongly reads 0, buyer-3 crashes."""
    initial = TicketDB.fresh(2)
    history = _timed(
        *_sells(1, 2, 2),
        *_refused(2),
        _ev(3, Step.WAIT),
        _ev(3, Step.ERROR),
    )
    final = initial.sell(_sale(1, 1))
    return initial, final, history


def test_undersold_only_for_a_safe_strategy() -> None:
    initial, final, history = _undersold_run()
    found = check(initial, final, history, buyers=3, safe=True)
    undersold = _only(found, Kind.UNDERSOLD)
    assert undersold.explanation == (
        "Undersold: 1 sale(s), but 2 = min(2 on sale, 3 buyers) were due; buyer-2 refused; "
        "buyer-3 did not finish."
    )
    assert undersold.buyers == ("buyer-2", "buyer-3")
    assert _kinds(found) == [Kind.UNDERSOLD]
    assert check(initial, final, history, buyers=3, safe=False) == []


def test_undersold_counts_buyers_when_fewer_than_tickets() -> None:
    initial = TicketDB.fresh(5)
    one = _timed(*_sells(1, 5, 5))
    final = initial.sell(_sale(1, 1))
    assert check(initial, final, one, buyers=1, safe=True) == []
    refused = _timed(*_sells(1, 5, 5), _ev(2, Step.READ, value=4), _ev(2, Step.FAIL))
    undersold = _only(check(initial, final, refused, buyers=2, safe=True), Kind.UNDERSOLD)
    assert undersold.explanation == (
        "Undersold: 1 sale(s), but 2 = min(5 on sale, 2 buyers) were due; buyer-2 refused."
    )
    assert undersold.buyers == ("buyer-2",)


def test_a_buyer_that_died_without_an_outcome_is_owed_nothing() -> None:
    initial = TicketDB.fresh(5)
    final = initial.sell(_sale(1, 1))
    history = _timed(*_sells(1, 5, 5), _ev(2, Step.READY), _ev(2, Step.READ, value=4))
    assert check(initial, final, history, buyers=2, safe=True) == []


def test_tickets_sold_by_another_program_are_not_undersold() -> None:
    initial = TicketDB.fresh(2)
    history = _timed(*_sells(1, 2, 2), _ev(2, Step.READ, value=0), _ev(2, Step.FAIL))
    final = initial.sell(_sale(1, 1)).sell(_sale(9, 2))  # buyer-9 sold elsewhere
    assert check(initial, final, history, buyers=2, safe=True) == []
    alone = initial.sell(_sale(1, 1))
    assert _kinds(check(initial, alone, history, buyers=2, safe=True)) == [Kind.UNDERSOLD]


# --- UNREADABLE_DB ----------------------------------------------------------------------


def test_unreadable_final_db() -> None:
    initial = TicketDB.fresh(2)
    history = _timed(*_sells(1, 2, 2), *_sells(2, 1, 2))
    found = check(
        initial, None, history, buyers=2, safe=True, final_error="tickets.json: the file is empty"
    )
    assert found == [
        Violation(
            Kind.UNREADABLE_DB,
            "The db left behind is unreadable (tickets.json: the file is empty); "
            "every sale in it is lost.",
        )
    ]


def test_unreadable_final_db_without_a_reason() -> None:
    found = check(TicketDB.fresh(1), None, [], buyers=1, safe=False)
    assert _kinds(found) == [Kind.UNREADABLE_DB]
    assert "(unknown reason)" in found[0].explanation


# --- explanations -----------------------------------------------------------------------


def test_explanations_name_the_buyers_involved() -> None:
    initial = TicketDB.fresh(1)
    history = _race([1, 2], 1, reads_first=True)
    final = TicketDB(tickets=1, remaining=0, ledger=(_sale(2, 1), _sale(2, 1)))
    found = check(initial, final, history, buyers=3, safe=True)
    named = [v for v in found if v.buyers and v.kind is not Kind.OVERSOLD]
    assert {v.kind for v in named} == {Kind.DOUBLE_BOOKED, Kind.LOST_SALE, Kind.SEAT_CONFLICT}
    for violation in named:
        for buyer in violation.buyers[:NAMES_SHOWN]:
            assert buyer in violation.explanation, violation
    undersold = _only(check(*_undersold_run(), buyers=3, safe=True), Kind.UNDERSOLD)
    assert all(buyer in undersold.explanation for buyer in undersold.buyers)


def test_oversold_explanation_names_the_buyers() -> None:
    history = _timed(_ev(1, Step.OK, seat=1), _ev(2, Step.OK, seat=2))
    oversold = _only(check(TicketDB.fresh(1), None, history, buyers=2, safe=False), Kind.OVERSOLD)
    assert "buyer-1" in oversold.explanation
    assert "buyer-2" in oversold.explanation


def test_out_of_range_seat_explanation_names_the_buyer() -> None:
    found = check_db(TicketDB(tickets=2, remaining=1, ledger=(_sale(1, 5),)))
    assert "buyer-1" in found[0].explanation


def test_violation_to_json() -> None:
    violation = Violation(Kind.DOUBLE_BOOKED, "story", ("buyer-1", "buyer-2"), 3)
    assert violation.to_json() == {
        "kind": "double-booked",
        "explanation": "story",
        "buyers": ["buyer-1", "buyer-2"],
        "seat": 3,
    }
    assert Violation(Kind.UNREADABLE_DB, "x").to_json()["seat"] is None
