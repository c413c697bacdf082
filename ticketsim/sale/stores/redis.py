"""The tickets in Redis: a check-then-set, atomic commands, WATCH/MULTI/EXEC, a Lua
script, and a lock with a lease, with and without a fencing token.

Every key ticketsim makes starts with ``ticketsim:``, and the key ``ticketsim:made-by``
marks them as its own; keys under that prefix that someone else made are refused. A
buyer rehearses its purchase before the sale opens on keys of its own under
``ticketsim:rehearsal:``, which it removes; a buyer killed before it could leaves them
to the end of the sale on the user's store, or to the next sale (:class:`Keys`).

Buyer processes unpickle this store, so this module imports only the standard library
and redis-py (the ``redis`` extra), and redis-py only when a buyer connects.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Any, Final

from ticketsim.core.events import Step
from ticketsim.core.frozen import field, frozen, replace
from ticketsim.core.stores import redacted
from ticketsim.errors import Conflict, ServerUnavailable, StoreError
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
    from collections.abc import Iterator, Sequence

    from ticketsim.core import db as dbfile
    from ticketsim.core.events import Event, Recorder
    from ticketsim.sale.stores.base import Seen
    from ticketsim.sale.stores.database import Purchase

PREFIX: Final = "ticketsim:"
MADE_BY: Final = PREFIX + "made-by"
TICKETS: Final = PREFIX + "tickets"
REMAINING: Final = PREFIX + "remaining"
EVENT: Final = PREFIX + "event"
LEDGER: Final = PREFIX + "ledger"
LOCK: Final = PREFIX + "lock"
FENCE: Final = PREFIX + "fence"
FENCE_SEEN: Final = PREFIX + "fence-seen"
#: Every key ticketsim makes; anything else under the prefix is someone else's.
#: A sale of several hosts (ticketsim.sale.boards.redis): its card and gate, its hosts,
#: and its history, a stream whose IDs are the server's clock.
BOARD: Final = PREFIX + "board"
HOSTS: Final = PREFIX + "hosts"
HISTORY: Final = PREFIX + "history"
KEYS: Final = (
    MADE_BY,
    TICKETS,
    REMAINING,
    EVENT,
    LEDGER,
    LOCK,
    FENCE,
    FENCE_SEEN,
    BOARD,
    HOSTS,
    HISTORY,
)

#: Where a buyer's rehearsal keys live (:meth:`RedisStore.rehearsal`), one set a process.
REHEARSAL: Final = PREFIX + "rehearsal:"
#: A rehearsal's keys are made to expire after this long, should their buyer be killed
#: before it removes them (a purchase that SETs one takes its expiry away, which is why
#: the parent removes what is left too: :func:`sweep_rehearsals`).
REHEARSAL_TTL_S: Final = 60
#: The names of a rehearsal's keys after its own prefix (``Keys``' fields, in order).
_REHEARSAL_NAMES: Final = ("remaining", "ledger", "lock", "fence", "fence-seen")

PLANS: Final = ("decr", "watch", "lua", "lock", "fenced")
#: How often a buyer tries to take a lock someone else holds.
LOCK_POLL_S: Final = 0.001
#: The lock's lease unless the strategy is given another: a holder that takes longer
#: than this loses the lock without knowing it.
LEASE_S: Final = 1.0

#: Sell one ticket if one is left: the check, the seat and the write in one atomic
#: step. ARGV: the sale's "buyer pid time", the tickets, then the seats sold before the
#: sale opened, sorted (the seat is the next of the others, as ``nth_free_seat`` says).
_SELL_ONE: Final = """
local remaining = tonumber(redis.call('GET', KEYS[1]))
if remaining <= 0 then return {remaining, 0} end
local tickets = tonumber(ARGV[2])
local seat = tickets - (#ARGV - 2) - remaining + 1
for i = 3, #ARGV do
  if tonumber(ARGV[i]) > seat then break end
  seat = seat + 1
end
redis.call('SET', KEYS[1], remaining - 1)
redis.call('RPUSH', KEYS[2], seat .. ' ' .. ARGV[1])
return {remaining, seat}
"""
#: Let go of the lock only if it is still ours: a lease that ran out may be another's.
_UNLOCK: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
#: A fenced read: refused if a newer token was seen; else the token is now the newest.
_FENCED_READ: Final = """
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
local token = tonumber(ARGV[1])
if token < seen then return -1 end
redis.call('SET', KEYS[2], token)
return tonumber(redis.call('GET', KEYS[1]))
"""
#: A fenced write: applied only if no newer token has been seen since the read.
_FENCED_WRITE: Final = """
local seen = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(ARGV[1]) < seen then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
return 1
"""


def connect(url: str) -> Any:
    """A client that has answered a PING (redis-py's types are loose: ``Any`` here)."""
    try:
        import redis  # noqa: PLC0415 - a buyer of another store never pays for it
    except ImportError:
        raise StoreError(
            redacted(url), "needs redis-py", "install it: pip install 'ticketsim[redis]'"
        ) from None
    try:
        client = redis.Redis.from_url(
            url, socket_timeout=_answer.ANSWER_S, socket_connect_timeout=10
        )
    except ValueError as exc:  # redis-py could not read the URL itself
        raise StoreError(redacted(url), str(exc).rstrip("."), "fix the URL") from None
    try:
        client.ping()
    except TypeError as exc:  # a query option redis-py does not know, met on connecting
        raise StoreError(redacted(url), str(exc).rstrip("."), "fix the URL") from None
    except redis.ResponseError as exc:
        if "DB index is out of range" not in str(exc):
            raise ServerUnavailable(redacted(url), problem(exc), _REFUSED) from None
        raise StoreError(
            redacted(url), "the server has no database of that number", "give a lower one"
        ) from None
    except redis.RedisError as exc:
        # Full, the server answers: what to do is not to start it.
        full = "max number of clients" in str(exc)
        advice = NO_ROOM_ADVICE.replace("that limit", "its maxclients") if full else None
        raise ServerUnavailable(
            redacted(url), problem(exc), advice or "start it, or check the URL"
        ) from None
    return client


#: What to do when the server is up and says no: a user without the rights, full memory.
_REFUSED: Final = "give the user the rights ticketsim needs (or use another), or free its memory"


@contextlib.contextmanager
def _refusals(url: str) -> Iterator[None]:
    """Around the parent's reads and writes of a sale: a key of ticketsim's that holds
    another kind of value is the store's damage (:class:`StoreError`); a command the
    server refuses (an ACL, full memory, a read-only replica) or a connection it drops
    is the server's (:class:`ServerUnavailable`). Neither is a bug of ticketsim's."""
    import redis  # noqa: PLC0415 - imported by the connection already

    try:
        yield
    except redis.ResponseError as exc:
        if "WRONGTYPE" in str(exc):  # alone, or as a pipeline says which command met it
            raise damaged(
                redacted(url), "a key of ticketsim's holds another kind of value"
            ) from None
        raise ServerUnavailable(redacted(url), problem(exc), _REFUSED) from None
    except redis.RedisError as exc:
        raise ServerUnavailable(redacted(url), problem(exc), "start it, or check the URL") from None


def problem(exc: BaseException) -> str:
    """What went wrong, as redis-py's ``exc`` says it: its timeout in ticketsim's words."""
    import redis  # noqa: PLC0415 - imported by the connection already

    if isinstance(exc, redis.TimeoutError) and "connecting" not in str(exc):
        return f"the server gave no answer within {_answer.ANSWER_S:g} s"
    return str(exc) or type(exc).__name__


@frozen(slots=True)
class Keys:
    """The keys a buyer's statements name: the sale's, or a rehearsal's of its own."""

    remaining: str = REMAINING
    ledger: str = LEDGER
    lock: str = LOCK
    fence: str = FENCE
    fence_seen: str = FENCE_SEEN

    @classmethod
    def rehearsal(cls) -> Keys:
        """Keys for this process to rehearse on, under :data:`REHEARSAL`: named by its
        pid and a random tag, since buyers on several machines may share a pid."""
        at = f"{REHEARSAL}{os.getpid()}-{os.urandom(6).hex()}:"
        return cls(*(at + name for name in _REHEARSAL_NAMES))

    def _names(self) -> tuple[str, ...]:
        return (self.remaining, self.ledger, self.lock, self.fence, self.fence_seen)

    def make(self, db: Any, tickets: int) -> None:
        """Make these keys as a sale of ``tickets`` with none sold, each expiring after
        :data:`REHEARSAL_TTL_S` (the ledger holds an empty entry, to have an expiry)."""
        with db.pipeline() as pipe:
            pipe.set(self.remaining, tickets, ex=REHEARSAL_TTL_S)
            pipe.set(self.fence_seen, 0, ex=REHEARSAL_TTL_S)
            pipe.set(self.fence, 0, ex=REHEARSAL_TTL_S)
            pipe.rpush(self.ledger, "").expire(self.ledger, REHEARSAL_TTL_S)
            pipe.execute()

    def drop(self, db: Any) -> None:
        db.delete(*self._names())

    @classmethod
    @contextlib.contextmanager
    def rehearsing(cls, db: Any) -> Iterator[Keys]:
        """A rehearsal's keys (:meth:`rehearsal`), made in ``db`` as a sale of one
        ticket, and removed once the context ends."""
        keys = cls.rehearsal()
        keys.make(db, 1)
        try:
            yield keys
        finally:
            keys.drop(db)


def _client_error(exc: BaseException) -> bool:
    import redis  # noqa: PLC0415 - imported by the connection already

    return isinstance(exc, redis.RedisError)


def is_rehearsal_key(key: str) -> bool:
    """Whether ``key`` is one a rehearsal makes (:meth:`Keys.rehearsal`), and so
    ticketsim's own, not merely a key that starts the same."""
    if not key.startswith(REHEARSAL):
        return False
    tag, _, name = key.removeprefix(REHEARSAL).partition(":")
    pid, _, random = tag.partition("-")
    hexdigits = "0123456789abcdef"
    return (
        name in _REHEARSAL_NAMES
        and pid.isdigit()
        and len(random) == 12
        and all(c in hexdigits for c in random)
    )


def sweep_rehearsals(db: Any) -> None:
    """Remove every rehearsal's keys left in ``db``: those of a buyer killed before it
    removed its own."""
    left = db.scan_iter(match=REHEARSAL + "*", count=1000)
    ours = [key for key in left if is_rehearsal_key(key.decode())]
    if ours:
        db.delete(*ours)


def _entry(sale: dbfile.Sale) -> str:
    return f"{sale.seat} {sale.buyer} {sale.pid} {sale.time!r}"


def _fields(entry: bytes) -> tuple[object, object, object, object]:
    """A ledger entry's seat, buyer, pid and time (a buyer's name may hold spaces: the
    seat comes first, the pid and time last). What is no number stays text, and an
    entry of fewer fields lacks them, for :func:`sale_of` to name."""
    seat, _, rest = entry.decode("utf-8", "backslashreplace").partition(" ")
    fields = rest.rsplit(" ", 2)
    if len(fields) < 3:
        return _whole(seat), rest, None, None
    buyer, pid, at = fields
    try:
        time_s: object = float(at)
    except ValueError:
        time_s = at
    return _whole(seat), buyer, _whole(pid), time_s


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "backslashreplace")


def _whole(text: str | None) -> object:
    """``text`` as a whole number if it is one, else as it is."""
    try:
        return int(text) if text is not None else None
    except ValueError:
        return text


@frozen
class RedisStore(DatabaseStore):
    """The sale in the Redis at ``url``; ``plan`` is the strategy's (a name in
    :data:`PLANS`), ``None`` for the naive GET then SET."""

    url: str
    plan: str | None = None
    taken: tuple[int, ...] = ()
    tickets: int = 0
    lease: float = LEASE_S
    detached: bool = False
    _connection: ProcessConnection[Any] = field(
        default_factory=ProcessConnection, compare=False, repr=False
    )
    #: The sell-one script's SHA on the server, once this process has loaded it.
    _sha: list[str] = field(default_factory=list, compare=False, repr=False)
    #: The lock token this process holds, if it holds the lock.
    _held: list[str] = field(default_factory=list, compare=False, repr=False)
    #: The keys its statements name: the sale's, but for a rehearsal.
    keys: Keys = field(default_factory=Keys, repr=False)

    @property
    def db(self) -> Any:
        return self._connection.get(lambda: connect(self.url))

    def prepare(self) -> None:
        self.db.get(self.keys.remaining)
        if self.plan == "lua":
            self._script_sha()

    @contextlib.contextmanager
    def rehearsal(self) -> Iterator[RedisStore]:
        with Keys.rehearsing(self.db) as keys:
            yield replace(self, keys=keys, tickets=1, taken=())

    def _remaining(self) -> int:
        return int(self.db.get(self.keys.remaining) or 0)

    def read(self, record: Recorder) -> Seen:
        del record
        return counted(self.tickets, self.taken, self._remaining())

    def peek(self, record: Recorder) -> int:
        del record
        return self._remaining()

    def sell(self, seen: Seen, sale: dbfile.Sale) -> None:
        self.db.set(self.keys.remaining, seen.remaining - 1)
        self.db.rpush(self.keys.ledger, _entry(sale))

    def attempt(self, attempt: Purchase) -> int | None:
        import redis  # noqa: PLC0415 - imported by the connection already

        try:
            if self.plan == "decr":
                return self._decr(attempt)
            if self.plan == "watch":
                return self._watch(attempt)
            if self.plan == "lua":
                return self._lua(attempt)
            if self.plan in ("lock", "fenced"):
                return self._locked(attempt)
        except redis.ConnectionError as exc:
            raise ServerUnavailable("redis", str(exc), "the server went away mid-sale") from None
        raise ValueError(f"plan={self.plan!r} is not one of {PLANS}")

    def _decr(self, attempt: Purchase) -> int | None:
        keys = self.keys
        left = int(self.db.decr(keys.remaining))
        attempt.record(Step.READ, value=left + 1, note="DECR")
        if left < 0:
            self.db.incr(keys.remaining)  # none was left: give back what the DECR took
        if not attempt.decide(left + 1):
            return None
        seen = counted(self.tickets, self.taken, left + 1)
        sale = attempt.sale(seen.seat)
        self.db.rpush(keys.ledger, _entry(sale))
        attempt.record(Step.WRITE, value=left, seat=seen.seat)
        return seen.seat

    def _watch(self, attempt: Purchase) -> int | None:
        import redis  # noqa: PLC0415

        keys = self.keys
        with self.db.pipeline() as pipe:
            pipe.watch(keys.remaining)
            remaining = int(pipe.get(keys.remaining) or 0)
            attempt.record(Step.READ, value=remaining, note="WATCH + GET")
            if not attempt.decide(remaining):
                return None
            seen = counted(self.tickets, self.taken, remaining)
            sale = attempt.sale(seen.seat)
            pipe.multi()
            pipe.set(keys.remaining, remaining - 1)
            pipe.rpush(keys.ledger, _entry(sale))
            attempt.record(Step.WRITE, value=remaining - 1, seat=seen.seat, note="MULTI SET RPUSH")
            try:
                pipe.execute()
            except redis.WatchError:
                raise Conflict("WATCH: the count changed before EXEC") from None
        attempt.record(Step.COMMIT, note="EXEC")
        return seen.seat

    def _lua(self, attempt: Purchase) -> int | None:
        sale = attempt.sale(0)
        who = f"{sale.buyer} {sale.pid} {sale.time!r}"
        remaining, seat = (
            int(value)
            for value in self.db.evalsha(
                self._script_sha(),
                2,
                self.keys.remaining,
                self.keys.ledger,
                who,
                self.tickets,
                *self.taken,
            )
        )
        # One step: the read and the write happened together, with nothing between.
        attempt.record(Step.READ, value=remaining, note="EVALSHA sell-one")
        attempt.pace()
        if remaining <= 0:
            return None
        attempt.record(Step.WRITE, value=remaining - 1, seat=seat)
        return seat

    def _script_sha(self) -> str:
        if not self._sha:
            self._sha.append(str(self.db.script_load(_SELL_ONE)))
        return self._sha[0]

    def _locked(self, attempt: Purchase) -> int | None:
        keys = self.keys
        token = f"{os.getpid()}-{attempt.buyer}-{time.monotonic_ns()}"
        lease_ms = int(self.lease * 1000)
        attempt.lock(f"SET {keys.lock} NX PX {lease_ms}", lambda p: self._take(token, p))
        self._held.append(token)
        fence = int(self.db.incr(keys.fence)) if self.plan == "fenced" else 0
        if self.plan == "fenced":
            got = int(self.db.eval(_FENCED_READ, 2, keys.remaining, keys.fence_seen, fence))
            if got < 0:
                raise Conflict(f"fenced off: token {fence} is older than the newest seen")
            remaining = got
        else:
            remaining = self._remaining()
        attempt.record(Step.READ, value=remaining, note="GET")
        if not attempt.decide(remaining):
            attempt.unlocked()  # recorded first: the next holder enters as this ends
            self._unlock()
            return None
        seen = counted(self.tickets, self.taken, remaining)
        sale = attempt.sale(seen.seat)
        if self.plan == "fenced":
            args = (fence, remaining - 1, _entry(sale))
            made = self.db.eval(
                _FENCED_WRITE, 3, keys.remaining, keys.ledger, keys.fence_seen, *args
            )
            if not int(made):
                raise Conflict(f"fenced off: token {fence} lost its lease to a newer holder")
        else:
            with self.db.pipeline(transaction=False) as pipe:
                pipe.set(keys.remaining, remaining - 1).rpush(keys.ledger, _entry(sale))
                pipe.execute()
        attempt.record(Step.WRITE, value=remaining - 1, seat=seen.seat)
        attempt.unlocked()  # recorded first: the next holder enters as this ends
        self._unlock()
        return seen.seat

    def _take(self, token: str, patience: float) -> bool:
        deadline = time.monotonic() + patience
        lease_ms = max(1, int(self.lease * 1000))
        while not self.db.set(self.keys.lock, token, nx=True, px=lease_ms):
            if time.monotonic() >= deadline:
                return False
            time.sleep(LOCK_POLL_S)
        return True

    def _unlock(self) -> None:
        while self._held:
            self.db.eval(_UNLOCK, 1, self.keys.lock, self._held.pop())

    def abandon(self) -> None:
        with contextlib.suppress(Exception):
            self._unlock()
        self._held.clear()

    # In the parent.

    def _vet(self, db: Any) -> set[str]:
        """ticketsim's keys that are there (a rehearsal's its buyer did not live to
        remove among them); :class:`StoreError` if the prefix holds keys ticketsim did
        not make."""
        found = {key.decode() for key in db.scan_iter(match=PREFIX + "*", count=1000)}
        if not found:
            return found
        foreign = {key for key in found - set(KEYS) if not is_rehearsal_key(key)}
        if db.get(MADE_BY) != b"ticketsim" or foreign:
            raise StoreError(
                redacted(self.url),
                f"holds keys under {PREFIX!r} that ticketsim did not make "
                f"({', '.join(sorted(foreign) or sorted(found))})",
                "use another Redis database (…/1, …/2); ticketsim never changes others' keys",
            )
        return found

    def room(self) -> Room | None:
        import redis  # noqa: PLC0415 - imported by the connection already

        with contextlib.closing(connect(self.url)) as db:
            try:
                limit = int(db.config_get("maxclients")["maxclients"])
                # Not this client, gone before the buyers connect.
                used = int(db.info("clients")["connected_clients"]) - 1
            except (redis.RedisError, KeyError, ValueError):
                return None  # CONFIG refused or renamed: a managed server's own business
        return Room(limit - used, f"maxclients is {limit} and {used} other client(s) are connected")

    def load(self, initial: dbfile.TicketDB) -> None:
        with contextlib.closing(connect(self.url)) as db, _refusals(self.url):
            found = self._vet(db)
            # One transaction with the writes: a server that refuses them (full memory)
            # refuses it whole, and the sale that was there stays.
            with db.pipeline() as pipe:
                if found:
                    pipe.delete(*KEYS, *(key for key in found if is_rehearsal_key(key)))
                pipe.set(MADE_BY, "ticketsim")
                pipe.set(TICKETS, initial.tickets)
                pipe.set(REMAINING, initial.remaining)
                pipe.set(EVENT, initial.event)
                if initial.ledger:
                    pipe.rpush(LEDGER, *(_entry(s) for s in initial.ledger))
                pipe.execute()

    def write_back(
        self, path: str, initial: dbfile.TicketDB, history: Sequence[Event]
    ) -> str | None:
        if self.detached:
            # The user's store outlives the run: what a killed buyer's rehearsal left
            # goes now (a private server goes with the run). Not reachable: the run's
            # own errors say so.
            try:
                with contextlib.closing(connect(self.url)) as db:
                    sweep_rehearsals(db)
            except (StoreError, ServerUnavailable):
                pass
            except Exception as exc:  # a client error mid-sweep, not a bug of ours
                if not _client_error(exc):
                    raise
        return super().write_back(path, initial, history)

    def snapshot(self) -> dbfile.TicketDB:
        with contextlib.closing(connect(self.url)) as db, _refusals(self.url):
            if not self._vet(db):
                raise StoreError(
                    redacted(self.url),
                    "holds no sale of ticketsim's",
                    "make one with 'ticketsim reset --store'",
                )
            with db.pipeline() as pipe:
                tickets, remaining, event, entries = (
                    pipe.get(TICKETS).get(REMAINING).get(EVENT).lrange(LEDGER, 0, -1).execute()
                )
        return sale_of(
            redacted(self.url),
            _whole(_text(tickets)),
            _whole(_text(remaining)),
            _text(event),
            (_fields(entry) for entry in entries),
        )
