"""Stores: where the tickets live while a sale runs, and how a buyer reads and sells them.

One module per store; :class:`~ticketsim.sale.stores.base.Store` owns the protocol
(read, sell, and writing the sale back to the db when it is over). Adding a store is a
module and one line in :data:`STORES`, the stores by name; a strategy then combines it
with a guard (:mod:`ticketsim.engine.strategies`).

Buyer processes unpickle stores, so this package uses the standard library only, and
imports a store's module only when that store is used: a buyer under ``spawn`` or
``forkserver`` starts by importing the one store its strategy hands it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ticketsim.sale.stores.base import Seen, Store, Tally
    from ticketsim.sale.stores.file import FileStore, NaiveFileStore
    from ticketsim.sale.stores.manager import ManagerStore
    from ticketsim.sale.stores.shared import FREE, SOLD_BEFORE, CountStore, SeatMapStore

#: The module each public name comes from.
_HOMES: Final = {
    "base": ("Seen", "Store", "Tally"),
    "file": ("FileStore", "NaiveFileStore"),
    "manager": ("ManagerStore",),
    "shared": ("FREE", "SOLD_BEFORE", "CountStore", "SeatMapStore"),
}
_HOME_OF: Final = {name: module for module, names in _HOMES.items() for name in names}


class _Registry(dict[str, "type[Store] | str"]):
    """Stores by name; an entry may be ``"module:Class"``, imported on first lookup."""

    def __getitem__(self, name: str) -> type[Store]:
        found = super().__getitem__(name)
        if isinstance(found, str):
            module, _, attribute = found.partition(":")
            found = getattr(import_module(module), attribute)
            self[name] = found
        return found


#: Every store by name: the ways a strategy can keep the tickets.
STORES: Final = _Registry(
    {
        "file": "ticketsim.sale.stores.file:FileStore",
        "naive-file": "ticketsim.sale.stores.file:NaiveFileStore",
        "count": "ticketsim.sale.stores.shared:CountStore",
        "seat-map": "ticketsim.sale.stores.shared:SeatMapStore",
        "manager": "ticketsim.sale.stores.manager:ManagerStore",
        "module-global": "ticketsim.sale.stores.module_global:GlobalCounterStore",
        # The databases' (a StoreKind's value): each imports its client when it connects.
        "sqlite": "ticketsim.sale.stores.sqlite:SqliteStore",
        "postgres": "ticketsim.sale.stores.postgres:PostgresStore",
        "redis": "ticketsim.sale.stores.redis:RedisStore",
    }
)


if not TYPE_CHECKING:  # type checkers see the imports above, and no catch-all

    def __getattr__(name: str) -> Any:
        module = _HOME_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(f"{__name__}.{module}"), name)
        globals()[name] = value  # once is enough
        return value


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
