"""A sale of several hosts on one machine's file system: the board of ``--hosts`` for
the db file's strategies (``filelock``), which have no server to keep it in.

Each host sells from its own copy of the db (a lock file guards a file on one file
system only), so this board is ticketsim's bookkeeping, not the tickets: the card,
the hosts, and the history, one JSON line per event appended with ``O_APPEND`` in one
``write``, stamped with this machine's clock (one machine: one clock).

Buyer processes unpickle this board, so it uses the standard library and filelock only.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

from filelock import FileLock

from ticketsim.core.boards import HostRow, SaleCard
from ticketsim.core.events import from_json
from ticketsim.core.frozen import frozen
from ticketsim.sale.boards.base import Board, gate_time, host_taken, reads, sale_moved_on

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ticketsim.core.events import Event

#: Every wait on the board's lock is bounded.
_LOCK_S: Final = 10.0


@frozen
class FolderBoard(Board):
    """The board in ``folder``, a folder ticketsim made for the sale."""

    folder: str
    #: The sale this board writes for (:meth:`Board.bound`); ``None``: whichever.
    sale: str | None = None

    @property
    def shown(self) -> str:
        return self.folder

    def _path(self, name: str) -> Path:
        return Path(self.folder, name)

    def _lock(self) -> FileLock:
        return FileLock(self._path("board.lock"), timeout=_LOCK_S)

    def _write(self, name: str, text: str) -> None:
        temporary = self._path(name + ".new")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(self._path(name))

    def _read(self, name: str) -> str | None:
        try:
            return self._path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def open(self, card: SaleCard) -> None:
        with self._lock():
            for name in ("hosts.json", "started", "history.jsonl"):
                self._path(name).unlink(missing_ok=True)
            self._write("card.json", card.to_text())
            self._write("hosts.json", "[]")

    @reads("sale card")
    def card(self) -> SaleCard | None:
        text = self._read("card.json")
        return None if text is None else SaleCard.from_text(text)

    @reads("host's row")
    def _rows(self) -> list[HostRow]:
        raw = json.loads(self._read("hosts.json") or "[]")
        return [HostRow.from_text(name, json.dumps(row)) for name, row in raw]

    def _save(self, rows: list[HostRow]) -> None:
        self._write("hosts.json", json.dumps([[r.name, json.loads(r.to_text())] for r in rows]))

    def _ours(self) -> bool:
        card = self.card() if self.sale is not None else None
        return self.sale is None or (card is not None and card.id == self.sale)

    def join(self, host: str, count: int) -> int:
        with self._lock():
            if self.started() is not None or not self._ours():
                raise sale_moved_on(self.folder, self.sale)
            rows = self._rows()
            if any(row.name == host for row in rows):
                raise host_taken(self.folder, host)
            first = sum(row.count for row in rows) + 1
            self._save([*rows, HostRow(host, first, count)])
        return first

    def update(self, row: HostRow) -> None:
        with self._lock():
            if self._ours():
                self._save([row if r.name == row.name else r for r in self._rows()])

    @reads("host's row")
    def hosts(self) -> tuple[HostRow, ...]:
        with self._lock():
            return tuple(self._rows())

    @reads("gate's time")
    def start(self) -> float:
        with self._lock():
            started = self.started()
            if started is None:
                started = time.time()
                self._write("started", repr(started))
        return started

    @reads("gate's time")
    def started(self) -> float | None:
        text = self._read("started")
        return None if text is None else gate_time(text)

    def record(self, events: Sequence[Event]) -> None:
        if not self._ours():
            return
        handle = os.open(self._path("history.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            for event in events:
                # Stamped as it is appended, in one write: appends land whole, in order.
                line = json.dumps({**event.to_json(), "t": time.time()}) + "\n"
                data = line.encode()
                if os.write(handle, data) != len(data):
                    raise OSError(f"a short write to {self._path('history.jsonl')}")
        finally:
            os.close(handle)

    @reads("history event")
    def history(self) -> list[Event]:
        text = self._read("history.jsonl") or ""
        # A line still being appended (read mid-sale) has no newline yet: not an event.
        lines = text.split("\n")[:-1]
        return [from_json(json.loads(line)) for line in lines if line]

    def close(self) -> None:
        pass
