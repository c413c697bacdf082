"""The tickets in a SQLite file: its locks, ``SQLITE_BUSY``, and atomic statements.

The file is ticketsim's own (it refuses one that holds anything else), in WAL mode:
readers never wait for the writer, and a deferred transaction whose snapshot went stale
is refused when it tries to write (``SQLITE_BUSY_SNAPSHOT``) rather than waiting.

Buyer processes unpickle this store, so this module uses the standard library only.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
from typing import TYPE_CHECKING, Any, Final

from ticketsim.core._files import kind, open_regular
from ticketsim.core.events import Step
from ticketsim.core.frozen import field, frozen, replace
from ticketsim.core.stores import SQLITE_SIDES
from ticketsim.errors import (
    Conflict,
    GuardTimeout,
    ServerUnavailable,
    StoreError,
    SystemRefused,
)
from ticketsim.sale.stores.database import DatabaseStore, ProcessConnection, damaged, sale_of
from ticketsim.sale.stores.shared import counted

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ticketsim.core import db as dbfile
    from ticketsim.core.events import Recorder
    from ticketsim.sale.stores.base import Seen
    from ticketsim.sale.stores.database import Purchase

#: The tables ticketsim makes, and nothing else may be in the file.
TABLES: Final = ("meta", "sale", "ledger")
_SCHEMA: Final = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE sale (id INTEGER PRIMARY KEY CHECK (id = 1), tickets INTEGER NOT NULL,"
    " remaining INTEGER NOT NULL, event TEXT NOT NULL)",
    "CREATE TABLE ledger (n INTEGER PRIMARY KEY, seat INTEGER NOT NULL, buyer TEXT NOT NULL,"
    " pid INTEGER NOT NULL, at REAL NOT NULL)",
)
MADE_BY: Final = ("made-by", "ticketsim")
_HEADER: Final = b"SQLite format 3\x00"


@frozen(slots=True)
class Statements:
    """The SQL a purchase sends: the sale's (:data:`SALE`), or a buyer's rehearsal's
    (:data:`REHEARSAL`)."""

    read: str
    write: str
    ledger: str
    update: str
    #: How the ``immediate`` strategy's transaction begins.
    immediate: str


SALE: Final = Statements(
    read="SELECT remaining FROM sale",
    write="UPDATE sale SET remaining = ?",
    ledger="INSERT INTO ledger (seat, buyer, pid, at) VALUES (?, ?, ?, ?)",
    update="UPDATE sale SET remaining = remaining - 1 WHERE remaining > 0 RETURNING remaining",
    immediate="BEGIN IMMEDIATE",
)
#: A rehearsal's: each statement takes the sale's parameters and answers as the sale's
#: does when one ticket is left, on no table at all, so that a rehearsal warms the
#: buyer's side of a purchase (ticketsim's code and sqlite3's) and takes no lock of the
#: file: not even its immediate transaction, which begins deferred (BEGIN IMMEDIATE
#: takes the file's write lock, which every other buyer, and another program, waits for).
REHEARSAL: Final = Statements(
    read="SELECT 1",
    write="SELECT ?",
    ledger="SELECT ?, ?, ?, ?",
    update="SELECT 0",  # the count it left
    immediate="BEGIN",
)

#: How long a naive statement waits for the write lock.
NAIVE_WAIT_S: Final = 30.0
#: How long the parent waits for the write lock to load or read the file.
ADMIN_WAIT_S: Final = 10.0
#: What each transactional strategy begins with.
PLANS: Final = {"deferred": "BEGIN DEFERRED", "immediate": "BEGIN IMMEDIATE", "update": "BEGIN"}


def _busy(exc: sqlite3.Error) -> bool:
    return _code(exc).startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def _code(exc: sqlite3.Error) -> str:
    """SQLite's name for the error (``SQLITE_BUSY_SNAPSHOT``), from Python 3.11 on."""
    return str(getattr(exc, "sqlite_errorname", "") or "SQLITE_ERROR")


def _fetched(db: sqlite3.Connection, sql: str, into: list[Any]) -> bool:
    """Run ``sql`` (which waits for the write lock), keeping its row."""
    into.append(db.execute(sql).fetchone())
    return True


@frozen
class SqliteStore(DatabaseStore):
    """The sale in the SQLite file at ``path``; ``plan`` is the strategy's transaction
    (a key of :data:`PLANS`), ``None`` for the naive one's bare statements."""

    path: str
    plan: str | None = None
    #: The seats sold before the sale opened, sorted (``--keep``).
    taken: tuple[int, ...] = ()
    #: The tickets put on sale, known when the sale opens.
    tickets: int = 0
    detached: bool = False
    _connection: ProcessConnection[sqlite3.Connection] = field(
        default_factory=ProcessConnection, compare=False, repr=False
    )
    #: The busy_timeout this process's connection has (-1: not set by a transaction).
    _waits: list[int] = field(default_factory=lambda: [-1], compare=False, repr=False)
    #: Whether this copy is a buyer's rehearsal (:meth:`rehearsal`), whose statements
    #: name no table.
    rehearsing: bool = False

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no transaction unless a statement begins one. The naive
        # statements wait for the write lock as a plain program would; each transaction
        # sets its own wait (busy_timeout) as it begins.
        self._waits[0] = -1  # a new connection has the default wait
        return sqlite3.connect(self.path, timeout=NAIVE_WAIT_S, isolation_level=None)

    @property
    def sql(self) -> Statements:
        """The statements of a purchase: the sale's, or a rehearsal's."""
        return REHEARSAL if self.rehearsing else SALE

    @property
    def db(self) -> sqlite3.Connection:
        return self._connection.get(self._connect)

    def _wait(self, seconds: float) -> None:
        ms = int(seconds * 1000)
        if self._waits[0] != ms:  # a statement saved per attempt, once it is set
            self.db.execute(f"PRAGMA busy_timeout = {ms}")
            self._waits[0] = ms

    def prepare(self) -> None:
        self.db.execute(self.sql.read).fetchone()

    def _rehearsal_copy(self) -> DatabaseStore:
        return replace(self, rehearsing=True, tickets=1, taken=())

    def _in_transaction(self, db: sqlite3.Connection) -> bool:
        return db.in_transaction

    def read(self, record: Recorder) -> Seen:
        del record
        (remaining,) = self.db.execute(self.sql.read).fetchone()
        return counted(self.tickets, self.taken, int(remaining))

    def peek(self, record: Recorder) -> int:
        del record
        return int(self.db.execute(self.sql.read).fetchone()[0])

    def sell(self, seen: Seen, sale: dbfile.Sale) -> None:
        # Two statements, each its own transaction: the naive strategy's write.
        self.db.execute(self.sql.write, (seen.remaining - 1,))
        self.db.execute(self.sql.ledger, (sale.seat, sale.buyer, sale.pid, sale.time))

    def attempt(self, attempt: Purchase) -> int | None:
        if self.plan not in PLANS:
            raise ValueError(f"plan={self.plan!r} is not one of {sorted(PLANS)}")
        db, sql, record = self.db, self.sql, attempt.record
        try:
            if self.plan == "immediate":
                attempt.lock("BEGIN IMMEDIATE (the write lock)", self._begin_immediate)
            else:
                self._wait(0.0 if self.plan == "deferred" else attempt.patience)
                db.execute(PLANS[self.plan])
            if self.plan == "update":
                # The statement that reads is the one that waits for the write lock.
                got: list[Any] = []
                attempt.lock(sql.update, lambda _: _fetched(db, sql.update, got))
                remaining = 0 if got[0] is None else int(got[0][0]) + 1
            else:
                remaining = int(db.execute(sql.read).fetchone()[0])
            seen = counted(self.tickets, self.taken, remaining)
            record(
                Step.READ, value=remaining, note=sql.update if self.plan == "update" else sql.read
            )
            if not attempt.decide(remaining):
                attempt.unlocked()  # recorded first: the next holder enters as this ends
                db.execute("COMMIT")
                return None
            sale = attempt.sale(seen.seat)
            if self.plan != "update":
                db.execute(sql.write, (remaining - 1,))
            db.execute(sql.ledger, (sale.seat, sale.buyer, sale.pid, sale.time))
            record(Step.WRITE, value=remaining - 1, seat=seen.seat)
            attempt.unlocked()  # recorded first: the next holder enters as this ends
            db.execute("COMMIT")
            record(Step.COMMIT)
            return seen.seat
        except sqlite3.OperationalError as exc:
            if _busy(exc) and self.plan != "update":
                raise Conflict(f"{_code(exc)}: {exc}") from None
            if _busy(exc):
                raise GuardTimeout("the write lock (SQLITE_BUSY)", attempt.patience) from None
            raise

    def _begin_immediate(self, patience: float) -> bool:
        self._wait(patience)
        try:
            self.db.execute(self.sql.immediate)
        except sqlite3.OperationalError as exc:
            if _busy(exc):
                return False
            raise
        return True

    def abandon(self) -> None:
        connection = self._connection
        with contextlib.suppress(sqlite3.Error):
            db = connection.get(self._connect)
            if db.in_transaction:
                db.execute("ROLLBACK")

    # In the parent.

    def vet(self) -> None:
        """Refuse (:class:`StoreError`) a file that is not a SQLite db of ticketsim's;
        no file is fine (the sale makes it) unless one of SQLite's own files for it is
        there already. Reads and writes nothing else."""
        sides = [self.path + suffix for suffix in SQLITE_SIDES]
        try:
            with open(self.path, "rb") as file:
                head = file.read(len(_HEADER))
        except FileNotFoundError:
            found = [side for side in sides if os.path.lexists(side)]
            if found:
                # SQLite would take it for the new database's journal, and remove it.
                raise StoreError(
                    self.url,
                    f"does not exist, but {found[0]} does, which SQLite would take for "
                    "its journal and remove",
                    "move that file away, or give another path",
                ) from None
            return
        except OSError as exc:
            raise StoreError(
                self.url, f"cannot read it ({exc.strerror})", "give another path"
            ) from None
        if head and head != _HEADER:
            raise StoreError(
                self.url,
                "is not a SQLite database",
                "give the path of a new file, or of one ticketsim made",
            )
        if not head:
            raise StoreError(
                self.url, "is an empty file ticketsim did not make", "give another path"
            )
        for side in sides:
            problem = _not_a_journal(side)
            if problem is not None:  # SQLite would take it as its own, and remove it
                raise StoreError(self.url, f"its journal {side} {problem}", "move it away")
        with _admin(self.path) as db:
            rows = db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'").fetchall()
        tables = {row[0] for row in rows}
        if tables - set(TABLES) or "meta" not in tables or not self._made_here():
            raise StoreError(
                self.url,
                f"holds tables ticketsim did not make ({', '.join(sorted(tables)) or 'none'})",
                "give the path of a new file; ticketsim never changes someone else's",
            )

    def _made_here(self) -> bool:
        with _admin(self.path) as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (MADE_BY[0],)).fetchone()
        return row is not None and row[0] == MADE_BY[1]

    @property
    def url(self) -> str:
        return "sqlite:///" + self.path

    def load(self, initial: dbfile.TicketDB) -> None:
        existed = os.path.lexists(self.path)
        self.vet()
        made = self._make()
        if made is None and not existed:  # another made it meanwhile: vetted as any
            self.vet()
        try:
            self._fill(initial)
        except BaseException:
            # What this made and could not fill is removed, not left for the next run
            # to refuse; only while it is still the file this made.
            if made is not None and _identity(self.path) == made:
                for path in (self.path, *(self.path + suffix for suffix in SQLITE_SIDES)):
                    with contextlib.suppress(OSError):
                        os.unlink(path)
            raise

    def _make(self) -> tuple[int, int] | None:
        """Make the store's file if there is none (its identity), else ``None``: made
        here and nowhere else, so that a failed load removes nothing of another's."""
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            return None
        except OSError as exc:  # the folder was vetted: the machine refuses it (exit 4)
            raise SystemRefused(
                f"--store={self.url}",
                f"it could not be made ({exc.strerror}); check the disk and the open-file "
                "limit (ulimit -n), then run again",
            ) from None
        try:
            made = os.fstat(fd)
        finally:
            os.close(fd)
        return made.st_dev, made.st_ino

    def _fill(self, initial: dbfile.TicketDB) -> None:
        with _admin(self.path) as db:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("BEGIN IMMEDIATE")
            for table in TABLES:
                db.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in _SCHEMA:
                db.execute(statement)
            db.execute("INSERT INTO meta VALUES (?, ?)", MADE_BY)
            db.execute(
                "INSERT INTO sale VALUES (1, ?, ?, ?)",
                (initial.tickets, initial.remaining, initial.event),
            )
            db.executemany(SALE.ledger, [(s.seat, s.buyer, s.pid, s.time) for s in initial.ledger])
            db.execute("COMMIT")

    def snapshot(self) -> dbfile.TicketDB:
        if not os.path.exists(self.path):
            raise StoreError(self.url, "does not exist", "make it with 'ticketsim reset --store'")
        self.vet()
        with _admin(self.path) as db:
            db.execute("BEGIN")
            try:
                head = db.execute("SELECT tickets, remaining, event FROM sale").fetchone()
                rows = db.execute("SELECT seat, buyer, pid, at FROM ledger ORDER BY n").fetchall()
            except sqlite3.OperationalError as exc:
                if not str(exc).startswith(("no such table", "no such column")):
                    raise  # busy, or the machine's: said where the store's errors are
                raise damaged(self.url, str(exc)) from None
            db.execute("COMMIT")
        if head is None:
            raise damaged(self.url, "its sale's row is gone")
        tickets, remaining, event = head
        return sale_of(self.url, tickets, remaining, event, rows)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        found = os.lstat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


#: The first bytes of SQLite's own journals: a write-ahead log (big- or little-endian
#: checksums) and a rollback journal. An index of the log (``-shm``) begins with its
#: version, 3007000, in the machine's byte order.
_WAL_MAGIC: Final = (bytes.fromhex("377f0682"), bytes.fromhex("377f0683"))
_JOURNAL_MAGIC: Final = bytes.fromhex("d9d505f920a163d7")
_SHM_VERSION: Final = (3007000).to_bytes(4, sys.byteorder)


def _not_a_journal(path: str) -> str | None:
    """What is wrong with ``path`` as a journal of SQLite's for a database that
    exists, or ``None`` (none there, or one of SQLite's: empty, or its header)."""
    try:
        with open_regular(path, lambda mode: _NotRegular(kind(mode))) as file:
            head = file.read(8)
    except FileNotFoundError:
        return None
    except _NotRegular as exc:
        return f"is {exc}, not a regular file"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not head:
        return None
    if path.endswith("-wal"):
        ours = head[:4] in _WAL_MAGIC
    elif path.endswith("-shm"):
        ours = head[:4] == _SHM_VERSION
    else:  # a rollback journal; one kept (PERSIST) has its header zeroed
        ours = head in (_JOURNAL_MAGIC, bytes(8))
    return None if ours else "is not one of SQLite's: it would take it as its own"


class _NotRegular(Exception):
    """What :func:`_not_a_journal` found instead of a regular file."""


@contextlib.contextmanager
def _admin(path: str) -> Iterator[sqlite3.Connection]:
    """A connection of the parent's, closed after: it waits for a buyer's lock rather
    than failing, but not for ever for another program's. The machine's refusals are
    :class:`SystemRefused` (exit 4): SQLite names them by its own codes, not errno."""
    try:
        db = sqlite3.connect(path, timeout=ADMIN_WAIT_S, isolation_level=None)
    except sqlite3.OperationalError as exc:
        raise _refused(path, exc) from None
    try:
        yield db
    except sqlite3.OperationalError as exc:
        if not _busy(exc):
            raise _refused(path, exc) from None
        # The machine's refusal (exit 4), not bad input: the file is fine, and will be free.
        raise ServerUnavailable(
            "SQLite",
            f"{path} stayed locked by another program for {ADMIN_WAIT_S:g} s ({_code(exc)})",
            "run again once that program is done with it, or give another file",
        ) from None
    except sqlite3.DatabaseError as exc:  # not a database, or a damaged one: the user's
        raise StoreError(
            "sqlite:///" + path,
            f"SQLite cannot read it ({exc}, {_code(exc)})",
            "give the path of a new file, or of one ticketsim made",
        ) from None
    finally:
        db.close()


#: What SQLite's refusals of the machine's making say, by its primary result code (the
#: extended ones, such as SQLITE_IOERR_WRITE, share it): a full disk, a read-only file
#: or file system, a file it cannot open (the open-file limit, a missing folder), a
#: failed read or write (the file-size limit, a failing disk).
_MACHINE: Final = {
    "SQLITE_FULL": "the disk is full: free some space, or give a path on another file system",
    "SQLITE_READONLY": "the file or its file system is read-only: give a writable one",
    "SQLITE_CANTOPEN": "it could not be opened (the open-file limit, `ulimit -n`, or the "
    "folder): raise the limit or check the folder, and run again",
    "SQLITE_IOERR": "reading or writing it failed (the file-size limit, `ulimit -f`, or "
    "the disk): raise the limit or check the disk, and run again",
}


#: The same refusals by SQLite's words, where Python (before 3.11) gives no code.
_MACHINE_WORDS: Final = {
    "database or disk is full": "SQLITE_FULL",
    "attempt to write a readonly database": "SQLITE_READONLY",
    "unable to open database file": "SQLITE_CANTOPEN",
    "disk I/O error": "SQLITE_IOERR",
}


def _refused(path: str, exc: sqlite3.OperationalError) -> Exception:
    """``exc`` as the machine's refusal, when SQLite says it is one; else ``exc``."""
    code = _code(exc)
    if code == "SQLITE_ERROR":
        code = _MACHINE_WORDS.get(str(exc), code)
    for name, reason in _MACHINE.items():
        if code == name or code.startswith(name + "_"):
            return SystemRefused(f"--store=sqlite:///{path}", f"{exc} ({code}); {reason}")
    return exc
