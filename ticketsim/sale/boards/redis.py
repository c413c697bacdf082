"""A sale of several hosts kept in Redis, beside its tickets (keys under ``ticketsim:``).

The history is a stream: XADD gives each event an ID made of the server's clock (in
milliseconds) and a sequence number, so the stream's order is the server's, one
clock for every host. The gate is a field of the board's hash, which each host polls.

Buyer processes unpickle this board, so it imports only the standard library and
redis-py, and redis-py only when it connects.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ticketsim.core.boards import HostRow, SaleCard
from ticketsim.core.events import from_json
from ticketsim.core.stores import redacted
from ticketsim.errors import ServerUnavailable
from ticketsim.sale.boards.base import Board, host_taken
from ticketsim.sale.stores.database import ProcessConnection
from ticketsim.sale.stores.redis import BOARD, HISTORY, HOSTS, connect

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ticketsim.core.events import Event

#: Sets the gate once, and answers the time it was first set, by the server's clock.
_START = """
local started = redis.call('HGET', KEYS[1], 'started')
if started then return started end
local now = redis.call('TIME')
started = now[1] .. '.' .. string.format('%06d', now[2])
redis.call('HSET', KEYS[1], 'started', started)
return started
"""


@dataclass(frozen=True)
class RedisBoard(Board):
    """The board in the Redis at ``url`` (the sale's keys must be loaded first)."""

    url: str
    _connection: ProcessConnection[Any] = field(
        default_factory=ProcessConnection, compare=False, repr=False
    )

    def _run(self, call: Callable[[Any], Any]) -> Any:
        import redis  # noqa: PLC0415 - imported by the connection already

        try:
            return call(self._connection.get(lambda: connect(self.url)))
        except redis.RedisError as exc:
            self.close()
            raise ServerUnavailable(
                redacted(self.url), str(exc) or type(exc).__name__, "is the server up, and the network to it?"
            ) from None

    def open(self, card: SaleCard) -> None:
        self._run(lambda db: db.delete(BOARD, HOSTS, HISTORY))
        self._run(lambda db: db.hset(BOARD, mapping={"card": card.to_text(), "joined": 0}))

    def card(self) -> SaleCard | None:
        text = self._run(lambda db: db.hget(BOARD, "card"))
        return None if text is None else SaleCard.from_text(text)

    def join(self, host: str, count: int) -> int:
        if not self._run(lambda db: db.hsetnx(HOSTS, host, HostRow(host, 0, 0).to_text())):
            raise host_taken(redacted(self.url), host)
        first = int(self._run(lambda db: db.hincrby(BOARD, "joined", count))) - count + 1
        row = HostRow(host, first, count)
        # A list keeps the order hosts joined in; the hash keeps each one's latest row.
        self._run(lambda db: db.hset(HOSTS, host, row.to_text()))
        return first

    def update(self, row: HostRow) -> None:
        self._run(lambda db: db.hset(HOSTS, row.name, row.to_text()))

    def hosts(self) -> tuple[HostRow, ...]:
        found = self._run(lambda db: db.hgetall(HOSTS))
        rows = [HostRow.from_text(name.decode(), text) for name, text in found.items()]
        rows = [row for row in rows if row.first]  # a host still joining has no numbers yet
        return tuple(sorted(rows, key=lambda row: row.first))

    def start(self) -> float:
        return float(self._run(lambda db: db.eval(_START, 1, BOARD)))

    def started(self) -> float | None:
        text = self._run(lambda db: db.hget(BOARD, "started"))
        return None if text is None else float(text)

    def record(self, events: Sequence[Event]) -> None:
        if len(events) == 1:  # a buyer's every step: one command
            self._run(lambda db: db.xadd(HISTORY, {"e": json.dumps(events[0].to_json())}))
            return

        def add(db: Any) -> None:
            with db.pipeline(transaction=False) as pipe:
                for event in events:
                    pipe.xadd(HISTORY, {"e": json.dumps(event.to_json())})
                pipe.execute()

        self._run(add)

    def history(self) -> list[Event]:
        entries = self._run(lambda db: db.xrange(HISTORY))
        return [_stamped(key, fields[b"e"]) for key, fields in entries]

    def close(self) -> None:
        made = self._connection.drop()
        if made is not None:
            with contextlib.suppress(Exception):
                made.close()


def _stamped(key: bytes, text: bytes) -> Event:
    row = json.loads(text)
    milliseconds, _, _ = key.decode().partition("-")
    row["t"] = int(milliseconds) / 1000
    return from_json(row)
