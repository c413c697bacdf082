"""Stores: where the tickets live while a sale runs, and how a buyer reads and sells them.

Buyer processes unpickle these, so this module uses the standard library only.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ticketsim.core import db as dbfile
from ticketsim.core._files import remove_leftovers
from ticketsim.core.events import Event, Step, buyer_name, buyer_number
from ticketsim.errors import DbError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ticketsim.core.events import Recorder

#: How often a buyer re-reads a db it found half written before it gives up.
TORN_RETRIES: Final = 1000
#: Pause between those re-reads: long enough for the writer to finish its ``json.dump``.
TORN_BACKOFF_S: Final = 0.0005


class Store(ABC):
    """Where the tickets live while the sale runs."""

    @abstractmethod
    def read(self, record: Recorder) -> dbfile.TicketDB:
        """The state as this buyer sees it now (its ``ledger`` may be left out)."""

    def prepare(self) -> None:
        """Called in the buyer's process before the sale opens: do the one-off work of a
        first read and write there, not inside the critical section. Never changes the db."""
        return  # most stores keep nothing per process

    def peek(self, record: Recorder) -> int:
        """The remaining count, looked at without any protection (the ``check`` step)."""
        return self.read(record).remaining

    @abstractmethod
    def sell(self, seen: dbfile.TicketDB, sale: dbfile.Sale) -> None:
        """Record ``sale``, made on the strength of having read ``seen``."""

    def tidy(self) -> None:
        """Called in the buyer once it has let go of its lock (or the ticket office has
        answered): what a sale left to do that need not keep the others waiting."""
        return  # most stores leave nothing

    def settle(self, path: str, initial: dbfile.TicketDB, history: Sequence[Event]) -> None:
        """In the parent, after the sale: bring the db file up to date.

        A store that writes the file with every sale has nothing left to do. Shared
        memory is read here without its lock (``get_obj()``): every buyer has exited,
        and one that was killed holding the lock would otherwise hang the parent.
        """
        del path, initial, history


@dataclass(frozen=True)
class FileStore(Store):
    """The db file is the shared state; every sale is written to it as it is made.

    ``naive`` selects the tutorial's ``open(path, "w")`` + ``json.dump``, which can be
    seen half done; otherwise every write is atomic. A read that finds a half-written
    db is recorded as ``torn`` and retried: with atomic writes that cannot happen, so
    there a bad db is an error, not a torn read.
    """

    path: str
    naive: bool = False
    #: This process's memory of the ledger, so that a read decodes only new sales.
    index: dbfile.LedgerIndex = field(default_factory=dbfile.LedgerIndex, compare=False, repr=False)
    #: The old dbs this process's writes swapped out, removed by :meth:`tidy`.
    leftovers: list[str] = field(default_factory=list, compare=False, repr=False)

    def read(self, record: Recorder) -> dbfile.TicketDB:
        if not self.naive:
            return dbfile.read_for_sale(self.path, self.index)
        for _ in range(TORN_RETRIES):
            try:
                return dbfile.load(self.path)
            except DbError as exc:
                record(Step.TORN, note=exc.reason)
            time.sleep(TORN_BACKOFF_S)
        raise DbError(self.path, f"still half written after {TORN_RETRIES} reads")

    def prepare(self) -> None:
        # A process's first read decodes the whole ledger into its index (the later ones
        # only what was appended since), and its first read and write run code and touch
        # memory for the first time: a freshly forked buyer took ~0.25 ms for its read
        # and ~0.65 ms for its write, against ~0.05 and ~0.2 ms in a warm process.
        if not self.naive:
            dbfile.rehearse_sale(self.path, self.index, os.getpid())

    def peek(self, record: Recorder) -> int:
        if self.naive:
            return super().peek(record)
        return dbfile.read_remaining(self.path)

    def sell(self, seen: dbfile.TicketDB, sale: dbfile.Sale) -> None:
        if self.naive:
            dbfile.write_naive(self.path, seen.sell(sale))
        else:
            dbfile.append_sale(self.path, seen, sale, self.index, self.leftovers)

    def tidy(self) -> None:
        remove_leftovers(self.leftovers)


@dataclass(frozen=True)
class CountStore(Store):
    """The remaining count in a shared-memory ``multiprocessing.Value('i')``.

    ``count.value`` takes the Value's lock for the read and again for the write, but
    nothing holds it across both: ``if v.value > 0: v.value -= 1`` is two atomic
    steps, not one. The db is written once, when the sale is over, with a ledger of
    the sales made: every buyer's ``write`` event, recorded right after its decrement
    (a buyer killed after its write but before its outcome still made its sale).
    """

    count: Any
    tickets: int
    #: The seats sold before the sale opened, sorted: a buyer takes a seat among the others.
    taken: tuple[int, ...] = ()

    def read(self, record: Recorder) -> dbfile.TicketDB:
        del record
        return _counted(self.tickets, self.taken, self.count.value)

    def peek(self, record: Recorder) -> int:
        # Bypass the Value's lock: a look must never wait (its holder may be dead).
        del record
        value: int = self.count.get_obj().value
        return value

    def sell(self, seen: dbfile.TicketDB, sale: dbfile.Sale) -> None:
        del sale
        self.count.value = seen.remaining - 1

    def settle(self, path: str, initial: dbfile.TicketDB, history: Sequence[Event]) -> None:
        _settle_from_writes(path, initial, history, self.count.get_obj().value)


def _settle_from_writes(
    path: str, initial: dbfile.TicketDB, history: Sequence[Event], remaining: int
) -> None:
    """Write the db with a ledger of every sale made: the buyers' ``write`` events, each
    recorded right after its sale (a buyer killed after its write, before its outcome,
    still made its sale)."""
    now = time.time()
    written = sorted((e for e in history if e.step is Step.WRITE), key=lambda e: e.t)
    sales = tuple(dbfile.Sale(e.name, e.seat or 0, e.pid, now) for e in written)
    final = dbfile.TicketDB(
        tickets=initial.tickets,
        remaining=remaining,
        ledger=initial.ledger + sales,
        event=initial.event,
        extra=initial.extra,  # keys ticketsim does not know are the user's: kept
    )
    dbfile.write_atomic(path, final)


def _counted(tickets: int, taken: tuple[int, ...], remaining: int) -> dbfile.TicketDB:
    """What a buyer that reads only the count sees: the count, and the seat that count
    says is next (the lowest of the seats free when the sale opened, after those sold
    since). Two buyers who read the same count take the same seat."""
    sold_since = tickets - len(taken) - remaining
    seat = dbfile.nth_free_seat(taken, sold_since) if remaining > 0 else 0
    return dbfile.Snapshot(tickets=tickets, remaining=remaining, seat=seat)


#: Seat-map cells: a free seat, a seat sold before this sale opened, else a buyer number.
FREE: Final = 0
SOLD_BEFORE: Final = -1


@dataclass(frozen=True)
class SeatMapStore(Store):
    """A seat map in a shared-memory ``multiprocessing.Array('i', tickets)``.

    Each cell holds the number of the buyer who claimed that seat. Reading the map
    (one slice) and claiming a seat (one assignment) each take the array's lock, but
    not both together: two buyers can see the same seat free and both claim it, and
    the second claim overwrites the first. The db is written once, from the map, when
    the sale is over.
    """

    seats: Any

    def read(self, record: Recorder) -> dbfile.TicketDB:
        del record
        cells = self.seats[:]
        remaining = cells.count(FREE)
        seat = cells.index(FREE) + 1 if remaining else 0  # the lowest free seat in the map
        return dbfile.Snapshot(tickets=len(cells), remaining=remaining, seat=seat)

    def peek(self, record: Recorder) -> int:
        # Bypass the array's lock: a look must never wait (its holder may be dead).
        del record
        cells: list[int] = self.seats.get_obj()[:]
        return cells.count(FREE)

    def sell(self, seen: dbfile.TicketDB, sale: dbfile.Sale) -> None:
        del seen
        self.seats[sale.seat - 1] = buyer_number(sale.buyer)

    def settle(self, path: str, initial: dbfile.TicketDB, history: Sequence[Event]) -> None:
        pids = {e.buyer: e.pid for e in history if e.step is Step.READY}
        now = time.time()
        cells = self.seats.get_obj()[:]
        sales = tuple(
            dbfile.Sale(buyer_name(owner), seat, pids.get(owner, 0), now)
            for seat, owner in enumerate(cells, start=1)
            if owner > 0
        )
        final = dbfile.TicketDB(
            tickets=initial.tickets,
            remaining=cells.count(FREE),
            ledger=initial.ledger + sales,
            event=initial.event,
            extra=initial.extra,
        )
        dbfile.write_atomic(path, final)


@dataclass(frozen=True)
class ManagerStore(Store):
    """The count and the ledger in one ``multiprocessing.Manager()`` dict.

    Every access is a round trip to the manager's server process. A sale is one
    ``update`` of the dict (the new count and the sale together), so the server applies
    all of it or none of it, even if the buyer dies right then. The db is written once,
    from the manager's copy, when the sale is over.
    """

    state: Any
    tickets: int
    #: The seats sold before the sale opened, sorted, as in :class:`CountStore`.
    taken: tuple[int, ...] = ()

    def read(self, record: Recorder) -> dbfile.TicketDB:
        del record
        return _counted(self.tickets, self.taken, self.state["remaining"])

    def sell(self, seen: dbfile.TicketDB, sale: dbfile.Sale) -> None:
        key = f"{_SALE_KEY}{sale.buyer}/{sale.seat}"
        self.state.update({"remaining": seen.remaining - 1, key: sale.to_json()})

    def settle(self, path: str, initial: dbfile.TicketDB, history: Sequence[Event]) -> None:
        try:
            state = dict(self.state.items())
        except (OSError, EOFError):
            # The manager is gone (a SIGTERM sent to the whole process group reaches it
            # too): what the buyers recorded is all there is to go on.
            written = sum(e.step is Step.WRITE for e in history)
            _settle_from_writes(path, initial, history, initial.remaining - written)
            return
        rows = [row for key, row in state.items() if key.startswith(_SALE_KEY)]
        sales = tuple(dbfile.Sale(**row) for row in sorted(rows, key=lambda r: r["time"]))
        final = dbfile.TicketDB(
            tickets=initial.tickets,
            remaining=state["remaining"],
            ledger=initial.ledger + sales,
            event=initial.event,
            extra=initial.extra,
        )
        dbfile.write_atomic(path, final)


#: Keys of the manager's dict that hold a sale (the other key is ``remaining``).
_SALE_KEY: Final = "sale/"
