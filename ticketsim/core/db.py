"""The ticket db: one JSON file, and the only module that reads or writes it.

Format (``ticketsim/1``)::

    {"format": "ticketsim/1", "event": "Concert", "tickets": 10, "remaining": 8, "ledger": [
      {"buyer": "buyer-4", "seat": 1, "pid": 4242, "time": 1795000000.25},
      {"buyer": "buyer-2", "seat": 2, "pid": 4243, "time": 1795000000.26}
    ]}

``tickets`` is how many were put on sale, ``remaining`` how many are left, and
``ledger`` holds one entry per recorded sale. Seats are numbered from 1; a buyer
takes the lowest seat not in the ledger it read (``tickets - remaining + 1`` while
nothing has been refunded), so two buyers who read the same db take the same seat.

Any JSON with these keys is a db; other top-level keys are kept as they are, written
back after ``remaining``, and a key given twice in one object is refused as ambiguous.
ticketsim writes it in the layout above: the
header on the first line, one sale per line. That layout is what keeps a sale's cost
flat as the ledger grows: a buyer reads the count from the first line, decodes only
the sales appended since its process last read the db (:class:`LedgerIndex`), and
appends its own sale as one more line instead of encoding the ledger again.

This module validates structure and types only. Whether the numbers agree with
each other (``remaining + len(ledger) == tickets``, no seat twice) is an invariant
of the sale, and the checker owns it (:func:`ticketsim.analysis.checker.check_db`).

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from ticketsim.core._files import kind, open_regular, replace_bytes, temp_owner
from ticketsim.core._values import seconds
from ticketsim.errors import DbError, DbWriteError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from io import BufferedReader

    from ticketsim.core._files import Buffer

FORMAT: Final = "ticketsim/1"
DEFAULT_EVENT: Final = "Concert"
#: A ticket db with a million sales is about 80 MB; anything larger is not one.
MAX_DB_BYTES: Final = 128 * 1024 * 1024
_KEYS: Final = frozenset({"format", "event", "tickets", "remaining", "ledger"})
_SALE_KEYS: Final = frozenset({"buyer", "seat", "pid", "time"})
#: The layout ticketsim writes (see the module's docstring): the first line ends
#: with ``_LEDGER_OPEN``, sales are ``_INDENT`` + one JSON object per line, joined by
#: ``_SEP``, and the file ends with ``_CLOSE`` on a line of its own.
_LEDGER_OPEN: Final = ', "ledger": ['
_INDENT: Final = "  "
_SEP: Final = ",\n"
_CLOSE: Final = "]}\n"
#: The first line of a db is short; one longer than this is not in ticketsim's layout.
_MAX_HEAD_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class Sale:
    """One ledger entry: who bought which seat, from which process, when (epoch seconds)."""

    buyer: str
    seat: int
    pid: int
    time: float

    def to_json(self) -> dict[str, Any]:
        return {"buyer": self.buyer, "seat": self.seat, "pid": self.pid, "time": self.time}


@dataclass(frozen=True, slots=True)
class TicketDB:
    """The whole content of a ticket db file."""

    tickets: int
    remaining: int
    ledger: tuple[Sale, ...] = ()
    event: str = DEFAULT_EVENT
    format: str = field(default=FORMAT)
    #: Top-level keys ticketsim does not know, in the file's order, each with its value
    #: as JSON text: someone else's, so written back as they were.
    extra: tuple[tuple[str, str], ...] = ()

    @classmethod
    def fresh(cls, tickets: int, event: str = DEFAULT_EVENT) -> TicketDB:
        return cls(tickets=tickets, remaining=tickets, event=event)

    def next_seat(self) -> int:
        """The seat a buyer takes after reading this db: the lowest seat not in the
        ledger. Seats are sold in order, so that is ``tickets - remaining + 1`` until a
        refund frees a lower one; a db read without its ledger (the shared-memory
        stores) uses that formula. Two buyers who read the same db take the same seat."""
        if not self.ledger:
            return self.tickets - self.remaining + 1
        taken = {sale.seat for sale in self.ledger}
        return next(seat for seat in range(1, len(taken) + 2) if seat not in taken)

    def sell(self, sale: Sale) -> TicketDB:
        """This db after one more sale; it does not check that a ticket is left."""
        return replace(self, remaining=self.remaining - 1, ledger=(*self.ledger, sale))

    def refund(self, seat: int) -> TicketDB:
        """This db with the sale of ``seat`` undone; ``ValueError`` if nobody holds it."""
        kept = tuple(sale for sale in self.ledger if sale.seat != seat)
        if len(kept) == len(self.ledger):
            raise ValueError(f"seat={seat} is not sold; refund a seat from the ledger")
        return replace(self, remaining=self.remaining + len(self.ledger) - len(kept), ledger=kept)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "event": self.event,
            "tickets": self.tickets,
            "remaining": self.remaining,
            **{key: json.loads(value) for key, value in self.extra},
            "ledger": [sale.to_json() for sale in self.ledger],
        }


def nth_free_seat(taken: Sequence[int], n: int) -> int:
    """The ``n``-th (from 0) seat, counting from seat 1, that is not in ``taken`` (sorted):
    the seat a buyer takes when it knows only how many were sold since the sale opened,
    as the shared-memory stores do. For a fresh db that is ``n + 1``."""
    seat = n + 1
    for held in taken:
        if held > seat:
            break
        seat += 1
    return seat


def dumps(db: TicketDB) -> str:
    """Serialise a db the one way ticketsim writes it: stable key order, the header on
    the first line, one sale per line, a newline at the end."""
    return _text(_head_line(db), _SEP.join(_sale_line(sale) for sale in db.ledger))


def _head_line(db: TicketDB) -> str:
    head = {"format": db.format, "event": db.event, "tickets": db.tickets}
    line = json.dumps({**head, "remaining": db.remaining})[:-1]
    for key, value in db.extra:
        line += f", {json.dumps(key)}: {value}"
    return line + _LEDGER_OPEN


def _sale_line(sale: Sale) -> str:
    return _INDENT + json.dumps(sale.to_json())


def _text(head: str, body: str) -> str:
    return f"{head}\n{body}\n{_CLOSE}" if body else f"{head}\n{_CLOSE}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


class DuplicateKey(ValueError):
    """An object of a JSON document gives one key twice: which value is meant is
    ambiguous (``json`` would silently keep the last)."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"the key {json.dumps(key)} appears twice in one object (ambiguous)")


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` that refuses a key given twice (:class:`DuplicateKey`)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return obj


def _loads(text: str | bytes | bytearray) -> Any:
    return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=unique_keys)


def _int(source: str, where: str, value: object) -> int:
    # bool is an int subclass; a db that says "tickets": true is corrupt, not 1.
    if type(value) is not int:
        raise DbError(source, f"{where} must be a whole number, got {json.dumps(value)}")
    return value


def _sale(source: str, index: int, raw: object) -> Sale:
    where = f"ledger[{index}]"
    if not isinstance(raw, dict):
        raise DbError(source, f"{where} must be an object, got {json.dumps(raw)[:40]}")
    missing = _SALE_KEYS - raw.keys()
    if missing:
        raise DbError(source, f"{where} lacks {', '.join(sorted(missing))}")
    buyer, when = raw["buyer"], raw["time"]
    if not isinstance(buyer, str) or not buyer:
        raise DbError(source, f"{where}.buyer must be a non-empty string")
    when = seconds(when)
    if when is None:
        raise DbError(source, f"{where}.time must be a number of seconds")
    return Sale(
        buyer=buyer,
        seat=_int(source, f"{where}.seat", raw["seat"]),
        pid=_int(source, f"{where}.pid", raw["pid"]),
        time=when,
    )


def parse(text: str, *, source: str = "<db>") -> TicketDB:
    """Parse and validate the text of a ticket db; raise :class:`DbError` naming ``source``."""
    raw = _decode(text, source)
    head = _head(raw, source, required=_KEYS - {"format"})
    ledger = raw["ledger"]
    if not isinstance(ledger, list):
        raise DbError(source, f"ledger must be a list, got {type(ledger).__name__}")
    return replace(head, ledger=tuple(_sale(source, i, sale) for i, sale in enumerate(ledger)))


def _decode(text: str, source: str) -> dict[str, Any]:
    if not text.strip():
        raise DbError(source, "the file is empty")
    if text.startswith("\ufeff"):
        raise DbError(source, "the file starts with a byte-order mark", "save it as plain UTF-8")
    try:
        raw = _loads(text)
    except RecursionError:
        # The C scanner recurses per nesting level; a hostile file must not crash us.
        raise DbError(source, "nested too deeply to be a ticket db") from None
    except DuplicateKey as exc:
        raise DbError(source, str(exc), "remove one of the two") from None
    except ValueError as exc:
        raise DbError(source, f"not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise DbError(source, f"the top level must be a JSON object, got {type(raw).__name__}")
    return raw


def _head(raw: dict[str, Any], source: str, required: frozenset[str]) -> TicketDB:
    """Everything but the ledger, validated."""
    missing = required - raw.keys()
    if missing:
        raise DbError(source, f"lacks the key(s) {', '.join(sorted(missing))}")
    fmt = raw.get("format", FORMAT)
    if fmt != FORMAT:
        raise DbError(source, f"format={fmt!r} is not {FORMAT!r}")
    if not isinstance(raw["event"], str):
        raise DbError(source, "event must be a string")
    return TicketDB(
        tickets=_int(source, "tickets", raw["tickets"]),
        remaining=_int(source, "remaining", raw["remaining"]),
        event=raw["event"],
        extra=tuple((key, json.dumps(value)) for key, value in raw.items() if key not in _KEYS),
    )


def read_text(path: str | os.PathLike[str]) -> str:
    """The db file's text, with every way of not being a readable file turned into DbError."""
    source = os.fspath(path)
    with _open(source) as handle:
        return _utf8(source, _read_rest(handle, source))


def _open(source: str) -> BufferedReader:
    """The db file opened for reading; every way of not being a readable file is a DbError.

    A plain function, not a context manager: a buyer's ``check`` opens the db once,
    and a generator-based ``with`` cost it a fifth of that step.
    """
    try:
        return open_regular(source, lambda mode: _not_a_file(source, mode))
    except OSError as exc:
        raise _unreadable(source, exc) from None


def _not_a_file(source: str, mode: int) -> DbError:
    return DbError(source, f"is {kind(mode)}, not a regular file", "give the path of a .json file")


#: What each way of not reaching a file means, and what to do about it.
_UNREACHABLE: Final = {
    errno.ENAMETOOLONG: ("the name is longer than the system allows", "give a shorter one"),
    errno.ELOOP: ("is a loop of symlinks", "give the path of a regular file"),
    errno.ENOTDIR: ("a part of the path is not a folder", "give a path through folders"),
}


def _unreadable(source: str, exc: OSError) -> DbError:
    if isinstance(exc, FileNotFoundError):
        return DbError(source, "no such file", "run without --keep to create it")
    if isinstance(exc, PermissionError):
        return DbError(source, "permission denied", "check the file's owner and mode")
    if exc.errno in _UNREACHABLE:
        return DbError(source, *_UNREACHABLE[exc.errno])
    return DbError(source, f"cannot be read ({exc.strerror or exc})")


def _read_rest(handle: BufferedReader, source: str) -> bytes:
    """The rest of the file from where ``handle`` is; a DbError past ``MAX_DB_BYTES`` in all."""
    try:
        at = handle.tell()
        # read(n) reserves n bytes up front: ask for what the file holds, and only then
        # for what a concurrent writer may have added.
        size = max(0, min(os.fstat(handle.fileno()).st_size, MAX_DB_BYTES) - at)
        data = handle.read(size + 1)
        if len(data) > size:
            data += handle.read(MAX_DB_BYTES + 1 - at - len(data))
    except OSError as exc:
        raise _unreadable(source, exc) from None
    if at + len(data) > MAX_DB_BYTES:
        raise DbError(source, f"larger than {MAX_DB_BYTES} bytes, the most a db may be")
    return data


def _utf8(source: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DbError(source, "is not UTF-8 text") from None


def load(path: str | os.PathLike[str]) -> TicketDB:
    """Read and validate the db at ``path``."""
    return parse(read_text(path), source=os.fspath(path))


def write_atomic(path: str | os.PathLike[str], db: TicketDB) -> None:
    """Replace the db with ``db`` so that every reader sees the old file or the new one
    (:func:`ticketsim.core._files.replace_bytes`); a failure is a :class:`DbWriteError` and
    leaves the old db as it was, with no temp file behind."""
    _replace(path, (dumps(db).encode("utf-8"),))


def _replace(
    path: str | os.PathLike[str],
    chunks: Sequence[Buffer],
    *,
    dry_run: bool = False,
    leftovers: list[str] | None = None,
) -> None:
    try:
        replace_bytes(path, chunks, dry_run=dry_run, leftovers=leftovers)
    except DbWriteError:
        raise
    except OSError as exc:
        raise DbWriteError(os.fspath(path), exc.strerror or str(exc)) from exc


def sweep_temp_files(path: str | os.PathLike[str]) -> list[str]:
    """Remove the temp files that writers of this db left when they were killed mid-write.

    Only files whose names ticketsim makes (:func:`ticketsim.core._files.temp_owner`), for
    this db, and whose writer process is gone are removed: another program may be in
    the middle of a write, and a file of any other name is not ticketsim's. Returns the
    names removed.
    """
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        pid = temp_owner(name, target)
        if pid is None or not _writer_gone(pid):
            continue
        temp = os.path.join(folder, name)
        with contextlib.suppress(OSError):
            # ticketsim makes regular files only: a folder or a link by that name is not ours.
            if stat.S_ISREG(os.lstat(temp).st_mode):
                os.unlink(temp)
                removed.append(name)
    return removed


def _writer_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False  # alive and someone else's; or no pid at all: not ours to judge
    return False  # alive (or its pid was reused): leave the file


def write_naive(path: str | os.PathLike[str], db: TicketDB) -> None:
    """Write the db the way the tutorial does: truncate, then write.

    ``open(path, "w")`` empties the file before ``json.dump`` fills it, so a reader
    that comes in between sees an empty or partial file (a torn read). Only the
    ``none`` strategy writes this way, to show that second bug.
    """
    try:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(db.to_json(), handle, indent=2)
    except OSError as exc:
        raise DbWriteError(os.fspath(path), exc.strerror or str(exc)) from exc


@dataclass(frozen=True, slots=True)
class Snapshot(TicketDB):
    """A db as a buyer read it for a sale, its ledger not decoded (``ledger`` is empty):
    the counts, the seat a buyer who read it takes, and the ledger's lines as they are
    in the file, to which :func:`append_sale` adds the sale."""

    seat: int = 0
    #: The file's bytes after its first line, in a buffer that may run on past them
    #: (:meth:`LedgerIndex.buffer`); the ledger's lines are ``rest[:body_end]``.
    rest: bytes | bytearray = field(default=b"", compare=False, repr=False)
    body_end: int = 0

    def next_seat(self) -> int:
        return self.seat


_SEP_BYTES: Final = _SEP.encode()
#: A read buffer's room beyond the db it is made for: as much again as the db, at least
#: this much and at most that much.
_BUFFER_MIN: Final = 1 << 16
_BUFFER_ROOM: Final = 1 << 20
#: How a db in ticketsim's layout ends: after its last sale line, or right after the
#: first line when nothing is sold.
_END_BYTES: Final = f"\n{_CLOSE}".encode()
_EMPTY_BYTES: Final = _CLOSE.encode()


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
    because fresh pages for a few hundred kilobytes cost more than the read (a read of
    a 288 KB db took 54 us into a new buffer, 12 us into a reused one).
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
        seats = _seats(data[start:end], source) if end > start else []
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


def _seats(lines: bytes | bytearray, source: str) -> list[int]:
    try:
        rows = _loads(b"[" + lines + b"]")
    except DuplicateKey as exc:
        raise DbError(source, f"a ledger entry: {exc}", "remove one of the two") from None
    except ValueError as exc:
        raise DbError(source, f"the ledger is not valid JSON ({exc})") from None
    seats: list[int] = []
    for row in rows:
        seat = row.get("seat") if isinstance(row, dict) else None
        if not isinstance(seat, int) or isinstance(seat, bool):
            raise DbError(
                source, f"a ledger entry has no whole-number seat: {json.dumps(row)[:60]}"
            )
        seats.append(seat)
    return seats


def _layout_head(line: bytes, source: str) -> TicketDB | None:
    """The header of a db in ticketsim's layout, from its first line, or ``None``."""
    if not line.endswith(_LEDGER_OPEN_BYTES):
        return None
    try:
        head = line[: -len(_LEDGER_OPEN_BYTES)].decode("utf-8")
        raw = _loads(head + "}")
    except (ValueError, RecursionError):
        return None  # read whole, which says what is wrong
    if not isinstance(raw, dict) or "ledger" in raw:
        return None
    return _head(raw, source, required=_KEYS - {"format", "ledger"})


_LEDGER_OPEN_BYTES: Final = _LEDGER_OPEN.encode()


def _first_line(handle: BufferedReader, source: str) -> TicketDB | None:
    """The header, read from the first line alone, if the db is in ticketsim's layout."""
    try:
        line = handle.readline(_MAX_HEAD_BYTES + 1)
    except OSError as exc:
        raise _unreadable(source, exc) from None
    if not line.endswith(b"\n"):
        return None
    return _layout_head(line[:-1], source)


def read_for_sale(path: str | os.PathLike[str], index: LedgerIndex) -> TicketDB:
    """Read the db for a sale: a :class:`Snapshot` if it is in ticketsim's layout, else
    the whole db, fully validated.

    A snapshot comes from one open file (a writer replaces the file, never changes it
    in place, so its lines are of one version): the first line, and only if a ticket is
    left the ledger after it, whose new lines are decoded through ``index``.
    """
    source = os.fspath(path)
    with _open(source) as handle:
        head = _first_line(handle, source)
        if head is not None and head.remaining <= 0:
            return _snapshot(head)
        if head is not None:
            rest, size = _read_rest_into(handle, source, index)
            end = _body_end(rest, size)
            if end is not None:
                seat = index.lowest_free(rest, end, source)
                return _snapshot(head, seat, rest, end)
        handle.seek(0)
        text = _utf8(source, _read_rest(handle, source))
    return parse(text, source=source)


def _snapshot(
    head: TicketDB, seat: int = 0, rest: bytes | bytearray = b"", body_end: int = 0
) -> Snapshot:
    return Snapshot(
        tickets=head.tickets,
        remaining=head.remaining,
        event=head.event,
        format=head.format,
        extra=head.extra,
        seat=seat,
        rest=rest,
        body_end=body_end,
    )


def _read_rest_into(
    handle: BufferedReader, source: str, index: LedgerIndex
) -> tuple[bytes | bytearray, int]:
    """:func:`_read_rest`, into a buffer of ``index``'s: the buffer and how many of its
    bytes were read (a fresh ``bytes`` if the file grew as it was read)."""
    try:
        at = handle.tell()
        size = max(0, min(os.fstat(handle.fileno()).st_size, MAX_DB_BYTES) - at)
        # One byte more than the file holds: a full buffer means it grew meanwhile.
        buffer = index.buffer(size + 1)
        got = handle.readinto(memoryview(buffer)[: size + 1])
    except OSError as exc:
        raise _unreadable(source, exc) from None
    if got <= size:
        return buffer, got
    handle.seek(at)
    data = _read_rest(handle, source)
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
    with _open(source) as handle:
        head = _first_line(handle, source)
    return head.remaining if head is not None else load(source).remaining


def append_sale(
    path: str | os.PathLike[str],
    seen: TicketDB,
    sale: Sale,
    index: LedgerIndex,
    leftovers: list[str] | None = None,
) -> None:
    """Write ``seen`` plus ``sale`` atomically, as :func:`write_atomic` does; from a
    :class:`Snapshot`, by adding one line to the ledger's bytes as read, which are
    written from where they lie, neither decoded nor encoded nor copied. With
    ``leftovers``, the old file is left for the caller to remove (``replace_bytes``)."""
    if not isinstance(seen, Snapshot):  # another layout, read whole: rare, and done at once
        write_atomic(path, seen.sell(sale))
        return
    line = _sale_line(sale).encode()
    _replace(path, _appended(seen, line), leftovers=leftovers)
    index.appended(seen.rest, seen.body_end, line, sale.seat)


def rehearse_sale(path: str | os.PathLike[str], index: LedgerIndex, pid: int) -> None:
    """Everything a sale by process ``pid`` does but the rename: read the db, then write
    what the sale would to a temp file, and remove it. The db is left as it was.

    A freshly started buyer took ~0.5 ms more for its first sale than for later ones
    (code run for the first time, memory touched for the first time); this is how it
    pays that before the sale opens instead of inside its critical section.
    """
    seen = read_for_sale(path, index)
    if isinstance(seen, Snapshot) and seen.seat:
        line = _sale_line(Sale("rehearsal", seen.seat, pid, time.time())).encode()
        _replace(path, _appended(seen, line), dry_run=True)
        index.buffer(seen.body_end + len(_END_BYTES) + 1)  # the next read's, touched now


def _appended(seen: Snapshot, line: bytes) -> tuple[bytes, memoryview, bytes]:
    """The file ``seen`` was read from, with one more sale line and one ticket fewer."""
    head = _head_line(replace(seen, remaining=seen.remaining - 1)) + "\n"
    body = memoryview(seen.rest)[: seen.body_end]
    after = (_SEP_BYTES + line if seen.body_end else line) + _END_BYTES
    return head.encode(), body, after
