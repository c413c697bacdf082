"""The ticket office: one process owns the db and serves purchase requests from a queue.

This is the producer/consumer pattern of the tutorials, used as a protection: with a
single writer nothing needs a lock. A buyer's :class:`OfficeTools` ask the office;
the office runs :func:`~ticketsim.sale.steps.take_ticket` for them. Buyer processes
unpickle :class:`OfficeTools`, so this module uses the standard library only.
"""

from __future__ import annotations

import os
import struct
import time
from typing import TYPE_CHECKING, Any, Final

from ticketsim.core.events import Step
from ticketsim.core.frozen import frozen
from ticketsim.errors import DbWriteError, GuardTimeout
from ticketsim.sale import _signals
from ticketsim.sale.channel import StepRecorder
from ticketsim.sale.steps import Tools, take_ticket
from ticketsim.sale.stores import FileStore

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ticketsim.core.events import Recorder
    from ticketsim.sale.steps import BuyerSpec, Pacer

#: Office replies: not answered yet, "sold out", "could not serve the request" and
#: "could not write the db"; any other reply is the seat sold.
PENDING: Final = -1
SOLD_OUT: Final = 0
FAILED: Final = -2
WRITE_FAILED: Final = -3
#: Not replies but where a request stands: its buyer stopped waiting before the office
#: took it up (or the sale is over), so the office does not serve it; the office is
#: serving it, and the buyer waits for its answer.
GAVE_UP: Final = -4
SERVING: Final = -5


#: How often the parent looks whether the office has finished the request it serves.
_CLOSE_POLL_S: Final = 0.005
#: A request on the office's pipe: buyer number (0: the poison pill), pid, race window.
_REQUEST: Final = struct.Struct("!Iqd")
#: Requests the office reads from its pipe at once.
_BATCH: Final = 256


@frozen
class OfficeClient:
    """A buyer's side of the ticket office: send a request, wait for the answer.

    The office is one process that takes requests from one pipe and does every
    read-decide-write itself, so nothing needs a lock. A request is one write of a
    few bytes, atomic on a pipe, so writers share no lock either: with a
    ``multiprocessing.Queue`` a buyer killed just after its answer could die while
    its queue's feeder thread still held the lock every writer shares, and no request
    reached the office again (2 sales of 1,000 in the soak under forkserver). Answers go
    to a shared ``Array`` (one cell per buyer, guarded by a ``Condition``) rather than
    a pipe per buyer, which would cost two file descriptors each.
    """

    #: The writing end of the office's request pipe (a ``multiprocessing`` Connection).
    requests: Any
    replies: Any
    answered: Any
    #: The db the office sells from, for the error a failed write is.
    db_path: str = ""

    def send(self, number: int, pid: int, window: float, timeout: float) -> None:
        """Send buyer ``number``'s purchase request. It never waits: a pipe holds
        thousands of requests, and each buyer has one at a time."""
        del timeout
        os.write(self.requests.fileno(), _REQUEST.pack(number, pid, window))

    def receive(self, number: int, timeout: float) -> int | None:
        """Wait for the office's answer: the seat sold, or ``None`` when sold out.

        A buyer that stops waiting before the office took up its request leaves it
        unserved: served later, its sale would be one its history never shows. One the
        office is serving is waited for once more: it ends within its race window."""

        def answered() -> bool:
            return self.replies[number] not in (PENDING, SERVING)

        with self.answered:
            if not self.answered.wait_for(answered, timeout):
                if self.replies[number] == PENDING:
                    self.replies[number] = GAVE_UP
                    raise GuardTimeout("ticket office's answer", timeout)
                if not self.answered.wait_for(answered, timeout):
                    raise GuardTimeout("ticket office's answer", timeout)
            reply: int = self.replies[number]
        if reply == WRITE_FAILED:
            # The buyer was not sold a ticket; the history's leave says why the write failed.
            raise DbWriteError(self.db_path, "the ticket office could not write it")
        if reply == FAILED:
            raise RuntimeError("the ticket office could not serve this request")
        return None if reply == SOLD_OUT else reply

    def close(self, timeout: float) -> bool:
        """In the parent, once every buyer has ended: no request still waiting is served,
        and the one being served is waited for, ``timeout`` at most, so that nothing is
        sold after the history is read; whether the office is idle.

        The parent never waits on the answers' condition: a waiter of a
        ``multiprocessing.Condition`` that dies (a buyer ended while it waited) is still
        counted, the office's ``notify_all`` waits for it for ever, holding the lock, and
        a parent waiting there too would never get it back. It takes the lock, bounded,
        and looks."""
        deadline = time.monotonic() + timeout
        while True:
            if self.answered.acquire(timeout=max(0.0, deadline - time.monotonic())):
                try:
                    cells = self.replies[:]
                    for number, cell in enumerate(cells):
                        if cell == PENDING:
                            self.replies[number] = GAVE_UP
                    if SERVING not in cells:
                        return True
                finally:
                    self.answered.release()
            if time.monotonic() >= deadline:
                return False
            time.sleep(_CLOSE_POLL_S)


@frozen
class OfficeTools(Tools):
    """A buyer of the ticket office holds nothing: it asks, and waits for the answer."""

    client: OfficeClient

    def rehearse(self, spec: BuyerSpec, pid: int) -> None:
        # The office buys on the sale's own store, whatever store this buyer holds: a
        # rehearsal through it would be a sale.
        del spec, pid

    def end_sale(self, timeout: float) -> None:
        self.client.close(timeout)  # an office still serving then is stuck: it is killed

    def purchase(self, spec: BuyerSpec, pid: int, record: Recorder, pacer: Pacer) -> int | None:
        record(Step.WAIT)  # queued at the office
        self.client.send(spec.number, pid, spec.window, spec.timeout)
        seat = self.client.receive(spec.number, spec.timeout)
        try:
            # The office has sold (or refused) already: the purchase is one step.
            pacer.after_read(spec.number, spec.timeout)
        finally:
            pacer.done(spec.number)
        return seat


def close_office(requests: Any) -> None:
    """In the parent: the poison pill, after every request already sent."""
    os.write(requests.fileno(), _REQUEST.pack(0, 0, 0.0))


def _requests(requests: Any, timeout: float) -> Iterator[tuple[int, int, float]]:
    """The requests on the office's pipe, until the poison pill, or until nobody has
    asked for ``timeout`` seconds (the sale is over or abandoned)."""
    fd = requests.fileno()
    while requests.poll(timeout):
        # Every write is one whole request, so a read of whole requests gets whole ones.
        data = os.read(fd, _BATCH * _REQUEST.size)
        if not data:
            return  # every writer has gone
        for number, pid, window in _REQUEST.iter_unpack(data):
            if number == 0:
                return
            yield number, pid, window


def run_office(
    db_path: str, requests: Any, replies: Any, answered: Any, channel: Any, timeout: float
) -> None:
    """The ticket office: serve requests one at a time until the poison pill.

    It takes the same read-decide-write steps a buyer takes under a lock, and records
    them for the buyer it serves (with its own pid), so the history reads the same.
    """
    _signals.as_child()  # as for buyers: the parent ends the office, not a Ctrl-C mid-write
    store, pid = FileStore(db_path), os.getpid()
    for number, buyer_pid, window in _requests(requests, timeout):
        with answered:
            if replies[number] == GAVE_UP:
                continue  # its buyer is not waiting: sold, it would be a sale nobody saw
            replies[number] = SERVING
        record = StepRecorder(channel, number, pid)
        record(Step.ENTER)
        note = None
        try:
            try:
                seat = take_ticket(store, number, buyer_pid, window, record)
                reply = SOLD_OUT if seat is None else seat
            except DbWriteError as exc:
                reply, note = WRITE_FAILED, f"the write failed: {exc.reason}"
            except Exception as exc:
                reply, note = FAILED, f"{type(exc).__name__}: {exc}"  # the buyer's outcome
            record(Step.LEAVE, note=note)
            with answered:
                replies[number] = reply
                answered.notify_all()
        finally:
            store.tidy()  # once the buyer has its answer
