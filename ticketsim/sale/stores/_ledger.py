"""The file store's fast path: a sale reads and writes only what changed.

A buyer reads the count from the db's first line and, when a ticket is left, the
ledger's lines after it, decoding only those appended since its process last read the
db (:class:`LedgerIndex`); it sells by writing the file back with one more line, the
ledger's bytes as read, neither decoded nor encoded nor copied. A db not in
ticketsim's layout is read whole, and written whole. The format itself is
:mod:`ticketsim.core.db`'s.

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Final

from ticketsim.core import db as dbfile
from ticketsim.core.frozen import field, frozen, replace
from ticketsim.sale.stores.base import Seen

if TYPE_CHECKING:
    from io import BufferedReader


@frozen(slots=True)
class WholeSeen(Seen):
    """A read of the whole db, fully decoded: a db not in ticketsim's layout, or any db
    the naive file store reads."""

    db: dbfile.TicketDB = field(compare=False, repr=False)

    @classmethod
    def of(cls, db: dbfile.TicketDB) -> WholeSeen:
        seat = db.next_seat() if db.remaining > 0 else 0
        return cls(tickets=db.tickets, remaining=db.remaining, seat=seat, db=db)


@frozen(slots=True)
class LedgerSeen(Seen):
    """A read of a db in ticketsim's layout: its header, decoded, and its ledger's
    lines as they are in the file, to which :func:`append_sale` adds the sale."""

    #: The header line, decoded (its ``ledger`` is not: it is ``rest[:body_end]``).
    head: dbfile.TicketDB = field(compare=False, repr=False)
    #: The file's bytes after its first line, in a buffer that may run on past them
    #: (:meth:`LedgerIndex.buffer`).
    rest: bytes | bytearray = field(default=b"", compare=False, repr=False)
    body_end: int = 0


_SEP_BYTES: Final = dbfile.LEDGER_SEP.encode()
#: A read buffer's room beyond the db it is made for: as much again as the db, at least
#: this much and at most that much.
_BUFFER_MIN: Final = 1 << 16
_BUFFER_ROOM: Final = 1 << 20
#: How a db in ticketsim's layout ends: after its last sale line, or right after the
#: first line when nothing is sold.
_END_BYTES: Final = f"\n{dbfile.LEDGER_CLOSE}".encode()
_EMPTY_BYTES: Final = dbfile.LEDGER_CLOSE.encode()


class LedgerIndex:
    """The seats in a db's ledger, kept by one process from one read to the next.

    While a sale runs the ledger only grows, so a read decodes just the lines appended
    since this process last read or wrote the db; a ledger that changed any other way
    (a reset, a refund, another layout) is decoded afresh. Never shared: each process
    has its own (a pickled index arrives empty).

    The ledger it knows is ``data[:end]`` (the bytes of its last read, kept, not
    copied) followed by ``tail`` (the line this process appended since). A read
    compares the new bytes with it in place, and goes into the other of two buffers
    the index keeps (:meth:`buffer`): a sale allocates nothing the size of the ledger,
    because fresh pages for a few hundred kilobytes cost more than the read.
    """

    __slots__ = ("_data", "_end", "_lowest", "_spare", "_tail", "_taken")

    def __init__(self) -> None:
        self._data: bytes | bytearray = b""
        self._end, self._tail = 0, b""
        self._spare = bytearray()
        self._taken: set[int] = set()
        self._lowest = 1

    def __reduce__(self) -> tuple[type[LedgerIndex], tuple[()]]:
        return LedgerIndex, ()

    def buffer(self, size: int) -> bytearray:
        """A buffer of at least ``size`` bytes for the next read: never the one whose
        bytes this index knows, so that the read can be compared with them. Made with
        room to spare (up to :data:`_BUFFER_ROOM` more), so that a growing ledger seldom
        needs a new one, and made anew when far larger than the db has become."""
        room = size + min(max(size, _BUFFER_MIN), _BUFFER_ROOM)
        spare = self._spare
        if spare is self._data or not size <= len(spare) <= 2 * room:
            spare = self._spare = bytearray(room)
        return spare

    def lowest_free(self, data: bytes | bytearray, end: int, source: str) -> int:
        """The lowest seat not held in the ledger whose sale lines are ``data[:end]``."""
        new = self._unseen(data, end)
        start = 0 if new is None else new
        seats = dbfile.ledger_seats(data[start:end], source) if end > start else []
        # Only once every new line decoded does the index change: a read of a bad db
        # must leave it as it was, or a later good read would be compared with a
        # ledger whose seats it no longer holds.
        if new is None:
            self._taken, self._lowest = set(seats), 1
        else:
            self._taken.update(seats)
        self._know(data, end)
        self._tail = b""
        while self._lowest in self._taken:
            self._lowest += 1
        return self._lowest

    def _unseen(self, data: bytes | bytearray, end: int) -> int | None:
        """Where the lines past the ledger this index knows start in ``data``, or
        ``None`` if ``data[:end]`` does not start with that ledger."""
        base = memoryview(self._data)[: self._end]
        known = len(base) + len(self._tail)
        if not known:
            return 0
        if (
            end < known
            or not data.startswith(base, 0, end)
            or not data.startswith(self._tail, len(base), end)
        ):
            return None
        if end == known:
            return end
        if not data.startswith(_SEP_BYTES, known, end):
            return None
        return known + len(_SEP_BYTES)

    def _know(self, data: bytes | bytearray, end: int) -> None:
        old, self._data, self._end = self._data, data, end
        if isinstance(old, bytearray) and old is not data:
            self._spare = old  # the buffer of the read before: the next read's

    def appended(self, data: bytes | bytearray, end: int, line: bytes, seat: int) -> None:
        """This process wrote the ledger ``data[:end]`` of its last read plus ``line``,
        the sale of ``seat``."""
        self._know(data, end)
        self._tail = _SEP_BYTES + line if end else line
        self._taken.add(seat)


def read_for_sale(path: str | os.PathLike[str], index: LedgerIndex) -> Seen:
    """Read the db for a sale: a :class:`LedgerSeen` if it is in ticketsim's layout,
    else a :class:`WholeSeen` of the whole db, fully validated.

    A layout read comes from one open file (a writer replaces the file, never changes
    it in place, so its lines are of one version): the first line, and only if a ticket
    is left the ledger after it, whose new lines are decoded through ``index``.
    """
    source = os.fspath(path)
    with dbfile.open_db(source) as handle:
        head = dbfile.read_head(handle, source)
        if head is not None and head.remaining <= 0:
            return LedgerSeen(head.tickets, head.remaining, 0, head)
        if head is not None:
            rest, size = _read_rest_into(handle, source, index)
            end = _body_end(rest, size)
            if end is not None:
                seat = index.lowest_free(rest, end, source)
                return LedgerSeen(head.tickets, head.remaining, seat, head, rest, end)
        db = dbfile.load_from(handle, source)
    return WholeSeen.of(db)


def _read_rest_into(
    handle: BufferedReader, source: str, index: LedgerIndex
) -> tuple[bytes | bytearray, int]:
    """:func:`~ticketsim.core.db.read_rest`, into a buffer of ``index``'s: the buffer
    and how many of its bytes were read (a fresh ``bytes`` if the file grew as it was
    read)."""
    try:
        at = handle.tell()
        size = max(0, min(os.fstat(handle.fileno()).st_size, dbfile.MAX_DB_BYTES) - at)
        # One byte more than the file holds: a full buffer means it grew meanwhile.
        buffer = index.buffer(size + 1)
        got = handle.readinto(memoryview(buffer)[: size + 1])
    except OSError as exc:
        raise dbfile.unreadable(source, exc) from None
    if got <= size:
        return buffer, got
    handle.seek(at)
    data = dbfile.read_rest(handle, source)
    return data, len(data)


def _body_end(rest: bytes | bytearray, size: int) -> int | None:
    """Where the sale lines end in ``rest[:size]``, what follows the first line, if that
    is in ticketsim's layout (sale lines, a newline, the closing line), else ``None``."""
    if size == len(_EMPTY_BYTES) and rest.startswith(_EMPTY_BYTES):
        return 0
    if size == len(_END_BYTES) or not rest.endswith(_END_BYTES, 0, size):
        return None
    return size - len(_END_BYTES)


def read_remaining(path: str | os.PathLike[str]) -> int:
    """The remaining count, from the first line alone when the db is in ticketsim's layout."""
    source = os.fspath(path)
    with dbfile.open_db(source) as handle:
        head = dbfile.read_head(handle, source)
    return head.remaining if head is not None else dbfile.load(source).remaining


def append_sale(
    path: str | os.PathLike[str],
    seen: Seen,
    sale: dbfile.Sale,
    index: LedgerIndex,
    leftovers: list[str] | None = None,
) -> None:
    """Write the db ``seen`` was read from plus ``sale`` atomically, as
    :func:`~ticketsim.core.db.write_atomic` does; from a :class:`LedgerSeen`, by adding
    one line to the ledger's bytes as read, which are written from where they lie. With
    ``leftovers``, the old file is left for the caller to remove (``replace_bytes``)."""
    if isinstance(seen, WholeSeen):  # another layout, read whole: rare, and done at once
        dbfile.write_atomic(path, seen.db.sell(sale))
        return
    if not isinstance(seen, LedgerSeen):
        raise TypeError(f"a file store cannot sell on the strength of {seen!r}")
    line = dbfile.sale_line(sale).encode()
    dbfile.replace_db(path, _appended(seen, line), leftovers=leftovers)
    index.appended(seen.rest, seen.body_end, line, sale.seat)


def rehearse_sale(path: str | os.PathLike[str], index: LedgerIndex, pid: int) -> None:
    """Everything a sale by process ``pid`` does but the rename: read the db, then write
    what the sale would to a temp file, and remove it. The db is left as it was.

    A freshly started buyer's first sale runs code and touches memory for the first
    time, and takes longer than its later ones; this is how it pays that before the
    sale opens instead of inside its critical section.
    """
    seen = read_for_sale(path, index)
    if isinstance(seen, LedgerSeen) and seen.seat:
        line = dbfile.sale_line(dbfile.Sale("rehearsal", seen.seat, pid, time.time())).encode()
        dbfile.replace_db(path, _appended(seen, line), dry_run=True)
        index.buffer(seen.body_end + len(_END_BYTES) + 1)  # the next read's, touched now


def _appended(seen: LedgerSeen, line: bytes) -> tuple[bytes, memoryview, bytes]:
    """The file ``seen`` was read from, with one more sale line and one ticket fewer."""
    head = dbfile.head_line(replace(seen.head, remaining=seen.remaining - 1)) + "\n"
    body = memoryview(seen.rest)[: seen.body_end]
    after = (_SEP_BYTES + line if seen.body_end else line) + _END_BYTES
    return head.encode(), body, after
