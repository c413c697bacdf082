"""Stores: where the tickets live while a sale runs, and how a buyer reads and sells them.

One module per store; :class:`~ticketsim.sale.stores.base.Store` owns the protocol
(read, sell, and writing the sale back to the db when it is over). Adding a store is a
module and one line in :data:`STORES`, the stores by name; a strategy then combines it
with a guard (:mod:`ticketsim.engine.strategies`).

Buyer processes unpickle stores, so this package uses the standard library only.
"""

from __future__ import annotations

from typing import Final

from ticketsim.sale.stores.base import Seen, Store, Tally
from ticketsim.sale.stores.file import FileStore, NaiveFileStore
from ticketsim.sale.stores.manager import ManagerStore
from ticketsim.sale.stores.shared import FREE, SOLD_BEFORE, CountStore, SeatMapStore

__all__ = [
    "FREE",
    "SOLD_BEFORE",
    "STORES",
    "CountStore",
    "FileStore",
    "ManagerStore",
    "NaiveFileStore",
    "SeatMapStore",
    "Seen",
    "Store",
    "Tally",
]

#: Every store by name: the ways a strategy can keep the tickets.
STORES: Final[dict[str, type[Store]]] = {
    "file": FileStore,
    "naive-file": NaiveFileStore,
    "count": CountStore,
    "seat-map": SeatMapStore,
    "manager": ManagerStore,
}
