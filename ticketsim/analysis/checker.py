"""The invariant checker: a pure function from a sale's history and db to violations.

It reads only what a run records (the db before and after, and the buyers'
events), so a saved history can be audited later exactly as a live run is.
Each violation carries a plain-language explanation naming the buyers involved.
"""

from __future__ import annotations

from collections import defaultdict
from enum import Enum
from typing import TYPE_CHECKING, Any, Final

from ticketsim.core.events import OUTCOMES, Event, Step, buyer_name, planned
from ticketsim.core.frozen import frozen

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ticketsim.core.db import TicketDB

#: Buyers named in one explanation before the rest are counted ("and 47 more").
NAMES_SHOWN: Final = 3


class Kind(str, Enum):
    OVERSOLD = "oversold"  #: more buyers told "you got a ticket" than were on sale
    DOUBLE_BOOKED = "double-booked"  #: one seat told to two or more buyers
    LOST_SALE = "lost-sale"  #: a buyer told success has no entry in the ledger
    COUNT_MISMATCH = "count-mismatch"  #: remaining + recorded sales != tickets
    NEGATIVE_REMAINING = "negative-remaining"  #: the db's count went below zero
    SEAT_CONFLICT = "seat-conflict"  #: the ledger itself has a seat twice, or out of range
    UNDERSOLD = "undersold"  #: a safe strategy sold fewer than min(tickets, buyers)
    UNREADABLE_DB = "unreadable-db"  #: the db left behind does not parse
    #: an invariant of the user's own (``ticketsim.race.Race``'s ``invariant``) broke
    YOUR_INVARIANT = "your-invariant"


@frozen
class Violation:
    kind: Kind
    explanation: str
    buyers: tuple[str, ...] = ()
    seat: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "explanation": self.explanation,
            "buyers": list(self.buyers),
            "seat": self.seat,
        }


def names(buyers: Sequence[str]) -> str:
    """``buyer-1``, ``buyer-1 and buyer-2``, ``buyer-1, buyer-2, buyer-3 and 4 more``."""
    if len(buyers) <= 2:
        return " and ".join(buyers)
    if len(buyers) <= NAMES_SHOWN:
        return ", ".join(buyers[:-1]) + f" and {buyers[-1]}"
    return ", ".join(buyers[:NAMES_SHOWN]) + f" and {len(buyers) - NAMES_SHOWN} more"


def _first(history: Iterable[Event], step: Step) -> dict[int, Event]:
    first: dict[int, Event] = {}
    for event in history:
        if event.step is step and event.buyer not in first:
            first[event.buyer] = event
    return first


def check_db(db: TicketDB) -> list[Violation]:
    """Violations visible in a db on its own, without any history."""
    found: list[Violation] = []
    if db.tickets < 0:
        found.append(Violation(Kind.NEGATIVE_REMAINING, f"tickets={db.tickets} is below zero"))
    if db.remaining < 0:
        found.append(Violation(Kind.NEGATIVE_REMAINING, f"remaining={db.remaining} is below zero"))
    if db.remaining > db.tickets:
        found.append(
            Violation(
                Kind.COUNT_MISMATCH,
                f"remaining={db.remaining} is more than the {db.tickets} tickets put on sale",
            )
        )
    elif db.remaining + len(db.ledger) != db.tickets:
        found.append(
            Violation(
                Kind.COUNT_MISMATCH,
                f"remaining={db.remaining} plus {len(db.ledger)} sale(s) in the ledger "
                f"is not the {db.tickets} tickets put on sale",
            )
        )
    holders: dict[int, list[str]] = defaultdict(list)
    for sale in db.ledger:
        holders[sale.seat].append(sale.buyer)
    for seat, buyers in sorted(holders.items()):
        if not 1 <= seat <= db.tickets:
            found.append(
                Violation(
                    Kind.SEAT_CONFLICT,
                    f"the ledger sells seat {seat} to {names(buyers)}, outside seats "
                    f"1-{db.tickets}",
                    tuple(buyers),
                    seat,
                )
            )
        elif len(buyers) > 1:
            found.append(
                Violation(
                    Kind.SEAT_CONFLICT,
                    f"the ledger sells seat {seat} {len(buyers)} times ({names(buyers)})",
                    tuple(buyers),
                    seat,
                )
            )
    return found


def _race_story(
    seat: int, buyers: list[int], reads: dict[int, Event], writes: dict[int, Event]
) -> str:
    """Why several buyers were sold one seat: what each read, and when they wrote.

    ``reads`` and ``writes`` are each buyer's first read and write (:func:`_first`).
    """
    ordered = sorted(buyers)
    who = names([buyer_name(b) for b in ordered])
    if len(ordered) == 1:
        return f"{who} was sold seat {seat}."
    if len(ordered) == 2:
        subject, either, all_of = f"{who} both", "either", "both"
    else:
        subject, either, all_of = f"All {len(ordered)} buyers ({who})", "any of them", "all"
    seen = {reads[b].value for b in ordered if b in reads}
    last_read = max((reads[b].t for b in ordered if b in reads), default=None)
    first_write = min((writes[b].t for b in ordered if b in writes), default=None)
    if len(seen) == 1 and last_read is not None and first_write is not None:
        value = seen.pop()
        if last_read < first_write:
            return (
                f"Lost update: {subject} read remaining={value} before {either} wrote it "
                f"back; {all_of} were sold seat {seat}."
            )
        return (
            f"Stale count: {subject} read remaining={value}, some after an older count had "
            f"been written back over a newer one; {all_of} were sold seat {seat}."
        )
    return f"Seat {seat} was sold to {who}."


def _oversold(on_sale: int, sold: list[Event]) -> list[Violation]:
    if len(sold) <= on_sale:
        return []
    who = [buyer_name(b) for b in sorted(e.buyer for e in sold)]
    return [
        Violation(
            Kind.OVERSOLD,
            f"Oversold: {len(sold)} buyers ({names(who)}) were told they got a ticket, but "
            f"only {on_sale} {'was' if on_sale == 1 else 'were'} on sale "
            f"({len(sold) - on_sale} too many).",
            tuple(who),
        )
    ]


def _double_booked(
    initial: TicketDB, sold: list[Event], history: Sequence[Event]
) -> list[Violation]:
    by_seat: dict[int, list[int]] = defaultdict(list)
    for sale in initial.ledger:
        by_seat[sale.seat].append(0)  # 0: sold before this sale opened
    for event in sold:
        if event.seat is not None:
            by_seat[event.seat].append(event.buyer)
    found = []
    # Each buyer's first read and write, found once for every seat that needs them:
    # looking them up per seat would read the whole history once per double booking.
    firsts: tuple[dict[int, Event], dict[int, Event]] | None = None
    for seat, holders in sorted(by_seat.items()):
        ours = [b for b in holders if b]
        if len(holders) > 1 and ours:
            if firsts is None:
                firsts = _first(history, Step.READ), _first(history, Step.WRITE)
            story = _race_story(seat, ours, *firsts)
            if len(ours) < len(holders):
                story += " The seat had already been sold before this sale opened."
            names_ = tuple(buyer_name(b) for b in sorted(ours))
            found.append(Violation(Kind.DOUBLE_BOOKED, story, names_, seat))
    return found


def _told_no_seat(initial: TicketDB, sold: list[Event]) -> list[Violation]:
    """Buyers told they got a seat the sale does not have (or no seat at all): checked
    on what they were told, not only on the ledger, which a history may not give."""
    found = []
    for e in sold:
        if e.seat is None or not 1 <= e.seat <= initial.tickets:
            said = "no seat" if e.seat is None else f"seat {e.seat}"
            found.append(
                Violation(
                    Kind.SEAT_CONFLICT,
                    f"{e.name} was told it got {said}, outside seats 1-{initial.tickets}",
                    (e.name,),
                    e.seat,
                )
            )
    return found


def _lost(final: TicketDB, sold: list[Event]) -> list[Violation]:
    recorded = {(s.buyer, s.seat, s.pid) for s in final.ledger}
    lost = [
        buyer_name(e.buyer)
        for e in sorted(sold, key=lambda e: e.buyer)
        if (e.name, e.seat, e.pid) not in recorded
    ]
    if not lost:
        return []
    one = len(lost) == 1
    return [
        Violation(
            Kind.LOST_SALE,
            f"Lost sale: {names(lost)} {'was' if one else 'were'} told success, but the "
            f"ledger has no entry for {'it' if one else 'them'}: a later write, made from an "
            "older read of the db, replaced it.",
            tuple(lost),
        )
    ]


def _undersold(
    initial: TicketDB,
    final: TicketDB | None,
    buyers: int,
    sold: list[Event],
    history: Sequence[Event],
) -> list[Violation]:
    """Liveness: a safe strategy sells ``min(on sale, buyers)``, with two allowances.

    A buyer whose process died before any outcome is owed nothing. And tickets that
    went to sales this run did not make (another program selling from the same db, or
    a buyer killed after its write) are not missing: they were sold.
    """
    on_sale = max(initial.remaining, 0)
    taken = {e.buyer for e in history if planned(e)}  # by a planned fault: as if dead
    finished = {e.buyer for e in history if e.step in OUTCOMES} - taken
    died = buyers - len(finished)
    expected = min(on_sale, buyers - died)
    if len(sold) >= expected:
        return []
    if final is not None:
        known: set[tuple[str, int | None, int]] = {(s.buyer, s.seat, s.pid) for s in initial.ledger}
        known |= {(e.name, e.seat, e.pid) for e in sold}
        # A sale in the name of a buyer told "sold out" was not made elsewhere: it is
        # one the sale made and denied.
        denied = {(e.name, e.pid) for e in history if e.step is Step.FAIL}
        elsewhere = sum(
            1
            for s in final.ledger
            if (s.buyer, s.seat, s.pid) not in known and (s.buyer, s.pid) not in denied
        )
        if len(sold) + elsewhere >= expected:
            return []
    refused = [e.name for e in history if e.step is Step.FAIL]
    failed = [e.name for e in history if e.step is Step.ERROR]
    detail = [f"{names(refused)} refused"] if refused else []
    if failed:
        detail.append(f"{names(failed)} did not finish")
    owed = f"min({on_sale} on sale, {buyers - died} buyers)"
    if died:
        owed += f" ({died} buyer(s) died without an outcome and are not counted)"
    return [
        Violation(
            Kind.UNDERSOLD,
            f"Undersold: {len(sold)} sale(s), but {expected} = {owed} were due"
            + (f"; {'; '.join(detail)}." if detail else "."),
            tuple(refused + failed),
        )
    ]


def check(
    initial: TicketDB,
    final: TicketDB | None,
    history: Sequence[Event],
    *,
    buyers: int,
    safe: bool,
    final_error: str | None = None,
    final_known: bool = True,
    count_known: bool = True,
) -> list[Violation]:
    """Every invariant the sale broke.

    ``initial`` is the db as the sale opened (its ``remaining`` is what was on sale),
    ``final`` the db afterwards (``None`` when it no longer parses, with
    ``final_error`` saying why), ``history`` the buyers' events. ``safe`` adds the
    liveness check: a safe strategy must sell exactly ``min(on sale, buyers)``. With
    ``final_known`` false nobody knows the final state (a history another program wrote
    without it): only the history is checked. With ``count_known`` false the final
    remaining count is only what the ledger leaves (a user's store that lists its
    sales and no count): it is not checked against the ledger.
    """
    on_sale = max(initial.remaining, 0)
    ok = Step.OK  # once: an enum member costs a class lookup each time it is named
    sold = [e for e in history if e.step is ok]
    found = _oversold(on_sale, sold) + _double_booked(initial, sold, history)
    found += _told_no_seat(initial, sold)
    if not final_known:
        pass  # no final state was given: the history's own violations are all there is
    elif final is None:
        found.append(
            Violation(
                Kind.UNREADABLE_DB,
                f"The db left behind is unreadable ({final_error or 'unknown reason'}); "
                "every sale in it is lost.",
            )
        )
    else:
        counted = (Kind.COUNT_MISMATCH, Kind.NEGATIVE_REMAINING)
        in_db = [v for v in check_db(final) if count_known or v.kind not in counted]
        found += _lost(final, sold) + in_db
    if safe:
        found += _undersold(initial, final, buyers, sold, history)
    elif final is not None:
        found += _gave_up(final, history)
    return found


def _gave_up(final: TicketDB, history: Sequence[Event]) -> list[Violation]:
    """Liveness, for any strategy: a buyer the store refused, that did not try again,
    while tickets were left unsold, lost a sale the shop could have made."""
    quitters = sorted({e.buyer for e in history if e.step is Step.FAIL and e.error is not None})
    if not quitters or final.remaining <= 0:
        return []
    why = next(e.note or e.error for e in history if e.step is Step.FAIL and e.error is not None)
    why = (why or "").removeprefix("gave up: ")
    who = [buyer_name(b) for b in quitters]
    return [
        Violation(
            Kind.UNDERSOLD,
            f"Undersold: {names(who)} gave up when the store refused them ({why}), and "
            f"{final.remaining} ticket(s) were left unsold; retrying the refused "
            "transaction would have sold them.",
            tuple(who),
        )
    ]
