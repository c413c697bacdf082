"""A sale of several hosts kept in Redis, beside its tickets (keys under ``ticketsim:``).

The history is a stream: XADD gives each event an ID made of the server's clock (in
milliseconds) and a sequence number, so the stream's order is the server's, one
clock for every host. The gate is a field of the board's hash, which each host polls.

Buyer processes unpickle this board, so it imports only the standard library and
redis-py, and redis-py only when it connects.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ticketsim.core.boards import HostRow, SaleCard
from ticketsim.core.events import from_json
from ticketsim.core.frozen import field, frozen
from ticketsim.core.stores import redacted
from ticketsim.errors import ServerUnavailable
from ticketsim.sale.boards.base import (
    Board,
    UnreadableBoard,
    gate_time,
    host_taken,
    reads,
    sale_moved_on,
)
from ticketsim.sale.stores.database import ProcessConnection
from ticketsim.sale.stores.redis import BOARD, HISTORY, HOSTS, connect, problem

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


#: Each writes for the board's sale only (its id, or '' for whichever): a host of a sale
#: opened over (--replace) writes nothing into the new one.
_RECORD = """
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'sale') ~= ARGV[1] then return 0 end
for i = 2, #ARGV do redis.call('XADD', KEYS[2], '*', 'e', ARGV[i]) end
return #ARGV - 1
"""
#: Numbers a host's buyers in one step: -1 when the sale has started or moved on,
#: -2 when the host's name is taken.
_JOIN = """
if redis.call('HGET', KEYS[1], 'started') then return -1 end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'sale') ~= ARGV[1] then return -1 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return -2 end
local count = tonumber(ARGV[3])
local first = redis.call('HINCRBY', KEYS[1], 'joined', count) - count + 1
redis.call('HSET', KEYS[2], ARGV[2], '[' .. first .. ', ' .. count .. ', 0, false]')
return first
"""
_UPDATE = """
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'sale') ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""


@frozen
class RedisBoard(Board):
    """The board in the Redis at ``url`` (the sale's keys must be loaded first)."""

    url: str
    #: The sale this board writes for (:meth:`Board.bound`); ``None``: whichever.
    sale: str | None = None
    _connection: ProcessConnection[Any] = field(
        default_factory=ProcessConnection, compare=False, repr=False
    )

    @property
    def shown(self) -> str:
        return redacted(self.url)

    def _run(self, call: Callable[[Any], Any]) -> Any:
        import redis  # noqa: PLC0415 - imported by the connection already

        try:
            return call(self._connection.get(lambda: connect(self.url)))
        except redis.ResponseError as exc:
            if "WRONGTYPE" not in str(exc):
                raise ServerUnavailable(
                    redacted(self.url), problem(exc), "is the server up, and the network to it?"
                ) from None
            # The server is up: a key of the sale's holds what ticketsim did not put there.
            raise UnreadableBoard(
                redacted(self.url),
                "holds a key of the sale's of another kind than ticketsim's",
                "open a new sale there: ticketsim sale open --replace",
            ) from None
        except redis.RedisError as exc:
            self.close()
            raise ServerUnavailable(
                redacted(self.url),
                problem(exc),
                "is the server up, and the network to it?",
            ) from None

    def open(self, card: SaleCard) -> None:
        def swap(db: Any) -> None:
            with db.pipeline(transaction=True) as pipe:  # MULTI: no join sees half a sale
                pipe.delete(BOARD, HOSTS, HISTORY)
                pipe.hset(BOARD, mapping={"card": card.to_text(), "joined": 0, "sale": card.id})
                pipe.execute()

        self._run(swap)

    @reads("sale card")
    def card(self) -> SaleCard | None:
        text = self._run(lambda db: db.hget(BOARD, "card"))
        return None if text is None else SaleCard.from_text(text)

    def join(self, host: str, count: int) -> int:
        first = int(
            self._run(lambda db: db.eval(_JOIN, 2, BOARD, HOSTS, self.sale or "", host, count))
        )
        if first == -2:
            raise host_taken(redacted(self.url), host)
        if first < 1:
            raise sale_moved_on(redacted(self.url), self.sale)
        return first

    def update(self, row: HostRow) -> None:
        self._run(
            lambda db: db.eval(_UPDATE, 2, BOARD, HOSTS, self.sale or "", row.name, row.to_text())
        )

    @reads("host's row")
    def hosts(self) -> tuple[HostRow, ...]:
        found = self._run(lambda db: db.hgetall(HOSTS))
        rows = [HostRow.from_text(name.decode(), text) for name, text in found.items()]
        return tuple(sorted(rows, key=lambda row: row.first))

    @reads("gate's time")
    def start(self) -> float:
        return gate_time(self._run(lambda db: db.eval(_START, 1, BOARD)))

    @reads("gate's time")
    def started(self) -> float | None:
        text = self._run(lambda db: db.hget(BOARD, "started"))
        return None if text is None else gate_time(text)

    def record(self, events: Sequence[Event]) -> None:
        lines = [json.dumps(event.to_json()) for event in events]
        # EVALSHA: a buyer's every step sends the script's digest, not its text.
        args = [self.sale or "", *lines]
        self._run(lambda db: db.register_script(_RECORD)(keys=[BOARD, HISTORY], args=args))

    @reads("history event")
    def history(self) -> list[Event]:
        entries = self._run(lambda db: db.xrange(HISTORY))
        return [_stamped(key, fields[b"e"]) for key, fields in entries]

    def close(self) -> None:
        self._connection.close()


def _stamped(key: bytes, text: bytes) -> Event:
    row = json.loads(text)
    milliseconds, _, _ = key.decode().partition("-")
    row["t"] = int(milliseconds) / 1000
    return from_json(row)
