"""How events travel from buyers to the parent: one pipe, one atomic write per event.

A ``multiprocessing.Queue`` hands each ``put`` to a feeder thread, so a buyer that is
SIGKILLed loses the events it had just recorded: exactly the ones that say where it
died. Here every event is written to the pipe by the buyer itself, in one ``write``
of at most ``PIPE_BUF`` bytes, which POSIX makes atomic: a killed buyer's events
arrive whole or not at all, and writers need no lock (a lock a killed buyer held
would silence everyone else).

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import dataclasses
import pickle
import queue
import select
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ticketsim.events import Event

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import BaseContext

#: Room for one event in a single atomic pipe write (POSIX guarantees 512; Linux 4096),
#: less the 4-byte length header ``Connection.send_bytes`` adds.
MAX_EVENT_BYTES: Final = getattr(select, "PIPE_BUF", 512) - 4


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
        self.conn.send_bytes(encode(event))


class EventChannel:
    """The parent's end, and the sender to hand out."""

    def __init__(self, ctx: BaseContext) -> None:
        self._reader, writer = ctx.Pipe(duplex=False)
        self.sender = EventSender(writer)

    def get(self, timeout: float) -> Event:
        """The next event; ``queue.Empty`` if none arrives within ``timeout`` seconds."""
        if not self._reader.poll(timeout):
            raise queue.Empty
        event: Any = pickle.loads(self._reader.recv_bytes())
        if not isinstance(event, Event):
            raise TypeError(f"the event channel carried a {type(event).__name__}")
        return event

    def close(self) -> None:
        self._reader.close()
        self.sender.conn.close()
