"""The database strategies' parts: a store in SQLite, PostgreSQL or Redis, where it
lives for one sale, and what a buyer runs against it.

Without ``--store`` a database strategy sells from a copy of the db file: a SQLite
file beside it, or a private server started for the sale (or for a whole search) and
removed with it. With ``--store`` the user's store is the record of the sale.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, cast

from ticketsim.core import paths, stores
from ticketsim.core.frozen import frozen
from ticketsim.core.names import StoreKind, StrategyName
from ticketsim.errors import ServerUnavailable
from ticketsim.sale.guards import NoGuard
from ticketsim.sale.steps import GuardedTools
from ticketsim.sale.stores import STORES
from ticketsim.sale.stores.database import NO_ROOM_ADVICE

if TYPE_CHECKING:
    import os
    from collections.abc import Iterator

    from ticketsim.core import db as dbfile
    from ticketsim.engine.setup import Setup
    from ticketsim.sale.steps import Tools
    from ticketsim.sale.stores.database import DatabaseStore
    from ticketsim.servers import Server


@frozen
class Plan:
    """One database strategy: its store, the transaction it runs (``None``: the naive
    statements, no transaction), and whether a refused one is tried again."""

    store: StoreKind
    plan: str | None
    retry: bool = True


_S, _P, _R = StoreKind.SQLITE, StoreKind.POSTGRES, StoreKind.REDIS
PLANS: Final = {
    StrategyName.SQLITE_NAIVE: Plan(_S, None),
    StrategyName.SQLITE_DEFERRED: Plan(_S, "deferred"),
    StrategyName.SQLITE_IMMEDIATE: Plan(_S, "immediate"),
    StrategyName.SQLITE_UPDATE: Plan(_S, "update"),
    StrategyName.PG_NAIVE: Plan(_P, None),
    StrategyName.PG_UPDATE: Plan(_P, "update"),
    StrategyName.PG_FOR_UPDATE: Plan(_P, "for-update"),
    StrategyName.PG_ADVISORY: Plan(_P, "advisory"),
    StrategyName.PG_REPEATABLE_READ: Plan(_P, "repeatable-read", retry=False),
    StrategyName.PG_SERIALIZABLE: Plan(_P, "serializable"),
    StrategyName.PG_WRITE_SKEW: Plan(_P, "write-skew"),
    StrategyName.PG_LEDGER_SERIALIZABLE: Plan(_P, "ledger-serializable"),
    StrategyName.PG_SKIP_LOCKED: Plan(_P, "skip-locked"),
    StrategyName.PG_UNIQUE: Plan(_P, "unique"),
    StrategyName.PG_OPTIMISTIC: Plan(_P, "optimistic"),
    StrategyName.REDIS_NAIVE: Plan(_R, None),
    StrategyName.REDIS_DECR: Plan(_R, "decr"),
    StrategyName.REDIS_WATCH: Plan(_R, "watch"),
    StrategyName.REDIS_LUA: Plan(_R, "lua"),
    StrategyName.REDIS_LOCK: Plan(_R, "lock"),
    StrategyName.REDIS_FENCED: Plan(_R, "fenced"),
}


def make_store(
    kind: StoreKind,
    location: str,
    *,
    plan: str | None = None,
    initial: dbfile.TicketDB | None = None,
    detached: bool = False,
) -> DatabaseStore:
    """The store of ``kind`` at ``location`` (a SQLite file's path, or a server's URL)."""
    if kind is StoreKind.FILE:
        raise ValueError(f"kind={kind!r} is not a database store")
    taken = tuple(sorted(s.seat for s in initial.ledger)) if initial is not None else ()
    tickets = initial.tickets if initial is not None else 0
    store = STORES[kind.value](  # type: ignore[call-arg]
        location, plan=plan, taken=taken, tickets=tickets, detached=detached
    )
    return cast("DatabaseStore", store)


def vet_sqlite_beside(db_path: str | os.PathLike[str]) -> None:
    """Refuse (:class:`StoreError`) the SQLite file beside the db when a SQLite strategy
    could not use it (anything but a SQLite db ticketsim made), before anything is
    written: a command refused must leave the db as it was."""
    from ticketsim.sale.stores.sqlite import SqliteStore  # noqa: PLC0415 - SQLite's only

    SqliteStore(str(stores.sqlite_beside(db_path))).vet()


def user_store(
    url: str,
    initial: dbfile.TicketDB | None = None,
    *,
    reads_only: bool = False,
    strategy: str | None = None,
) -> DatabaseStore:
    """The user's ``--store``, the record of its sales; a SQLite path that names anything
    but a regular file (a FIFO would hang its read) is refused (:class:`PathError`).
    ``reads_only``: the command only reads it (``show``, ``check``), so a missing file
    is said to be missing, wherever its folder is. ``strategy``: the database strategy
    about to sell there, whose plan the store is loaded for (a PostgreSQL sale records
    whether its count is a column, the ledger's length or the free seats)."""
    parsed = stores.parse(url)
    if parsed.kind is StoreKind.SQLITE and reads_only:
        missing = "make it with 'ticketsim reset --store'"
        paths.vet(paths.Use("--store", parsed.location, missing=missing, writes=False))
    elif parsed.kind is StoreKind.SQLITE:
        paths.vet(paths.sqlite(parsed.location))
    chosen = PLANS.get(StrategyName(strategy)) if strategy in PLANS else None
    plan = chosen.plan if chosen is not None else None
    return make_store(parsed.kind, parsed.location, plan=plan, initial=initial, detached=True)


def require_room(store: DatabaseStore, needed: int, shown: str, advice: str | None = None) -> None:
    """Refuse (:class:`ServerUnavailable`) a sale on the user's server that has no room
    for ``needed`` more clients, before anything is written there: its buyers would
    be turned away one by one as they connect, and the sale end with them unfinished.
    ``advice`` says what the command at hand can do about it (``None``: a sale on one
    machine's, :data:`NO_ROOM_ADVICE`)."""
    room = store.room()
    if room is not None and room.free < needed:
        raise ServerUnavailable(
            shown,
            f"{room.limit}, so {max(0, room.free)} more can connect; this sale's buyers "
            f"need {needed} at once",
            advice or NO_ROOM_ADVICE,
        )


def _server(kind: StoreKind) -> Server[Any]:
    from ticketsim.servers import PostgresServer, RedisServer  # noqa: PLC0415 - servers only

    return PostgresServer() if kind is StoreKind.POSTGRES else RedisServer()


class PrivateServers(Mapping[StoreKind, str]):
    """Throwaway servers for many sales (a search, a comparison, a test session): each
    started the first time a sale asks for its store, all stopped by :meth:`stop` (or
    at the end of a ``with``): a search that started a server per schedule would spend
    its time starting servers."""

    def __init__(self) -> None:
        self._servers: dict[StoreKind, Server[Any]] = {}
        self._urls: dict[StoreKind, str] = {}

    def __getitem__(self, kind: StoreKind) -> str:
        if kind not in (StoreKind.POSTGRES, StoreKind.REDIS):
            raise KeyError(kind)
        if kind not in self._urls:
            server = self._servers[kind] = _server(kind)
            self._urls[kind] = server.start().url
        return self._urls[kind]

    def __iter__(self) -> Iterator[StoreKind]:
        return iter(self._urls)

    def __len__(self) -> int:
        return len(self._urls)

    def running(self) -> dict[StoreKind, Server[Any]]:
        """The servers started so far, by store."""
        return dict(self._servers)

    def stop(self) -> None:
        try:
            for server in self._servers.values():
                server.stop()
        finally:
            self._servers.clear()
            self._urls.clear()

    def __enter__(self) -> PrivateServers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def _location(kind: StoreKind, setup: Setup) -> Iterator[tuple[str, bool]]:
    """Where the sale's store is, and whether it is the user's (the record)."""
    if setup.store is not None:
        yield stores.parse(setup.store).location, True
    elif kind is StoreKind.SQLITE:
        yield str(stores.sqlite_beside(setup.db_path)), False
    else:
        yield setup.servers[kind], False


@contextlib.contextmanager
def provide(name: StrategyName, setup: Setup) -> Iterator[Tools]:
    """The buyers' tools of database strategy ``name``, its store filled for the sale."""
    from ticketsim.sale.transaction import TransactionTools  # noqa: PLC0415

    plan = PLANS[name]
    with _location(plan.store, setup) as (location, detached):
        store = make_store(
            plan.store, location, plan=plan.plan, initial=setup.initial, detached=detached
        )
        if not detached:
            store.load(setup.initial)
        try:
            if plan.plan is None:
                yield GuardedTools(store, NoGuard())
            else:
                yield TransactionTools(store, plan.retry)
        finally:
            store.close()
