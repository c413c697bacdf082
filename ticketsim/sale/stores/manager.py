"""A store in a ``multiprocessing.Manager()`` dict, written to the db once the sale is over.

Buyer processes unpickle it, so this module uses the standard library only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ticketsim.core import db as dbfile
from ticketsim.core.events import Step
from ticketsim.core.frozen import frozen
from ticketsim.sale.stores.base import Store, Tally, sales_written
from ticketsim.sale.stores.shared import counted

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ticketsim.core.events import Event, Recorder
    from ticketsim.sale.stores.base import Seen

#: Keys of the manager's dict that hold a sale (the other key is ``remaining``).
_SALE_KEY: Final = "sale/"


@frozen
class ManagerStore(Store):
    """The count and the ledger in one ``multiprocessing.Manager()`` dict.

    Every access is a round trip to the manager's server process. A sale is one
    ``update`` of the dict (the new count and the sale together), so the server applies
    all of it or none of it, even if the buyer dies right then. The db is written once,
    from the manager's copy, when the sale is over.
    """

    state: Any
    tickets: int
    #: The seats sold before the sale opened, sorted, as in
    #: :class:`~ticketsim.sale.stores.shared.CountStore`.
    taken: tuple[int, ...] = ()

    def read(self, record: Recorder) -> Seen:
        del record
        return counted(self.tickets, self.taken, self.state["remaining"])

    def sell(self, seen: Seen, sale: dbfile.Sale) -> None:
        key = f"{_SALE_KEY}{sale.buyer}/{sale.seat}"
        self.state.update({"remaining": seen.remaining - 1, key: sale.to_json()})

    def tally(self, initial: dbfile.TicketDB, history: Sequence[Event]) -> Tally:
        try:
            state = dict(self.state.items())
        except (OSError, EOFError):
            # The manager is gone (a SIGTERM sent to the whole process group reaches it
            # too): what the buyers recorded is all there is to go on.
            written = sum(e.step is Step.WRITE for e in history)
            return Tally(initial.remaining - written, sales_written(history))
        rows = [row for key, row in state.items() if key.startswith(_SALE_KEY)]
        sales = tuple(dbfile.Sale(**row) for row in sorted(rows, key=lambda r: r["time"]))
        return Tally(state["remaining"], sales)
