"""How events travel from buyers to the parent: one pipe, one atomic write per event.

A ``multiprocessing.Queue`` hands each ``put`` to a feeder thread, so a buyer that is
SIGKILLed loses the events it had just recorded: exactly the ones that say where it
died. Here every event is written to the pipe by the buyer itself, in one ``write``
of at most ``PIPE_BUF`` bytes, which POSIX makes atomic: a killed buyer's events
arrive whole or not at all, and writers need no lock (a lock a killed buyer held
would silence everyone else).

The parent reads the pipe in large chunks and splits them into events itself: at
10,000 buyers it receives some 80,000 events, and a system call (and a selector) per
event made it the slowest process of the sale. An event travels as fixed binary fields
and its note, not as a pickle: pickling an event cost a buyer more than writing it.

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import select
import struct
import time
from typing import TYPE_CHECKING, Final, Protocol

from ticketsim.core.events import Event, Step
from ticketsim.core.frozen import frozen

if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.connection import Connection
    from multiprocessing.context import BaseContext

#: Each event on the pipe is its length (4 bytes, big-endian), then its fields.
_LENGTH: Final = struct.Struct("!I")
#: buyer, step, t, pid, value, seat, which of value/seat/note/error are present; then the
#: error (its length in a byte, then its UTF-8 bytes), then the note.
_FIELDS: Final = struct.Struct("!IBdqqqB")
_VALUE, _SEAT, _NOTE, _ERROR = 1, 2, 4, 8
_STEPS: Final = tuple(Step)
_STEP_CODES: Final = {step: code for code, step in enumerate(_STEPS)}
#: Room for one event in a single atomic pipe write (POSIX guarantees 512; Linux 4096).
MAX_EVENT_BYTES: Final = getattr(select, "PIPE_BUF", 512) - _LENGTH.size
#: An error is a word (a class name); its length must fit in its one length byte.
_MAX_ERROR_BYTES: Final = 255
#: How much the parent reads from the pipe at once.
_CHUNK: Final = 1 << 16
#: A record's length, then its event's buyer and step: what following a sale needs.
_HEAD: Final = struct.Struct("!IIB")


def encode(event: Event) -> bytes:
    """``event`` as its fields, small enough for one atomic write (a long note is cut)."""
    return encode_fields(
        event.buyer, event.step, event.t, event.pid, event.value, event.seat, event.note,
        event.error,
    )  # fmt: skip


def encode_fields(
    buyer: int,
    step: Step,
    t: float,
    pid: int,
    value: int | None,
    seat: int | None,
    note: str | None,
    error: str | None,
) -> bytes:
    """The bytes :func:`encode` makes of the event with these fields, without the event:
    a buyer records some eight steps per purchase, each on its way in the buyer's
    own time, and an :class:`Event` built only to be taken apart again is wasted there."""
    flags = (
        (0 if value is None else _VALUE)
        | (0 if seat is None else _SEAT)
        | (0 if note is None else _NOTE)
        | (0 if error is None else _ERROR)
    )
    fields = _FIELDS.pack(buyer, _STEP_CODES[step], t, pid, value or 0, seat or 0, flags)
    if note is None and error is None:
        return fields
    head = b""
    if error is not None:
        head = error.encode("utf-8", "backslashreplace")[:_MAX_ERROR_BYTES]
        head = bytes([len(head)]) + head
    text = b"" if note is None else note.encode("utf-8", "backslashreplace")
    room = MAX_EVENT_BYTES - _FIELDS.size - len(head)
    if len(text) > room:
        text = text[: room - 3].decode("utf-8", "ignore").encode() + b"..."
    return fields + head + text


def decode(data: bytes) -> Event:
    """The event :func:`encode` made ``data`` of."""
    buyer, step, t, pid, value, seat, flags = _FIELDS.unpack_from(data)
    start, error = _FIELDS.size, None
    if flags & _ERROR:
        end = start + 1 + data[start]
        error = data[start + 1 : end].decode("utf-8", "replace")
        start = end
    return Event(
        buyer,
        _STEPS[step],
        t,
        pid,
        value if flags & _VALUE else None,
        seat if flags & _SEAT else None,
        data[start:].decode("utf-8") if flags & _NOTE else None,
        error,
    )


def frame(data: bytes) -> bytes:
    """An encoded event (:func:`encode`) as it travels: its length, then its bytes."""
    return _LENGTH.pack(len(data)) + data


def step_code(step: Step) -> int:
    """The code ``step`` travels as, which :meth:`EventChannel.receive` gives."""
    return _STEP_CODES[step]


def decode_records(data: bytes) -> list[Event]:
    """The events of whole records ``data`` (as :meth:`EventChannel.receive` gave them)."""
    events, start, size = [], 0, len(data)
    while start < size:
        (length,) = _LENGTH.unpack_from(data, start)
        start += _LENGTH.size
        events.append(decode(data[start : start + length]))
        start += length
    return events


class Channel(Protocol):
    """Where a buyer's events go: an :class:`EventSender` in a run."""

    def put(self, event: Event) -> None: ...


class StepRecorder:
    """Records the steps of buyer ``number``, taken by process ``pid``, as events on
    ``channel``: the :class:`~ticketsim.core.events.Recorder` that stores, guards and
    the office are handed."""

    __slots__ = ("_channel", "_number", "_pid", "_pipe")

    def __init__(self, channel: Channel, number: int, pid: int) -> None:
        self._channel, self._number, self._pid = channel, number, pid
        # The event pipe, written straight to (as EventSender.put does, without the
        # Event): every step of every purchase passes here.
        self._pipe = channel if isinstance(channel, EventSender) else None

    def __call__(
        self,
        step: Step,
        *,
        value: int | None = None,
        seat: int | None = None,
        note: str | None = None,
        error: str | None = None,
    ) -> None:
        t = time.monotonic()
        if self._pipe is not None:
            data = encode_fields(self._number, step, t, self._pid, value, seat, note, error)
            self._pipe.send(data)
        else:
            self._channel.put(Event(self._number, step, t, self._pid, value, seat, note, error))


@frozen
class EventSender:
    """The buyers' end: picklable, and passed to every buyer explicitly."""

    conn: Connection

    def put(self, event: Event) -> None:
        self.send(encode(event))

    def send(self, data: bytes) -> None:
        """Send an encoded event (:func:`encode`)."""
        # One write of at most PIPE_BUF bytes: atomic, so never interleaved or cut. The
        # pipe is asked for its descriptor each time: a closed one raises OSError, where
        # a number kept could by now be another file's.
        os.write(self.conn.fileno(), frame(data))


@contextlib.contextmanager
def discarding(number: int, pid: int) -> Iterator[StepRecorder]:
    """A recorder for buyer ``number`` whose events go nowhere (``os.devnull``): what a
    rehearsal records takes the way a sale's steps take, and stays out of the history."""
    from multiprocessing.connection import Connection  # noqa: PLC0415 - rehearsals only

    sink = Connection(os.open(os.devnull, os.O_WRONLY))
    try:
        yield StepRecorder(EventSender(sink), number, pid)
    finally:
        sink.close()


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

    def get(self, timeout: float, gather_s: float = 0.0) -> Event:
        """The next event; ``queue.Empty`` if none arrives within ``timeout`` seconds.

        With ``gather_s``, once an event has arrived the parent waits that long before it
        reads, so that it reads many events in one wake-up instead of waking for each:
        on a machine with fewer cores than buyers, every wake-up takes a core from them.
        """
        if not self._events:
            data, _ = self.receive(timeout, gather_s)
            self._events.extend(decode_records(data))
        return self._events.popleft()

    def decoded(self) -> list[Event]:
        """Take the events :meth:`get` has read and not yet returned: they come before
        whatever :meth:`receive` gives next."""
        events = list(self._events)
        self._events.clear()
        return events

    def receive(self, timeout: float, gather_s: float = 0.0) -> tuple[bytes, list[tuple[int, int]]]:
        """The whole records that arrived, undecoded, and each one's buyer and step code
        (:func:`step_code`); ``queue.Empty`` as :meth:`get`. Take :meth:`decoded` first.

        Decoding every event as it came took the parent's core from the buyers of a big
        sale on a small machine; following the sale needs only this, and the rest is
        :func:`decode_records`, once the sale is over.
        """
        # An event is written whole, so the rest of a part read is already in the pipe.
        while True:
            if not self._poll.poll(timeout * 1000):
                raise queue.Empty
            if gather_s:
                time.sleep(gather_s)
            chunk = os.read(self._fd, _CHUNK)
            if not chunk:  # every writer has closed its end
                raise queue.Empty
            data = self._pending + chunk
            heads: list[tuple[int, int]] = []
            start, size = 0, len(data)
            while size - start >= _HEAD.size:
                length, buyer, step = _HEAD.unpack_from(data, start)
                end = start + _LENGTH.size + length
                if end > size:
                    break
                heads.append((buyer, step))
                start = end
            self._pending = data[start:]
            if heads:
                return data[:start], heads

    def close(self) -> None:
        self._reader.close()
        self.sender.conn.close()
