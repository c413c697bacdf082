"""Stores in shared memory: a count, or a seat map, that the parent writes to the db
once the sale is over.

Buyer processes unpickle these stores, so this module uses the standard library only.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

from ticketsim.core import db as dbfile
from ticketsim.core.events import Step, buyer_name, buyer_number
from ticketsim.core.frozen import frozen
from ticketsim.sale.stores.base import Seen, Store, Tally, sales_written

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ticketsim.core.events import Event, Recorder


@frozen
class CountStore(Store):
    """The remaining count in a shared-memory ``multiprocessing.Value('i')``.

    ``count.value`` takes the Value's lock for the read and again for the write, but
    nothing holds it across both: ``if v.value > 0: v.value -= 1`` is two atomic
    steps, not one. The db is written once, when the sale is over, with a ledger of
    the sales the buyers recorded (:func:`~ticketsim.sale.stores.base.sales_written`).
    """

    count: Any
    tickets: int
    #: The seats sold before the sale opened, sorted: a buyer takes a seat among the others.
    taken: tuple[int, ...] = ()

    def read(self, record: Recorder) -> Seen:
        del record
        return counted(self.tickets, self.taken, self.count.value)

    def peek(self, record: Recorder) -> int:
        # Bypass the Value's lock: a look must never wait (its holder may be dead).
        del record
        value: int = self.count.get_obj().value
        return value

    def sell(self, seen: Seen, sale: dbfile.Sale) -> None:
        del sale
        self.count.value = seen.remaining - 1

    def tally(self, initial: dbfile.TicketDB, history: Sequence[Event]) -> Tally:
        del initial
        return Tally(self.count.get_obj().value, sales_written(history))


def counted(tickets: int, taken: tuple[int, ...], remaining: int) -> Seen:
    """What a buyer that reads only the count sees: the count, and the seat that count
    says is next (the lowest of the seats free when the sale opened, after those sold
    since). Two buyers who read the same count take the same seat."""
    sold_since = tickets - len(taken) - remaining
    seat = dbfile.nth_free_seat(taken, sold_since) if remaining > 0 else 0
    return Seen(tickets=tickets, remaining=remaining, seat=seat)


#: Seat-map cells: a free seat, a seat sold before this sale opened, else a buyer number.
FREE: Final = 0
SOLD_BEFORE: Final = -1


@frozen
class SeatMapStore(Store):
    """A seat map in a shared-memory ``multiprocessing.Array('i', tickets)``.

    Each cell holds the number of the buyer who claimed that seat. Reading the map
    (one slice) and claiming a seat (one assignment) each take the array's lock, but
    not both together: two buyers can see the same seat free and both claim it, and
    the second claim overwrites the first. The db is written once, from the map, when
    the sale is over.
    """

    seats: Any

    def read(self, record: Recorder) -> Seen:
        del record
        cells = self.seats[:]
        remaining = cells.count(FREE)
        seat = cells.index(FREE) + 1 if remaining else 0  # the lowest free seat in the map
        return Seen(tickets=len(cells), remaining=remaining, seat=seat)

    def peek(self, record: Recorder) -> int:
        # Bypass the array's lock: a look must never wait (its holder may be dead).
        del record
        cells: list[int] = self.seats.get_obj()[:]
        return cells.count(FREE)

    def sell(self, seen: Seen, sale: dbfile.Sale) -> None:
        del seen
        self.seats[sale.seat - 1] = buyer_number(sale.buyer)

    def tally(self, initial: dbfile.TicketDB, history: Sequence[Event]) -> Tally:
        del initial
        pids = {e.buyer: e.pid for e in history if e.step is Step.READY}
        now = time.time()
        cells = self.seats.get_obj()[:]
        sales = tuple(
            dbfile.Sale(buyer_name(owner), seat, pids.get(owner, 0), now)
            for seat, owner in enumerate(cells, start=1)
            if owner > 0
        )
        return Tally(cells.count(FREE), sales)
