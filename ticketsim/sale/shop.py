"""The exercises' shop: a ticket count and its sales in one small JSON file, each
operation one read or one write of it, and a lock of two kinds (see
:mod:`ticketsim.search.exercises`). Buyer processes import it: standard library and
filelock only.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from filelock import FileLock

from ticketsim.sale.yours import locked

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Tickets every exercise's shop opens with.
TICKETS = 1


def open_shop() -> str:
    """A fresh shop, in place of the last one; its file's path."""
    path = Path(tempfile.gettempdir()) / f"ticketsim-exercise-{os.getpid()}.json"
    _save(str(path), {"remaining": TICKETS, "sold": [], "lease": None, "fence": 0})
    return str(path)


def _load(path: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data


def _save(path: str, data: dict[str, Any]) -> None:
    temporary = Path(f"{path}.new")
    temporary.write_text(json.dumps(data), encoding="utf-8")
    temporary.replace(path)


def remaining(path: str) -> int:
    """Read the count."""
    return int(_load(path)["remaining"])


def set_remaining(path: str, value: int) -> None:
    """Write the count."""
    data = _load(path)
    data["remaining"] = value
    _save(path, data)


def record_sale(path: str, buyer: int, seat: int) -> None:
    """Write a sale into the ledger."""
    data = _load(path)
    data["sold"].append([buyer, seat])
    _save(path, data)


def sales(path: str) -> list[tuple[int, int]]:
    """Every sale the shop holds, as ``(buyer, seat)``."""
    return [(int(b), int(s)) for b, s in _load(path)["sold"]]


#: What reading a shop's file raises when a buyer has deleted it or written over it.
_UNREADABLE: Final = (OSError, ValueError, KeyError, TypeError)


def sales_left(path: str) -> list[tuple[int, int]]:
    """:func:`sales`, or none when a buyer left the file unreadable: :func:`intact`
    says so, as a broken invariant of the buyer's, not of whoever lists the sales."""
    try:
        return sales(path)
    except _UNREADABLE:
        return []


def intact(path: str) -> str | None:
    """``None`` while the shop's file still holds a shop; else what a buyer did to it."""
    try:
        sales(path)
    except _UNREADABLE as exc:
        return f"the shop's file was left unreadable ({type(exc).__name__}: {exc})"
    return None


@contextlib.contextmanager
def lock(path: str) -> Iterator[None]:
    """The shop's lock, a lock file beside it: ``with lock(path): ...``. Under
    ticketsim's scheduler a buyer that finds it held waits its turn (``race.locked``)."""
    with locked(FileLock(f"{path}.lock", timeout=10), "shop lock"):
        yield


def _file_lock(path: str) -> FileLock:
    """The same lock file, for the shop's own short critical sections."""
    return FileLock(f"{path}.lock", timeout=10)


def take_lease(path: str, buyer: int, patience: int = 1) -> int | None:
    """Try the shop's lease lock once: the fencing token it gives, or ``None`` while
    another holds it. A lease ends after ``patience`` refused tries by others (a clock
    that ticks only when someone waits): its holder is not told."""
    with _file_lock(path):
        data = _load(path)
        lease = data["lease"]
        if lease is not None and lease["holder"] != buyer and lease["left"] > 0:
            lease["left"] -= 1
            _save(path, data)
            return None
        data["fence"] += 1
        data["lease"] = {"holder": buyer, "left": patience, "fence": data["fence"]}
        _save(path, data)
        return int(data["fence"])


def sell_fenced(path: str, buyer: int, seat: int, fence: int) -> bool:
    """Sell only if ``fence`` is still the newest token given: whether it sold."""
    with _file_lock(path):
        data = _load(path)
        if fence != data["fence"] or data["remaining"] <= 0:
            return False
        data["remaining"] -= 1
        data["sold"].append([buyer, seat])
        _save(path, data)
        return True
