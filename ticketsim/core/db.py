"""The ticket db: one JSON file, and the only module that knows its format.

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
the sales appended since its process last read the db, and appends its own sale as
one more line instead of encoding the ledger again. That fast path is the file
store's (:mod:`ticketsim.sale.stores._ledger`); the pieces of the layout it reads and
writes with (:func:`read_head`, :func:`ledger_seats`, :func:`head_line`,
:func:`sale_line`, :func:`replace_db`) are here.

This module validates structure and types only. Whether the numbers agree with
each other (``remaining + len(ledger) == tickets``, no seat twice) is an invariant
of the sale, and the checker owns it (:func:`ticketsim.analysis.checker.check_db`).

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import errno
import json
import os
from typing import TYPE_CHECKING, Any, Final

from ticketsim.core._files import kind, open_regular, replace_bytes, sweep_temp_files
from ticketsim.core._values import seconds, unicode_text
from ticketsim.core.frozen import field, frozen, replace
from ticketsim.errors import DbError, DbWriteError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
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
#: ``LEDGER_SEP``, and the file ends with ``LEDGER_CLOSE`` on a line of its own.
_LEDGER_OPEN: Final = ', "ledger": ['
_INDENT: Final = "  "
LEDGER_SEP: Final = ",\n"
LEDGER_CLOSE: Final = "]}\n"
#: The first line of a db is short; one longer than this is not in ticketsim's layout.
_MAX_HEAD_BYTES: Final = 64 * 1024


@frozen(slots=True)
class Sale:
    """One ledger entry: who bought which seat, from which process, when (epoch seconds)."""

    buyer: str
    seat: int
    pid: int
    time: float

    def to_json(self) -> dict[str, Any]:
        return {"buyer": self.buyer, "seat": self.seat, "pid": self.pid, "time": self.time}


@frozen(slots=True)
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
    return _text(head_line(db), LEDGER_SEP.join(sale_line(sale) for sale in db.ledger))


def head_line(db: TicketDB) -> str:
    head = {"format": db.format, "event": db.event, "tickets": db.tickets}
    line = json.dumps({**head, "remaining": db.remaining})[:-1]
    for key, value in db.extra:
        line += f", {json.dumps(key)}: {value}"
    return line + _LEDGER_OPEN


def sale_line(sale: Sale) -> str:
    return _INDENT + json.dumps(sale.to_json())


def _text(head: str, body: str) -> str:
    return f"{head}\n{body}\n{LEDGER_CLOSE}" if body else f"{head}\n{LEDGER_CLOSE}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def finite_float(text: str) -> float:
    """``parse_float`` that refuses a number too large for a float (``1e400``): Python
    reads it as infinity, which ``json`` would write back as ``Infinity``, a file
    nothing, ticketsim included, reads as JSON again."""
    value = float(text)
    if value - value != 0.0:
        raise ValueError(f"{text[:20]} is too large a number to keep as written")
    return value


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
    return json.loads(
        text,
        parse_constant=_reject_constant,
        parse_float=finite_float,
        object_pairs_hook=unique_keys,
    )


def _unicode(source: str, where: str, text: str) -> None:
    """Text a store keeps must be Unicode (:func:`~ticketsim.core._values.unicode_text`)."""
    if not unicode_text(text):
        shown = text.encode("utf-8", "backslashreplace").decode()
        raise DbError(source, f"{where} ({shown}) holds half a character, which no store keeps")


def _int(source: str, where: str, value: object) -> int:
    # bool is an int subclass; a db that says "tickets": true is corrupt, not 1.
    if type(value) is not int:
        shown = json.dumps(value, default=repr)  # a store's value may be no JSON one
        raise DbError(source, f"{where} must be a whole number, got {shown}")
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
    _unicode(source, f"{where}.buyer", buyer)
    when = seconds(when)
    if when is None:
        raise DbError(source, f"{where}.time must be a number of seconds")
    return Sale(
        buyer=buyer,
        seat=_int(source, f"{where}.seat", raw["seat"]),
        pid=_int(source, f"{where}.pid", raw["pid"]),
        time=when,
    )


def parse(text: str, *, source: str = "<db>", keeping: bool = False) -> TicketDB:
    """Parse and validate the text of a ticket db; raise :class:`DbError` naming ``source``.
    ``keeping``: the db is to be written back (``--keep``), so a key of a sale's that
    ticketsim does not know, which it would drop, is refused too."""
    raw = _decode(text, source)
    head = _head(raw, source, required=_KEYS - {"format"})
    _keepable(raw, source)
    ledger = raw["ledger"]
    if not isinstance(ledger, list):
        raise DbError(source, f"ledger must be a list, got {type(ledger).__name__}")
    sales = tuple(_sale(source, i, sale) for i, sale in enumerate(ledger))
    if keeping:
        _kept_whole(source, ledger)
    return replace(head, ledger=sales)


def _kept_whole(source: str, ledger: list[dict[str, Any]]) -> None:
    """A sale is written back with its four fields: any other key of one would be lost."""
    for i, raw in enumerate(ledger):
        unknown = raw.keys() - _SALE_KEYS
        if unknown:
            raise DbError(
                source,
                f"ledger[{i}] has {', '.join(json.dumps(key) for key in sorted(unknown))}, "
                "which ticketsim does not keep in a sale",
                "remove it, or keep it in a file of its own",
            )


def from_values(
    source: str,
    tickets: object,
    remaining: object,
    event: object,
    ledger: Iterable[tuple[object, object, object, object]],
) -> TicketDB:
    """The db a store's values make (``ledger``: each sale's seat, buyer, pid and time),
    checked as a db file's are: :class:`DbError` naming ``source`` for a value no db
    holds (a count that is no whole number, a sale with no buyer)."""
    head = _head(
        {"tickets": tickets, "remaining": remaining, "event": event},
        source,
        required=_KEYS - {"format", "ledger"},
    )
    _unicode(source, "event", head.event)
    sales = (
        _sale(source, i, {"seat": seat, "buyer": buyer, "pid": pid, "time": at})
        for i, (seat, buyer, pid, at) in enumerate(ledger)
    )
    return replace(head, ledger=tuple(sales))


def _keepable(raw: dict[str, Any], source: str) -> None:
    """What every store must keep of the head, checked when the whole db is (by the
    parent, before and after a sale), not on a buyer's read of its first line: the event
    as Unicode, and the keys kept for another program no deeper than a buyer can read."""
    _unicode(source, "event", raw["event"])
    for key, value in raw.items():
        if key not in _KEYS and _nests_deeper(value, _MAX_DEPTH):
            raise DbError(
                source,
                f"the key {json.dumps(key)} nests deeper than the {_MAX_DEPTH} levels "
                "ticketsim keeps",
                "flatten it, or keep it in a file of its own",
            )


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


#: How deep a value the db keeps for another program may nest: far from the depth at
#: which reading it again exhausts the stack, which is shallower in a buyer, deep in
#: its own calls, than in the parent that accepted the db.
_MAX_DEPTH: Final = 100


def _nests_deeper(value: object, levels: int) -> bool:
    """Whether ``value`` (parsed JSON) has lists or objects nested more than ``levels``
    deep; walked without recursion."""
    todo: list[tuple[object, int]] = [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list)):
            if depth > levels:
                return True
            todo.extend(
                (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return False


def load_from(handle: BufferedReader, source: str) -> TicketDB:
    """The db in the open file ``handle``, read whole from its start and fully validated."""
    handle.seek(0)
    return parse(_utf8(source, read_rest(handle, source)), source=source)


def read_text(path: str | os.PathLike[str]) -> str:
    """The db file's text, with every way of not being a readable file turned into DbError."""
    source = os.fspath(path)
    with open_db(source) as handle:
        return _utf8(source, read_rest(handle, source))


def open_db(source: str) -> BufferedReader:
    """The db file opened for reading; every way of not being a readable file is a DbError.

    A plain function, not a context manager: a buyer's ``check`` opens the db once,
    and a generator-based ``with`` cost it a fifth of that step.
    """
    try:
        return open_regular(source, lambda mode: _not_a_file(source, mode))
    except OSError as exc:
        raise unreadable(source, exc) from None


def _not_a_file(source: str, mode: int) -> DbError:
    return DbError(source, f"is {kind(mode)}, not a regular file", "give the path of a .json file")


#: What each way of not reaching a file means, and what to do about it.
_UNREACHABLE: Final = {
    errno.ENAMETOOLONG: ("the name is longer than the system allows", "give a shorter one"),
    errno.ELOOP: ("is a loop of symlinks", "give the path of a regular file"),
    errno.ENOTDIR: ("a part of the path is not a folder", "give a path through folders"),
}


def unreadable(source: str, exc: OSError) -> DbError:
    if isinstance(exc, FileNotFoundError):
        return DbError(source, "no such file", "run without --keep to create it")
    if isinstance(exc, PermissionError):
        return DbError(source, "permission denied", "check the file's owner and mode")
    if exc.errno in _UNREACHABLE:
        return DbError(source, *_UNREACHABLE[exc.errno])
    return DbError(source, f"cannot be read ({exc.strerror or exc})")


def read_rest(handle: BufferedReader, source: str) -> bytes:
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
        raise unreadable(source, exc) from None
    if at + len(data) > MAX_DB_BYTES:
        raise DbError(source, f"larger than {MAX_DB_BYTES} bytes, the most a db may be")
    return data


def _utf8(source: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DbError(source, "is not UTF-8 text") from None


def load(path: str | os.PathLike[str], *, keeping: bool = False) -> TicketDB:
    """Read and validate the db at ``path`` (``keeping``: see :func:`parse`)."""
    return parse(read_text(path), source=os.fspath(path), keeping=keeping)


def write_atomic(path: str | os.PathLike[str], db: TicketDB) -> None:
    """Replace the db with ``db`` so that every reader sees the old file or the new one
    (:func:`ticketsim.core._files.replace_bytes`); a failure is a :class:`DbWriteError` and
    leaves the old db as it was, with no temp file behind."""
    replace_db(path, (dumps(db).encode("utf-8"),))


def replace_db(
    path: str | os.PathLike[str],
    chunks: Sequence[Buffer],
    *,
    dry_run: bool = False,
    leftovers: list[str] | None = None,
) -> None:
    """Write ``chunks`` as the db's new content atomically (``replace_bytes``), with a
    failure to write turned into a :class:`DbWriteError`."""
    try:
        replace_bytes(path, chunks, dry_run=dry_run, leftovers=leftovers)
    except DbWriteError:
        raise
    except OSError as exc:
        raise DbWriteError(os.fspath(path), exc.strerror or str(exc)) from exc


def make_room(path: str | os.PathLike[str]) -> None:
    """Before a db is written afresh: its folder made if need be (the default db's, on
    first use; the vetting refused any other missing one), and the temp files of
    writers that were killed removed (never a live one's)."""
    os.makedirs(os.path.dirname(os.path.realpath(path)), exist_ok=True)
    sweep_temp_files(path)


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


def ledger_seats(lines: bytes | bytearray, source: str) -> list[int]:
    """The seats of the sale lines ``lines`` (ticketsim's layout, without the brackets)."""
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


def read_head(handle: BufferedReader, source: str) -> TicketDB | None:
    """The header (a db whose ledger is left out), read from the first line alone, if
    the db is in ticketsim's layout; ``None`` otherwise."""
    try:
        line = handle.readline(_MAX_HEAD_BYTES + 1)
    except OSError as exc:
        raise unreadable(source, exc) from None
    if not line.endswith(b"\n"):
        return None
    return _layout_head(line[:-1], source)
