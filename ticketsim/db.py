"""The ticket db: one JSON file, and the only module that reads or writes it.

Format (``ticketsim/1``)::

    {
      "format": "ticketsim/1",
      "event": "Concert",
      "tickets": 10,
      "remaining": 9,
      "ledger": [{"buyer": "buyer-4", "seat": 1, "pid": 4242, "time": 1795000000.25}]
    }

``tickets`` is how many were put on sale, ``remaining`` how many are left, and
``ledger`` holds one entry per recorded sale. Seats are numbered from 1; a buyer
takes the lowest seat not in the ledger it read (``tickets - remaining + 1`` while
nothing has been refunded), so two buyers who read the same db take the same seat.

This module validates structure and types only. Whether the numbers agree with
each other (``remaining + len(ledger) == tickets``, no seat twice) is an invariant
of the sale, and the checker owns it (:func:`ticketsim.checker.check_db`).

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from ticketsim._files import replace_text, temp_owner
from ticketsim._values import seconds
from ticketsim.errors import DbError, DbWriteError

FORMAT: Final = "ticketsim/1"
DEFAULT_EVENT: Final = "Concert"
DEFAULT_DB: Final = Path("db") / "tickets.json"
#: A ticket db with a million sales is about 80 MB; anything larger is not one.
MAX_DB_BYTES: Final = 128 * 1024 * 1024
_KEYS: Final = frozenset({"format", "event", "tickets", "remaining", "ledger"})
_SALE_KEYS: Final = frozenset({"buyer", "seat", "pid", "time"})


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
            "ledger": [sale.to_json() for sale in self.ledger],
        }


def dumps(db: TicketDB) -> str:
    """Serialise a db the one way ticketsim writes it (stable key order, newline at end)."""
    return json.dumps(db.to_json(), indent=2) + "\n"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


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
    if not text.strip():
        raise DbError(source, "the file is empty")
    if text.startswith("\ufeff"):
        raise DbError(source, "the file starts with a byte-order mark; save it as plain UTF-8")
    try:
        raw = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        # The C scanner recurses per nesting level; a hostile file must not crash us.
        raise DbError(source, "nested too deeply to be a ticket db") from None
    except ValueError as exc:
        raise DbError(source, f"not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise DbError(source, f"the top level must be a JSON object, got {type(raw).__name__}")
    missing = (_KEYS - {"format"}) - raw.keys()
    if missing:
        raise DbError(source, f"lacks the key(s) {', '.join(sorted(missing))}")
    fmt = raw.get("format", FORMAT)
    if fmt != FORMAT:
        raise DbError(source, f"format={fmt!r} is not {FORMAT!r}")
    if not isinstance(raw["event"], str):
        raise DbError(source, "event must be a string")
    ledger = raw["ledger"]
    if not isinstance(ledger, list):
        raise DbError(source, f"ledger must be a list, got {type(ledger).__name__}")
    return TicketDB(
        tickets=_int(source, "tickets", raw["tickets"]),
        remaining=_int(source, "remaining", raw["remaining"]),
        ledger=tuple(_sale(source, i, sale) for i, sale in enumerate(ledger)),
        event=raw["event"],
    )


def read_text(path: str | os.PathLike[str]) -> str:
    """The db file's text, with every way of not being a readable file turned into DbError."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            data = handle.read(MAX_DB_BYTES + 1)
    except FileNotFoundError:
        raise DbError(source, "no such file; run without --keep to create it") from None
    except IsADirectoryError:
        raise DbError(source, "is a directory; give the path of a .json file") from None
    except PermissionError:
        raise DbError(source, "permission denied; check the file's owner and mode") from None
    except OSError as exc:
        raise DbError(source, f"cannot be read ({exc.strerror or exc})") from None
    if len(data) > MAX_DB_BYTES:
        raise DbError(source, f"larger than {MAX_DB_BYTES} bytes; not a ticket db")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise DbError(source, "is not UTF-8 text") from None


def load(path: str | os.PathLike[str]) -> TicketDB:
    """Read and validate the db at ``path``."""
    return parse(read_text(path), source=os.fspath(path))


def write_atomic(path: str | os.PathLike[str], db: TicketDB) -> None:
    """Replace the db with ``db`` so that every reader sees the old file or the new one
    (:func:`ticketsim._files.replace_text`); a failure is a :class:`DbWriteError` and
    leaves the old db as it was, with no temp file behind."""
    try:
        replace_text(path, dumps(db))
    except DbWriteError:
        raise
    except OSError as exc:
        raise DbWriteError(os.fspath(path), exc.strerror or str(exc)) from exc


def sweep_temp_files(path: str | os.PathLike[str]) -> list[str]:
    """Remove the temp files that writers of this db left when they were killed mid-write.

    Only files whose writer process is gone are removed: another program may be in the
    middle of a write. Returns the names removed.
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
        if pid is None:
            continue
        try:
            os.kill(pid, 0)
            continue  # the writer is alive (or its pid was reused): leave the file
        except ProcessLookupError:
            pass
        except PermissionError:
            continue  # alive, and someone else's
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, name))
            removed.append(name)
    return removed


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
