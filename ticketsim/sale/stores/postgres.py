"""The tickets in PostgreSQL: isolation levels, row and advisory locks, atomic
statements, and the refusals a strategy must retry.

Everything lives in the schema ``ticketsim``, which ticketsim makes and marks as its
own; a schema of that name that someone else made is refused, never changed.

Buyer processes unpickle this store, so this module imports only the standard library
and psycopg (the ``postgres`` extra), and psycopg only when a buyer connects.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any, Final

from ticketsim.core.events import Step
from ticketsim.core.frozen import field, frozen, replace
from ticketsim.core.stores import redacted
from ticketsim.errors import Conflict, GuardTimeout, ServerUnavailable, StoreError
from ticketsim.sale import _answer
from ticketsim.sale.stores.database import (
    NO_ROOM_ADVICE,
    DatabaseStore,
    ProcessConnection,
    Room,
    damaged,
    sale_of,
)
from ticketsim.sale.stores.shared import counted

if TYPE_CHECKING:
    from collections.abc import Iterator

    import psycopg

    from ticketsim.core import db as dbfile
    from ticketsim.core.events import Recorder
    from ticketsim.sale.stores.base import Seen
    from ticketsim.sale.stores.database import Purchase

SCHEMA: Final = "ticketsim"
#: The tables ticketsim makes in its schema; nothing else may be there.
TABLES: Final = ("meta", "sale", "ledger", "claimed", "seats", "board", "hosts", "history")
MADE_BY: Final = ("made-by", "ticketsim")
_DDL: Final = (
    f"CREATE TABLE {SCHEMA}.meta (key text PRIMARY KEY, value text NOT NULL)",
    f"CREATE TABLE {SCHEMA}.sale (id int PRIMARY KEY CHECK (id = 1), tickets int NOT NULL,"
    " remaining int NOT NULL, version int NOT NULL DEFAULT 0, event text NOT NULL,"
    " model text NOT NULL)",
    f"CREATE TABLE {SCHEMA}.ledger (n bigserial PRIMARY KEY, seat int NOT NULL,"
    " buyer text NOT NULL, pid int NOT NULL, at double precision NOT NULL)",
    f"CREATE TABLE {SCHEMA}.claimed (seat int PRIMARY KEY)",
    f"CREATE TABLE {SCHEMA}.seats (seat int PRIMARY KEY, buyer text)",
    # A sale of several hosts (ticketsim.sale.boards.postgres): its card, its hosts and
    # its history, each event stamped by the server's clock as it is inserted.
    f"CREATE TABLE {SCHEMA}.board (id int PRIMARY KEY CHECK (id = 1), sale text NOT NULL,"
    " card text NOT NULL,"
    " joined int NOT NULL DEFAULT 0, started double precision)",
    f"CREATE TABLE {SCHEMA}.hosts (n serial PRIMARY KEY, name text UNIQUE NOT NULL,"
    " row text NOT NULL)",
    f"CREATE TABLE {SCHEMA}.history (n bigserial PRIMARY KEY, at double precision NOT NULL"
    " DEFAULT extract(epoch FROM clock_timestamp()), event text NOT NULL)",
)

#: How each strategy keeps the tickets: a remaining count beside the ledger, the
#: ledger alone (the remaining is what it leaves), or a table with a row per seat.
COUNT, LEDGER, SEATS = "count", "ledger", "seats"


@frozen(slots=True)
class Statements:
    """The SQL a purchase sends: the sale's (:data:`SALE`), or a buyer's rehearsal's
    (:data:`REHEARSAL`)."""

    read: str
    for_update: str
    versioned: str
    write: str
    write_version: str
    update: str
    advisory: str
    count_ledger: str
    claim: str
    skip_locked: str
    free_seats: str
    take_seat: str
    insert_sale: str


SALE: Final = Statements(
    read="SELECT remaining FROM ticketsim.sale",
    for_update="SELECT remaining FROM ticketsim.sale FOR UPDATE",
    versioned="SELECT remaining, version FROM ticketsim.sale",
    write="UPDATE ticketsim.sale SET remaining = %s",
    write_version="UPDATE ticketsim.sale SET remaining = %s, version = version + 1"
    " WHERE version = %s",
    update="UPDATE ticketsim.sale SET remaining = remaining - 1 WHERE remaining > 0"
    " RETURNING remaining",
    advisory="SELECT pg_advisory_xact_lock(7245)",
    count_ledger="SELECT count(*) FROM ticketsim.ledger",
    claim="INSERT INTO ticketsim.claimed (seat) VALUES (%s)",
    skip_locked="SELECT seat FROM ticketsim.seats WHERE buyer IS NULL ORDER BY seat LIMIT 1"
    " FOR UPDATE SKIP LOCKED",
    free_seats="SELECT count(*) FROM ticketsim.seats WHERE buyer IS NULL",
    take_seat="UPDATE ticketsim.seats SET buyer = %s WHERE seat = %s",
    insert_sale="INSERT INTO ticketsim.ledger (seat, buyer, pid, at) VALUES (%s, %s, %s, %s)",
)
#: A rehearsal's: each statement takes the sale's parameters and answers as the sale's
#: does when one ticket is left (a row of the same columns, one row changed), on no
#: table at all. What a rehearsal warms is the buyer's side of a purchase (ticketsim's
#: code and psycopg's), which is where a fresh buyer's first purchase costs; the server
#: it asks nothing that locks, makes or leaves anything, so there is nothing to clean
#: up after a buyer killed midway, and no table or TEMP privilege to need.
REHEARSAL: Final = Statements(
    read="SELECT 1",
    for_update="SELECT 1",
    versioned="SELECT 1, 0",
    write="SELECT %s",
    write_version="SELECT %s, %s",
    update="SELECT 0",  # the count it left
    advisory="SELECT 1",
    count_ledger="SELECT 0::bigint",  # as count(*)
    claim="SELECT %s",
    skip_locked="SELECT 1",  # the seat
    free_seats="SELECT 0::bigint",
    take_seat="SELECT %s, %s",
    insert_sale="SELECT %s, %s, %s, %s",
)

#: What a buyer's server would otherwise look up for the first time inside the buyer's
#: first purchase, its critical section: the tables, indexes and sequence a purchase of
#: each model uses, opened and planned once before the sale opens. No row is read, and
#: the only lock taken is the weakest, which nothing but a DROP or a TRUNCATE waits for.
OPEN_TABLES: Final = {
    model: f"SELECT 1 FROM {', '.join(f'{SCHEMA}.{name}' for name in names)} WHERE false"
    for model, names in {
        COUNT: ("sale", "ledger", "ledger_n_seq"),
        LEDGER: ("ledger", "claimed", "ledger_n_seq"),
        SEATS: ("seats", "ledger", "ledger_n_seq"),
    }.items()
}

#: Each transactional strategy: its BEGIN, and the model its tickets are kept in.
PLANS: Final = {
    "update": ("BEGIN", COUNT),
    "for-update": ("BEGIN", COUNT),
    "advisory": ("BEGIN", COUNT),
    "repeatable-read": ("BEGIN ISOLATION LEVEL REPEATABLE READ", COUNT),
    "serializable": ("BEGIN ISOLATION LEVEL SERIALIZABLE", COUNT),
    "write-skew": ("BEGIN ISOLATION LEVEL REPEATABLE READ", LEDGER),
    "ledger-serializable": ("BEGIN ISOLATION LEVEL SERIALIZABLE", LEDGER),
    "skip-locked": ("BEGIN", SEATS),
    "unique": ("BEGIN", LEDGER),
    "optimistic": ("BEGIN", COUNT),
}

#: SQLSTATEs that mean "refused, nothing happened, try again".
_RETRYABLE: Final = {
    "40001": "serialization failure",
    "40P01": "deadlock detected",
    "23505": "unique violation",
}
_LOCK_NOT_AVAILABLE: Final = "55P03"
#: A statement waits this long for a lock when the pacer allows no wait at all:
#: PostgreSQL reads a lock_timeout of 0 as "wait forever".
_NO_WAIT_MS: Final = 20
#: libpq's status of a session in no transaction (``psycopg.pq.TransactionStatus.IDLE``):
#: a ROLLBACK outside one is a warning in the server's log.
_IDLE: Final = 0


#: libpq's TCP settings of every connection (a Unix socket ignores them): keepalives
#: find a peer gone quiet, the user timeout one that stopped acknowledging. Longer than
#: the longest partition ticketsim makes (a minute), so that one heals first.
_TCP_BOUNDS: Final = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 6,
    "tcp_user_timeout": 120_000,
}


def connect(url: str, *, answer_s: float | None = None) -> psycopg.Connection[Any]:
    """A connection in autocommit mode: every transaction is begun by its own statement.

    With ``answer_s``, a statement whose answer has not come within that many seconds
    raises :class:`ServerUnavailable` and ends the connection
    (:mod:`ticketsim.sale._answer`): ticketsim's own statements, not a buyer's
    purchase, which the sale's stall watch bounds.
    """
    try:
        import psycopg  # noqa: PLC0415 - a buyer of another store never pays for it
    except ImportError:
        raise StoreError(
            redacted(url), "needs psycopg", "install it: pip install 'ticketsim[postgres]'"
        ) from None
    kind = psycopg.Connection if answer_s is None else _answering(answer_s)
    try:
        # Over TCP, a server cut off for good is given up on within minutes, not hours:
        # libpq has no timeout of its own on a statement whose answer never comes.
        made = kind.connect(
            url,
            autocommit=True,
            connect_timeout=10,
            keepalives=_TCP_BOUNDS["keepalives"],
            keepalives_idle=_TCP_BOUNDS["keepalives_idle"],
            keepalives_interval=_TCP_BOUNDS["keepalives_interval"],
            keepalives_count=_TCP_BOUNDS["keepalives_count"],
            tcp_user_timeout=_TCP_BOUNDS["tcp_user_timeout"],
        )
    except psycopg.ProgrammingError as exc:  # libpq could not read the URL itself
        raise StoreError(redacted(url), one_line(exc), "fix the URL") from None
    except psycopg.OperationalError as exc:
        if any(words in str(exc) for words in _BAD_OPTION):  # libpq's, before it connects
            raise StoreError(redacted(url), one_line(exc), "fix the URL") from None
        # Full, the server answers: what to do is not to start it.
        full = any(words in str(exc) for words in _FULL)
        advice = NO_ROOM_ADVICE if full else "start it, or check the URL and its credentials"
        raise ServerUnavailable(redacted(url), one_line(exc), advice) from None
    if answer_s is not None:
        made.shown = redacted(url)  # type: ignore[attr-defined]
    return made


@functools.cache
def _answering(seconds: float) -> type[psycopg.Connection[Any]]:
    """psycopg's connection, each of whose waits for the server is bounded by ``seconds``."""
    import psycopg  # noqa: PLC0415 - a buyer of another store never pays for it

    class Answering(psycopg.Connection[Any]):
        #: The server, as a message names it (set by :func:`connect`).
        shown = "postgresql"

        # Every statement, fetch and commit waits for the server in ``wait``.
        def wait(self, gen: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return _answer.answer(
                    seconds, functools.partial(super().wait, gen, *args, **kwargs)
                )
            except _answer.NoAnswer as exc:
                # Its statement may still be running: the connection is good for nothing,
                # and a transaction that finds it ended does not try to roll back (which
                # would wait on it again, and warn on stderr).
                self.pgconn.finish()
                raise ServerUnavailable(
                    self.shown, f"the server gave {exc}", "is it stopped, or the network to it?"
                ) from None

    return Answering


def model_of(plan: str | None) -> str:
    """How the tickets of a strategy's ``plan`` are kept (the naive one's: a count)."""
    return PLANS[plan][1] if plan in PLANS else COUNT


def _fetched(db: psycopg.Connection[Any], sql: str, into: list[Any]) -> bool:
    """Run ``sql`` (which waits for a lock), keeping its row: it took the lock once it ran."""
    into.append(db.execute(sql).fetchone())
    return True


def one_line(exc: BaseException) -> str:
    """What psycopg says, on one line: libpq says why on one line and what to check on
    the next (``\tIs the server running...``), and both matter."""
    return " ".join(str(exc).split()) or type(exc).__name__


#: How libpq refuses a query option's value (``sslmode=bogus``), which is no server's.
_BAD_OPTION: Final = (" value: ", "for connection option")
#: How the server refuses a connection it has no room for.
_FULL: Final = ("too many clients", "connection slots are reserved", "too many connections")
#: The limits on this session's connections: the server's, less the slots kept for
#: superusers (and, from PostgreSQL 16, for pg_use_reserved_connections); the role's and
#: the database's CONNECTION LIMIT (-1: none); none of which binds a superuser but the
#: server's own. And the client connections each limit counts now, this one among them.
_ROOM: Final = """
SELECT current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int
         + CASE WHEN to_regrole('pg_use_reserved_connections') IS NOT NULL
                 AND pg_has_role(to_regrole('pg_use_reserved_connections'), 'MEMBER')
                THEN 0
                ELSE coalesce(current_setting('reserved_connections', true), '0')::int END,
       r.rolsuper, r.rolconnlimit, d.datconnlimit,
       count(*) FILTER (WHERE a.backend_type = 'client backend'),
       count(*) FILTER (WHERE a.backend_type = 'client backend' AND a.usename = current_user),
       count(*) FILTER (WHERE a.backend_type = 'client backend'
                          AND a.datname = current_database())
FROM pg_roles r, pg_database d, pg_stat_activity a
WHERE r.rolname = current_user AND d.datname = current_database()
GROUP BY r.rolsuper, r.rolconnlimit, d.datconnlimit
"""


#: Everything a schema holds by name: relations (sequences, views, composite types),
#: functions and procedures, and types of their own (enums, domains; not arrays).
_OBJECTS: Final = """
SELECT 'relation ' || c.relname FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s
UNION ALL
SELECT 'function ' || p.proname FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s
UNION ALL
SELECT 'type ' || t.typname FROM pg_type t
  JOIN pg_namespace n ON n.oid = t.typnamespace
  WHERE n.nspname = %s AND t.typrelid = 0 AND t.typcategory <> 'A'
"""
#: What the server answers that is the store's damage (a table or column of
#: ticketsim's gone), and what is the server refusing (rights, a read-only session,
#: its resources, an operator, its own system, the connection): by SQLSTATE.
_DAMAGE: Final = ("42P01", "42703")
_REFUSALS: Final = ("42501", "25006", "53", "57", "58", "08")


@contextlib.contextmanager
def _refusals(url: str) -> Iterator[None]:
    """Around the parent's reads and writes of a sale: a table of ticketsim's gone is the
    store's damage (:class:`StoreError`); what the server refuses is the server's
    (:class:`ServerUnavailable`). Neither is a bug of ticketsim's."""
    import psycopg  # noqa: PLC0415 - imported by the connection already

    try:
        yield
    except psycopg.Error as exc:
        state = getattr(exc, "sqlstate", None) or ""
        if state in _DAMAGE:
            raise damaged(redacted(url), one_line(exc)) from None
        # The connection lost (psycopg's own error, with no SQLSTATE) is the server's too.
        if not state.startswith(_REFUSALS) and not isinstance(exc, psycopg.OperationalError):
            raise
        advice = (
            "give the role the rights ticketsim needs (or use another), or see the server"
            if state
            else "is the server up, and the network to it?"
        )
        raise ServerUnavailable(redacted(url), one_line(exc), advice) from None


@frozen
class PostgresStore(DatabaseStore):
    """The sale in the PostgreSQL at ``url``; ``plan`` is the strategy's transaction
    (a key of :data:`PLANS`), ``None`` for the naive one's bare statements."""

    url: str
    plan: str | None = None
    taken: tuple[int, ...] = ()
    tickets: int = 0
    detached: bool = False
    _connection: ProcessConnection[psycopg.Connection[Any]] = field(
        default_factory=ProcessConnection, compare=False, repr=False
    )
    #: The lock_timeout this process's connection has, to set it only when it changes.
    _waits: list[int] = field(default_factory=lambda: [-1], compare=False, repr=False)
    #: Whether this copy is a buyer's rehearsal (:meth:`rehearsal`), whose statements
    #: name no table.
    rehearsing: bool = False

    @property
    def sql(self) -> Statements:
        """The statements of a purchase: the sale's, or a rehearsal's."""
        return REHEARSAL if self.rehearsing else SALE

    @property
    def db(self) -> psycopg.Connection[Any]:
        return self._connection.get(self._connect)

    def _connect(self) -> psycopg.Connection[Any]:
        self._waits[0] = -1  # a new connection has the server's lock_timeout
        return connect(self.url)

    def prepare(self) -> None:
        self.db.execute(self.sql.read).fetchone()
        self.db.execute(OPEN_TABLES[model_of(self.plan)])

    def _rehearsal_copy(self) -> DatabaseStore:
        return replace(self, rehearsing=True, tickets=1, taken=())

    def _in_transaction(self, db: psycopg.Connection[Any]) -> bool:
        return bool(db.info.transaction_status != _IDLE)

    def read(self, record: Recorder) -> Seen:
        del record
        return counted(self.tickets, self.taken, self._one(self.sql.read))

    def peek(self, record: Recorder) -> int:
        del record
        return self._one(self.sql.read)

    def sell(self, seen: Seen, sale: dbfile.Sale) -> None:
        self.db.execute(self.sql.write, (seen.remaining - 1,))
        self.db.execute(self.sql.insert_sale, (sale.seat, sale.buyer, sale.pid, sale.time))

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        row = self.db.execute(sql, args).fetchone()
        return int(row[0]) if row is not None else 0

    def _wait(self, seconds: float) -> None:
        ms = max(_NO_WAIT_MS, int(seconds * 1000))
        if self._waits[0] != ms:
            self.db.execute(f"SET lock_timeout = {ms}")
            self._waits[0] = ms

    def attempt(self, attempt: Purchase) -> int | None:
        import psycopg  # noqa: PLC0415 - imported by the connection already

        plan = self.plan
        if plan not in PLANS:
            raise ValueError(f"plan={plan!r} is not one of {sorted(PLANS)}")
        try:
            self._wait(attempt.patience)
            self.db.execute(PLANS[plan][0])
            return self._buy(plan, attempt)
        except psycopg.Error as exc:
            state = getattr(exc, "sqlstate", None) or ""
            if state in _RETRYABLE:
                raise Conflict(f"{_RETRYABLE[state]} ({state})") from None
            if state == _LOCK_NOT_AVAILABLE:
                raise GuardTimeout("a row lock", attempt.patience) from None
            if isinstance(exc, psycopg.OperationalError):
                raise ServerUnavailable(
                    "postgresql", one_line(exc), "the server went away mid-sale"
                ) from None
            raise

    def _read(self, plan: str, attempt: Purchase) -> tuple[int, int, str]:
        """The read of ``plan``: the count it saw, the version, and the statement."""
        db, sql = self.db, self.sql
        got: list[Any] = []
        if plan == "advisory":
            attempt.lock(sql.advisory, lambda _: _fetched(db, sql.advisory, got))
        if plan in ("for-update", "update"):
            # The statement that reads is the one that waits for the row's lock.
            locking = sql.for_update if plan == "for-update" else sql.update
            attempt.lock(locking, lambda _: _fetched(db, locking, got))
            row = got[-1]
            if plan == "update":  # it returned the count it left, if it left one
                return (0 if row is None else int(row[0]) + 1), 0, locking
            return int(row[0]), 0, locking
        if plan == "optimistic":
            remaining, version = db.execute(sql.versioned).fetchone() or (0, 0)
            return int(remaining), int(version), sql.versioned
        if PLANS[plan][1] == LEDGER:
            # The ledger's length is the count: the sales made, whoever made them.
            return self.tickets - self._one(sql.count_ledger), 0, sql.count_ledger
        return self._one(sql.read), 0, sql.read

    def _buy(self, plan: str, attempt: Purchase) -> int | None:
        if plan == "skip-locked":
            return self._buy_seat(attempt)
        db, sql, record = self.db, self.sql, attempt.record
        remaining, version, read_sql = self._read(plan, attempt)
        seen = counted(self.tickets, self.taken, remaining)
        record(Step.READ, value=remaining, note=read_sql)
        if not attempt.decide(remaining):
            attempt.unlocked()  # recorded first: the next holder enters as this ends
            db.execute("COMMIT")
            return None
        sale = attempt.sale(seen.seat)
        if plan == "unique":
            db.execute(sql.claim, (seen.seat,))
        elif plan == "optimistic":
            changed = db.execute(sql.write_version, (remaining - 1, version)).rowcount
            if changed != 1:
                raise Conflict(f"the version moved on from {version}: another buyer wrote first")
        elif PLANS[plan][1] == COUNT and plan != "update":
            db.execute(sql.write, (remaining - 1,))
        db.execute(sql.insert_sale, (sale.seat, sale.buyer, sale.pid, sale.time))
        record(Step.WRITE, value=remaining - 1, seat=seen.seat)
        attempt.unlocked()  # recorded first: the next holder enters as this ends
        db.execute("COMMIT")
        record(Step.COMMIT)
        return seen.seat

    def _buy_seat(self, attempt: Purchase) -> int | None:
        db, sql, record = self.db, self.sql, attempt.record
        row = db.execute(sql.skip_locked).fetchone()
        seat = None if row is None else int(row[0])
        record(Step.READ, value=1 if seat is not None else 0, seat=seat, note=sql.skip_locked)
        if not attempt.decide(0 if seat is None else 1) or seat is None:
            if self._one(sql.free_seats):
                # Every free seat is locked by a transaction that may still give it up
                # (or whose buyer died, until the server sees it): not sold out yet. A
                # buyer that may not wait (a schedule's step) is blocked, as at a lock.
                if attempt.patience <= 0:
                    raise GuardTimeout("a free seat (every one is locked)", 0.0)
                raise Conflict("every free seat is held by another buyer's transaction")
            attempt.unlocked()  # recorded first: the next holder enters as this ends
            db.execute("COMMIT")
            return None
        sale = attempt.sale(seat)
        db.execute(sql.take_seat, (sale.buyer, seat))
        db.execute(sql.insert_sale, (seat, sale.buyer, sale.pid, sale.time))
        record(Step.WRITE, seat=seat)
        attempt.unlocked()  # recorded first: the next holder enters as this ends
        db.execute("COMMIT")
        record(Step.COMMIT)
        return seat

    def abandon(self) -> None:
        connection = self._connection.drop() if self._broken() else None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()
            return
        with contextlib.suppress(Exception):
            self.db.execute("ROLLBACK")

    def _broken(self) -> bool:
        try:
            return bool(self.db.closed or self.db.broken)
        except Exception:
            return True

    # In the parent.

    def _admin(self) -> psycopg.Connection[Any]:
        return connect(self.url, answer_s=_answer.ANSWER_S)

    def _vet(self, db: psycopg.Connection[Any]) -> set[str] | None:
        """The tables of ticketsim's schema, ``None`` if there is none yet;
        :class:`StoreError` if the schema holds anything ticketsim did not make."""
        exists = db.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (SCHEMA,)).fetchone()
        if exists is None:
            return None
        tables = {
            row[0]
            for row in db.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind IN ('r', 'v', 'm', 'p', 'f')",
                (SCHEMA,),
            )
        }
        marked = False
        if "meta" in tables:
            row = db.execute(
                f"SELECT value FROM {SCHEMA}.meta WHERE key = %s", (MADE_BY[0],)
            ).fetchone()
            marked = row is not None and row[0] == MADE_BY[1]
        if tables - set(TABLES) or (tables and not marked):
            raise StoreError(
                redacted(self.url),
                f"its schema {SCHEMA!r} holds tables ticketsim did not make "
                f"({', '.join(sorted(tables))})",
                "use another database; ticketsim never changes someone else's tables",
            )
        # A schema ticketsim did not make is someone else's, even with no table in it.
        others = [] if marked else [row[0] for row in db.execute(_OBJECTS, (SCHEMA,) * 3)]
        if others:
            raise StoreError(
                redacted(self.url),
                f"its schema {SCHEMA!r} holds what ticketsim did not make "
                f"({', '.join(sorted(others))})",
                "use another database; ticketsim never changes someone else's schema",
            )
        return tables

    def room(self) -> Room | None:
        import psycopg  # noqa: PLC0415 - imported by the connection already

        with contextlib.closing(self._admin()) as db:
            try:
                row = db.execute(_ROOM).fetchone()
            except psycopg.Error:  # a server that does not say (older, or only alike)
                return None
        if row is None:
            return None
        most, kept, superuser, role_limit, db_limit, *counts = row
        # Not this connection, gone before the buyers connect.
        used, role_used, db_used = (count - 1 for count in counts)
        if superuser:
            return Room(
                most - used, f"max_connections is {most} and {used} other connection(s) are in use"
            )
        rooms = [
            Room(
                most - kept - used,
                f"max_connections is {most} ({kept} kept in reserve) and {used} other "
                "connection(s) are in use",
            )
        ]
        for limit, has, whose in ((role_limit, role_used, "role"), (db_limit, db_used, "database")):
            if limit >= 0:
                words = f"the {whose}'s CONNECTION LIMIT is {limit} and {has} other(s) use it"
                rooms.append(Room(limit - has, words))
        return min(rooms, key=lambda room: room.free)

    def load(self, initial: dbfile.TicketDB) -> None:
        model = model_of(self.plan)
        with contextlib.closing(self._admin()) as db, _refusals(self.url), db.transaction():
            tables = self._vet(db)
            if tables == set(TABLES):  # emptied: a search loads it once a schedule
                names = ", ".join(f"{SCHEMA}.{table}" for table in TABLES)
                db.execute(f"TRUNCATE {names} RESTART IDENTITY")
            else:
                if tables is None:
                    db.execute(f"CREATE SCHEMA {SCHEMA}")
                for table in tables or ():
                    db.execute(f"DROP TABLE {SCHEMA}.{table}")
                for statement in _DDL:
                    db.execute(statement)
            db.execute(f"INSERT INTO {SCHEMA}.meta VALUES (%s, %s)", MADE_BY)
            db.execute(
                f"INSERT INTO {SCHEMA}.sale (id, tickets, remaining, event, model)"
                " VALUES (1, %s, %s, %s, %s)",
                (initial.tickets, initial.remaining, initial.event, model),
            )
            with db.cursor() as cursor:
                cursor.executemany(
                    SALE.insert_sale, [(s.seat, s.buyer, s.pid, s.time) for s in initial.ledger]
                )
                taken = {s.seat for s in initial.ledger}
                cursor.executemany(
                    f"INSERT INTO {SCHEMA}.seats (seat, buyer) VALUES (%s, %s)",
                    [
                        (seat, "sold before" if seat in taken else None)
                        for seat in range(1, initial.tickets + 1)
                    ],
                )

    def keep(self, kept: dbfile.TicketDB) -> None:
        # A sale made for another model keeps its count where this strategy's buyers
        # never look (a column the ledger strategies leave alone, seats nobody takes).
        with contextlib.closing(self._admin()) as db, _refusals(self.url):
            row = db.execute(f"SELECT model FROM {SCHEMA}.sale").fetchone()
        if row is None or row[0] != model_of(self.plan):
            self.load(kept)

    def snapshot(self) -> dbfile.TicketDB:
        shown = redacted(self.url)
        with contextlib.closing(self._admin()) as db, _refusals(self.url):
            # One snapshot for the count and the ledger, even while buyers still write.
            db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            if self._vet(db) is None:
                raise StoreError(
                    shown, f"has no schema {SCHEMA!r}", "make it with 'ticketsim reset --store'"
                )
            row = db.execute(
                f"SELECT tickets, remaining, event, model FROM {SCHEMA}.sale"
            ).fetchone()
            if row is None:
                raise StoreError(shown, "holds no sale", "reset it with 'ticketsim reset --store'")
            tickets, remaining, event, model = row
            rows = db.execute(
                f"SELECT seat, buyer, pid, at FROM {SCHEMA}.ledger ORDER BY n"
            ).fetchall()
            free = self._free_seats(db) if model == SEATS else 0
            db.execute("COMMIT")
        if model not in (COUNT, LEDGER, SEATS):
            raise damaged(shown, f"its sale's model {model!r} is none of ticketsim's")
        # The ledger's and the seats' strategies keep no count: theirs is worked out.
        sale = sale_of(shown, tickets, remaining if model == COUNT else 0, event, rows)
        if model == LEDGER:
            return replace(sale, remaining=sale.tickets - len(sale.ledger))
        return replace(sale, remaining=free) if model == SEATS else sale

    @staticmethod
    def _free_seats(db: psycopg.Connection[Any]) -> int:
        row = db.execute(SALE.free_seats).fetchone()
        return int(row[0]) if row else 0
