"""The store protocol: what a buyer reads and sells through, and how the parent writes
the sale back to the db once it is over.

Buyer processes unpickle stores, so this module uses the standard library only.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, NamedTuple

from ticketsim.core import db as dbfile
from ticketsim.core.events import Step
from ticketsim.core.frozen import frozen
from ticketsim.errors import DbError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from ticketsim.core.events import Event, Recorder


@frozen(slots=True)
class Seen:
    """What one buyer's read saw: the tickets put on sale, how many are left, and the
    seat a buyer who read this takes (0 when none is left). Two buyers who saw the
    same take the same seat: that is the race."""

    tickets: int
    remaining: int
    seat: int


class Tally(NamedTuple):
    """What an in-memory store sold, for the parent to write to the db."""

    remaining: int
    #: The sales made during this sale, in the order they go in the ledger.
    sales: tuple[dbfile.Sale, ...]


class Store(ABC):
    """Where the tickets live while the sale runs.

    A new store subclasses this in a module of its own and adds one line to
    :data:`ticketsim.sale.stores.STORES`: it reads and sells, and if the db file is
    not written with every sale, says in :meth:`tally` what the sale left behind.
    """

    @abstractmethod
    def read(self, record: Recorder) -> Seen:
        """The state as this buyer sees it now."""

    def prepare(self) -> None:
        """Called in the buyer's process before the sale opens: do the one-off work of a
        first read and write there, not inside the critical section. Never changes the db."""
        return  # most stores keep nothing per process

    @contextlib.contextmanager
    def rehearsal(self) -> Iterator[Store | None]:
        """In the buyer's process before the sale opens: a copy of this store that sells
        one ticket without touching the sale's state, for the buyer to make a whole
        purchase on (on keys of its own, removed once the context ends; or with
        statements that name no table); ``None`` where the store has no such copy.

        A buyer's first purchase runs code and touches memory it shares with ticketsim
        for the first time (each page it writes is copied then): that cost a buyer
        several times what a warm purchase does, and it belongs before the sale opens,
        not inside it (:meth:`ticketsim.sale.steps.Tools.rehearse`).
        """
        yield None

    def peek(self, record: Recorder) -> int:
        """The remaining count, looked at without any protection (the ``check`` step)."""
        return self.read(record).remaining

    @abstractmethod
    def sell(self, seen: Seen, sale: dbfile.Sale) -> None:
        """Record ``sale``, made on the strength of having read ``seen``."""

    def tidy(self) -> None:
        """Called in the buyer once it has let go of its lock (or the ticket office has
        answered): what a sale left to do that need not keep the others waiting."""
        return  # most stores leave nothing

    def tally(self, initial: dbfile.TicketDB, history: Sequence[Event]) -> Tally | None:
        """In the parent, after the sale: the remaining count and the sales made, or
        ``None`` when the db file already holds them (it was written with every sale).

        Shared memory is read here without its lock (``get_obj()``): every buyer has
        exited, and one that was killed holding the lock would otherwise hang the parent.
        """
        del initial, history
        return None

    def final(self, path: str) -> tuple[dbfile.TicketDB | None, str | None]:
        """In the parent, after :meth:`write_back`: the state the sale left, for the
        checker, or why it cannot be read (a finding, not an error)."""
        try:
            return dbfile.load(path), None
        except DbError as exc:
            return None, exc.reason

    def write_back(
        self, path: str, initial: dbfile.TicketDB, history: Sequence[Event]
    ) -> str | None:
        """In the parent, after the sale: bring the db file at ``path`` up to date.
        Returns why nobody can know the state the sale left (its store is gone), if so."""
        tally = self.tally(initial, history)
        if tally is None:
            return None
        final = dbfile.TicketDB(
            tickets=initial.tickets,
            remaining=tally.remaining,
            ledger=initial.ledger + tally.sales,
            event=initial.event,
            extra=initial.extra,  # keys ticketsim does not know are the user's: kept
        )
        dbfile.write_atomic(path, final)
        return None


def sales_written(history: Sequence[Event]) -> tuple[dbfile.Sale, ...]:
    """The sales the buyers recorded: their ``write`` events, each recorded right after
    its sale (a buyer killed after its write, before its outcome, still made its sale)."""
    now = time.time()
    written = sorted((e for e in history if e.step is Step.WRITE), key=lambda e: e.t)
    return tuple(dbfile.Sale(e.name, e.seat or 0, e.pid, now) for e in written)
