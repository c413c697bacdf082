"""How events travel from buyers to the parent: one pipe, one atomic write per event.

A ``multiprocessing.Queue`` hands each ``put`` to a feeder thread, so a buyer that is
SIGKILLed loses the events it had just recorded: exactly the ones that say where it
died. Here every event is written to the pipe by the buyer itself, in one ``write``
of at most ``PIPE_BUF`` bytes, which POSIX makes atomic: a killed buyer's events
arrive whole or not at all, and writers need no lock (a lock a killed buyer held
would silence everyone else).

The parent reads the pipe in large chunks and splits them into events itself: at
10,000 buyers it receives some 80,000 events, and a system call (and a selector) per
event made it the slowest process of the sale.

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import pickle
import queue
import select
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ticketsim.events import Event

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import BaseContext

#: Each event on the pipe is its length (4 bytes, big-endian), then its pickle.
_LENGTH: Final = struct.Struct("!I")
#: Room for one event in a single atomic pipe write (POSIX guarantees 512; Linux 4096).
MAX_EVENT_BYTES: Final = getattr(select, "PIPE_BUF", 512) - _LENGTH.size
#: How much the parent reads from the pipe at once.
_CHUNK: Final = 1 << 16


def encode(event: Event) -> bytes:
    """Pickle ``event`` small enough for one atomic write, shortening its note if need be."""
    data = pickle.dumps(event, protocol=pickle.HIGHEST_PROTOCOL)
    while len(data) > MAX_EVENT_BYTES and event.note:
        keep = max(0, len(event.note) - (len(data) - MAX_EVENT_BYTES) - 8)
        event = dataclasses.replace(event, note=event.note[:keep] + "...")
        data = pickle.dumps(event, protocol=pickle.HIGHEST_PROTOCOL)
    return data


@dataclass(frozen=True)
class EventSender:
    """The buyers' end: picklable, and passed to every buyer explicitly."""

    conn: Connection

    def put(self, event: Event) -> None:
        data = encode(event)
        # One write of at most PIPE_BUF bytes: atomic, so never interleaved or cut.
        os.write(self.conn.fileno(), _LENGTH.pack(len(data)) + data)


class EventChannel:
    """The parent's end, and the sender to hand out."""

    def __init__(self, ctx: BaseContext) -> None:
        self._reader, writer = ctx.Pipe(duplex=False)
        self.sender = EventSender(writer)
        self._fd = self._reader.fileno()
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)
        self._pending: bytes = b""
        self._events: collections.deque[Event] = collections.deque()

    def get(self, timeout: float) -> Event:
        """The next event; ``queue.Empty`` if none arrives within ``timeout`` seconds."""
        # An event is written whole, so the rest of a part read is already in the pipe.
        while not self._events:
            if not self._poll.poll(timeout * 1000):
                raise queue.Empty
            chunk = os.read(self._fd, _CHUNK)
            if not chunk:  # every writer has closed its end
                raise queue.Empty
            self._split(self._pending + chunk)
        return self._events.popleft()

    def _split(self, data: bytes) -> None:
        start, size = 0, len(data)
        while size - start >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(data, start)
            end = start + _LENGTH.size + length
            if end > size:
                break
            event: Any = pickle.loads(data[start + _LENGTH.size : end])
            if not isinstance(event, Event):
                raise TypeError(f"the event channel carried a {type(event).__name__}")
            self._events.append(event)
            start = end
        self._pending = data[start:]

    def close(self) -> None:
        self._reader.close()
        self.sender.conn.close()
