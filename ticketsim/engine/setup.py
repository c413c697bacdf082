"""What a strategy is given to set one sale up, in a module of its own: the database
strategies' builders (:mod:`ticketsim.engine.databases`) need it as much as the
strategies' table does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ticketsim.core.frozen import field, frozen

if TYPE_CHECKING:
    from collections.abc import Mapping
    from multiprocessing.context import BaseContext

    from ticketsim.core import db as dbfile
    from ticketsim.core.names import StoreKind


@frozen
class Setup:
    """What a strategy is given to set a sale up."""

    ctx: BaseContext
    db_path: str
    initial: dbfile.TicketDB
    buyers: int
    #: Where events go; the office records the steps it takes for each buyer.
    channel: Any
    timeout: float
    #: The user's store (``--store``), the record of the sale, for a database strategy.
    store: str | None = None
    #: Private servers already running (a search starts one for all its runs), by store.
    servers: Mapping[StoreKind, str] = field(default_factory=dict)
