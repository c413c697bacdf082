"""A purchase as a database transaction: the statements a strategy sends, the
refusals it retries, and the steps all of it records.

A database store (:class:`DatabaseStore`) says, for each of its strategies, which
statements one attempt sends (:meth:`DatabaseStore.attempt`); :class:`TransactionTools`
owns what every strategy shares: calling the pacer once per purchase whatever the
retries, the race window, the retry loop and its bound, and letting go of a lock the
attempt took. The buyer (:mod:`ticketsim.sale.buyer`) does not know any of it.

Buyer processes unpickle these, so this module uses the standard library only.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from abc import abstractmethod
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from ticketsim.core import db as dbfile
from ticketsim.core.db import Sale
from ticketsim.core.events import Step, buyer_name
from ticketsim.errors import Conflict, GuardTimeout, StoreError
from ticketsim.sale.steps import Tools
from ticketsim.sale.stores.base import Store

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ticketsim.core.db import TicketDB
    from ticketsim.core.events import Event, Recorder
    from ticketsim.sale.steps import BuyerSpec, Pacer

C = TypeVar("C")

#: The longest pause between two attempts. Retrying at once lets the same buyers
#: collide again; a short random pause spreads them out.
MAX_BACKOFF_S: Final = 0.005


@dataclass
class Attempt:
    """One attempt at a purchase: what a store's statements need from the buyer."""

    spec: BuyerSpec
    pid: int
    record: Recorder
    pacer: Pacer
    #: 0 for the first attempt; a retry is not paced again (see :meth:`decide`).
    number: int = 0
    #: Whether the attempt holds a lock it must record letting go of.
    holding: bool = field(default=False, init=False)

    @property
    def patience(self) -> float:
        """How long a statement may wait for a lock another buyer holds."""
        return self.pacer.patience(self.spec.timeout)

    def pace(self) -> None:
        """Where a forced interleaving holds the buyer, right after its read: on the
        first attempt only, so that the pacer sees one purchase, whatever it costs."""
        if self.number == 0:
            self.pacer.after_read(self.spec.number, self.spec.timeout)

    def decide(self, remaining: int) -> bool:
        """After the read: pace, then the race window; ``False`` when none is left."""
        self.pace()
        if remaining <= 0:
            return False
        if self.spec.window:
            time.sleep(self.spec.window)
        return True

    def sale(self, seat: int) -> Sale:
        return Sale(buyer_name(self.spec.number), seat, self.pid, time.time())

    def lock(self, what: str, take: Callable[[float], bool]) -> None:
        """Wait for a lock with ``take(patience)``, recording the wait and the entry;
        :class:`GuardTimeout` when ``patience`` was not enough."""
        self.record(Step.WAIT, note=what)
        if not take(self.patience):
            raise GuardTimeout(what, self.patience)
        self.holding = True
        self.record(Step.ENTER)

    def unlocked(self) -> None:
        """Record that the lock this attempt took goes, just before the statement that
        lets it go (a COMMIT, a ROLLBACK, a DEL): recorded after it, the next holder's
        entry could come first in the history."""
        if self.holding:
            self.holding = False
            self.record(Step.LEAVE)


class DatabaseStore(Store):
    """A store in a real database: SQLite, PostgreSQL or Redis.

    A subclass reaches its database from each buyer process (one connection per
    process, made by :meth:`prepare`), and says what one attempt of its strategy
    sends (:meth:`attempt`), raising :class:`Conflict` when the database refuses it.
    Its :meth:`read` and :meth:`sell` are the unprotected ones, statement by statement
    with no transaction, which is what the naive strategies run.
    """

    @abstractmethod
    def attempt(self, attempt: Attempt) -> int | None:
        """One attempt of this store's strategy: the seat sold, ``None`` if none was
        left, or :class:`Conflict` when the database refused (nothing of it stays)."""

    def close(self) -> None:
        """Close this process's connection, if it made one (the parent, when it bought
        in its own process)."""
        connection = getattr(self, "_connection", None)
        made = connection.drop() if isinstance(connection, ProcessConnection) else None
        if made is not None:
            with contextlib.suppress(Exception):
                made.close()

    @abstractmethod
    def abandon(self) -> None:
        """End whatever transaction an attempt left open, undoing it; never raises for a
        connection that is already gone."""

    # In the parent, before and after the sale: each opens a connection of its own.

    @abstractmethod
    def load(self, initial: TicketDB) -> None:
        """Make this store's tables or keys, and put ``initial`` in them. Touches only
        what ticketsim made; :class:`StoreError` for a store that holds someone else's."""

    @abstractmethod
    def snapshot(self) -> TicketDB:
        """The tickets, remaining count and ledger the store holds now."""

    #: Whether the store is the record of the sale (the user's ``--store``), rather
    #: than a copy of the db file that is written back to it when the sale is over.
    detached: bool = False

    def final(self, path: str) -> tuple[TicketDB | None, str | None]:
        """The state after the sale, for the checker, or why it cannot be read."""
        if not self.detached:
            return super().final(path)
        try:
            return self.snapshot(), None
        except (OSError, StoreError) as exc:
            return None, str(exc)

    def write_back(self, path: str, initial: TicketDB, history: Sequence[Event]) -> None:
        """The db file takes the store's state (not with ``detached``: the store is the
        record). A store that cannot be read leaves the db as the sale opened it."""
        del history
        if self.detached:
            return
        final = self.snapshot()
        dbfile.write_atomic(path, replace(final, event=initial.event, extra=initial.extra))


@dataclass(frozen=True)
class TransactionTools(Tools):
    """A buyer buys in one transaction of its store's; a refused one is tried again
    from the top when ``retry`` says so, and is otherwise the buyer's ``fail``."""

    store: DatabaseStore
    retry: bool = True

    def purchase(self, spec: BuyerSpec, pid: int, record: Recorder, pacer: Pacer) -> int | None:
        deadline = time.monotonic() + spec.timeout
        backoff = random.Random(f"{spec.number}/retry")
        number = 0
        try:
            while True:
                attempt = Attempt(spec, pid, record, pacer, number)
                try:
                    seat = self.store.attempt(attempt)
                except Conflict as exc:
                    attempt.unlocked()
                    self.store.abandon()
                    if not self.retry:
                        raise
                    record(Step.RETRY, note=exc.why, error=type(exc).__name__)
                except BaseException:
                    attempt.unlocked()
                    self.store.abandon()
                    raise
                else:
                    attempt.unlocked()
                    return seat
                number += 1
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"still refused after {number} attempts in {spec.timeout:g} s"
                    )
                time.sleep(backoff.uniform(0, MAX_BACKOFF_S))
        finally:
            pacer.done(spec.number)


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

    def drop(self) -> C | None:
        """Forget this process's connection (to close it); ``None`` if it has none."""
        connection, self._connection = self._connection, None
        return connection if self._pid == os.getpid() else None
