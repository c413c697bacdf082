"""The protocol of a store in a real database (SQLite, PostgreSQL, Redis): one
attempt of a strategy's transaction in a buyer, and its tables or keys in the parent.

:class:`ticketsim.sale.transaction.TransactionTools` drives an attempt: its retries,
its pacing and the steps they record; a store module says only which statements one
attempt sends, given a :class:`Purchase`.

Buyer processes unpickle these stores, so this module uses the standard library only.
"""

from __future__ import annotations

import contextlib
import os
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from ticketsim.core import db as dbfile
from ticketsim.core.frozen import frozen, replace
from ticketsim.errors import DbError, ServerUnavailable, StoreError
from ticketsim.sale.stores.base import Store

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from ticketsim.core.db import Sale, TicketDB
    from ticketsim.core.events import Event, Recorder

C = TypeVar("C")


class Purchase(Protocol):
    """What one attempt of a purchase gives a store's statements
    (:class:`ticketsim.sale.transaction.Attempt`)."""

    record: Recorder
    #: Whether the attempt holds a lock it must record letting go of.
    holding: bool

    @property
    def buyer(self) -> int:
        """The buyer's number."""

    @property
    def patience(self) -> float: ...

    def pace(self) -> None: ...

    def decide(self, remaining: int) -> bool: ...

    def sale(self, seat: int) -> Sale: ...

    def lock(self, what: str, take: Callable[[float], bool]) -> None: ...

    def unlocked(self) -> None: ...


#: What to do when a server has no room for the sale's buyers.
NO_ROOM_ADVICE = "raise that limit, lower --buyers, or run the buyers on a few processes (--pool N)"


@frozen
class Room:
    """How many more clients a server lets connect now, and the limit that says so."""

    free: int
    #: The limit and its use, in words: ``maxclients is 8 and 7 are connected``.
    limit: str


class DatabaseStore(Store):
    """A store in a real database: SQLite, PostgreSQL or Redis.

    A subclass reaches its database from each buyer process (one connection per
    process, made by :meth:`prepare`), and says what one attempt of its strategy
    sends (:meth:`attempt`), raising :class:`Conflict` when the database refuses it.
    Its :meth:`read` and :meth:`sell` are the unprotected ones, statement by statement
    with no transaction, which is what the naive strategies run.
    """

    @abstractmethod
    def attempt(self, attempt: Purchase) -> int | None:
        """One attempt of this store's strategy: the seat sold, ``None`` if none was
        left, or :class:`Conflict` when the database refused (nothing of it stays)."""

    def close(self) -> None:
        """Close this process's connection, if it made one (the parent, when it bought
        in its own process)."""
        connection = getattr(self, "_connection", None)
        if isinstance(connection, ProcessConnection):
            connection.close()

    @abstractmethod
    def abandon(self) -> None:
        """End whatever transaction an attempt left open, undoing it; never raises for a
        connection that is already gone."""

    def _in_transaction(self, db: Any) -> bool:
        """Whether connection ``db`` is inside a transaction (a SQL store says how)."""
        del db
        return False

    def _rehearsal_copy(self) -> DatabaseStore | None:
        """This store as a rehearsal's (:meth:`rehearsal`): the SQL stores swap their
        statements for ones that name no table; ``None`` where there is no such copy."""
        return None

    @contextlib.contextmanager
    def rehearsal(self) -> Iterator[Store | None]:
        """:meth:`_rehearsal_copy`; once the rehearsal ends, a transaction a failed
        purchase left open on this process's connection is undone (a connection the
        purchase dropped as broken is not made again for that)."""
        try:
            yield self._rehearsal_copy()
        finally:
            connection = getattr(self, "_connection", None)
            db = connection.current() if isinstance(connection, ProcessConnection) else None
            if db is not None and self._in_transaction(db):
                self.abandon()

    # In the parent, before and after the sale: each opens a connection of its own.

    def room(self) -> Room | None:
        """How many more clients the server takes now; ``None`` where it does not say
        (SQLite has no clients to count; a managed server may keep its settings)."""
        return None

    @abstractmethod
    def load(self, initial: TicketDB) -> None:
        """Make this store's tables or keys, and put ``initial`` in them. Touches only
        what ticketsim made; :class:`StoreError` for a store that holds someone else's."""

    @abstractmethod
    def snapshot(self) -> TicketDB:
        """The tickets, remaining count and ledger the store holds now."""

    def keep(self, kept: TicketDB) -> None:
        """Ready the sale the store holds (``kept``, its :meth:`snapshot`) for this
        store's strategy, changing none of it: a store that records how its count is
        kept (PostgreSQL) takes the strategy's way."""
        del kept

    #: Whether the store is the record of the sale (the user's ``--store``), rather
    #: than a copy of the db file that is written back to it when the sale is over.
    detached: bool = False

    def final(self, path: str) -> tuple[TicketDB | None, str | None]:
        """The state after the sale, for the checker, or why it cannot be read. The
        user's store that is down is :class:`ServerUnavailable`: its state is unknown,
        not lost (it may come back with every sale); a copy's is the db file's."""
        if not self.detached:
            return super().final(path)
        try:
            return self.snapshot(), None
        except StoreError as exc:
            return None, str(exc)

    def write_back(self, path: str, initial: TicketDB, history: Sequence[Event]) -> str | None:
        """The db file takes the store's state (not with ``detached``: the store is the
        record). A copy whose server went away leaves the db file as the sale opened it,
        and what the sale left is unknown: the sales made there went with the server,
        which is no lost update of the buyers' making."""
        del history
        if self.detached:
            return None
        try:
            final = self.snapshot()
        except ServerUnavailable as exc:
            return f"the sale's server went away before its sales were read back ({exc.problem})"
        dbfile.write_atomic(path, replace(final, event=initial.event, extra=initial.extra))
        return None


def damaged(shown: str, what: str) -> StoreError:
    """A store of ticketsim's whose sale is no longer one (a row or table gone, a count
    that is no number): the user's to reset, not a fault of the machine or a bug."""
    return StoreError(
        shown,
        f"holds a sale ticketsim cannot read ({what})",
        "reset it with 'ticketsim reset --store'",
    )


def sale_of(
    shown: str,
    tickets: object,
    remaining: object,
    event: object,
    ledger: Iterable[tuple[object, object, object, object]],
) -> TicketDB:
    """The sale a store's values make, checked as a db file is (one place says what a
    db holds: :func:`ticketsim.core.db.from_values`); :func:`damaged` if it is none."""
    try:
        return dbfile.from_values(shown, tickets, remaining, event, ledger)
    except DbError as exc:
        raise damaged(shown, exc.problem) from None


class ProcessConnection(Generic[C]):
    """This process's connection to a store's database, made on first use.

    Each buyer process needs its own: a connection inherited across a fork shares its
    socket with the parent's. Never shared: a pickled one arrives empty, and a forked
    copy is ignored (not closed, which would close the parent's socket too).
    """

    __slots__ = ("_connection", "_pid")

    def __init__(self) -> None:
        self._connection: C | None = None
        self._pid = 0

    def __reduce__(self) -> tuple[type[ProcessConnection[C]], tuple[()]]:
        return ProcessConnection, ()

    def get(self, connect: Callable[[], C]) -> C:
        if self._connection is None or self._pid != os.getpid():
            self._connection, self._pid = connect(), os.getpid()
        return self._connection

    def current(self) -> C | None:
        """This process's connection, ``None`` if it has not made one (none is made)."""
        return self._connection if self._pid == os.getpid() else None

    def close(self) -> None:
        """Close this process's connection, if it made one; never raises."""
        made = self.drop()
        if made is not None:
            with contextlib.suppress(Exception):
                made.close()  # type: ignore[attr-defined]

    def drop(self) -> C | None:
        """Forget this process's connection (to close it); ``None`` if it has none."""
        connection, self._connection = self._connection, None
        return connection if self._pid == os.getpid() else None
