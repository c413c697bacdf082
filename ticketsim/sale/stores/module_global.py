"""The tutorials' global counter: the remaining count in a variable of this module.

``remaining`` is what a script's top-level ``count = 10`` is. A buyer process gets a
copy of the module (forked with the parent's memory, or imported again under spawn),
so each buyer process sells from a count of its own; buyer threads share the one
module, and race on it.

Buyer processes unpickle this store, so this module uses the standard library only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ticketsim.core.frozen import frozen
from ticketsim.sale.stores.base import Seen, Store, Tally, sales_written
from ticketsim.sale.stores.shared import counted

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ticketsim.core import db as dbfile
    from ticketsim.core.events import Event, Recorder

#: The count, as a module-level variable; ``None`` until this process's module has one.
remaining: int | None = None


def open_sale(count: int) -> None:
    """In the parent, as a sale opens: the module's count is ``count`` (a forked buyer
    inherits it; a spawned one, re-importing the module, sets its own in ``prepare``)."""
    global remaining  # noqa: PLW0603 - the module-level variable is the lesson
    remaining = count


@frozen
class GlobalCounterStore(Store):
    """Reads and sells the module's ``remaining``; the sales themselves are the buyers'
    ``write`` events, which the parent writes to the db once the sale is over."""

    tickets: int
    #: The count the sale opened with: what a spawned buyer's fresh module starts at.
    initial: int
    taken: tuple[int, ...] = ()

    def prepare(self) -> None:
        if remaining is None:  # a module imported afresh, as a spawned buyer's is
            open_sale(self.initial)

    def read(self, record: Recorder) -> Seen:
        del record
        return counted(self.tickets, self.taken, _now())

    def sell(self, seen: Seen, sale: dbfile.Sale) -> None:
        del sale
        # 'remaining -= 1' as two steps, with the decision's read first: the race.
        open_sale(seen.remaining - 1)

    def tally(self, initial: dbfile.TicketDB, history: Sequence[Event]) -> Tally:
        del initial
        # The parent's own copy: with buyer processes, one no buyer ever touched.
        return Tally(_now(), sales_written(history))


def _now() -> int:
    if remaining is None:
        raise RuntimeError("the module's count was never set: open_sale first")
    return remaining
