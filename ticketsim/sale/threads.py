"""Buyer threads' ticket office: one writer thread fed by a ``queue.Queue``.

The buyers of a thread sale share ticketsim's memory, so the office needs no pipe and
no shared array: a request carries the buyer's own recorder and a one-slot queue for
the answer. Runs inside ticketsim's process; standard library only.
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING

from ticketsim.core.frozen import field, frozen
from ticketsim.errors import GuardTimeout
from ticketsim.sale.steps import Tools, take_ticket

if TYPE_CHECKING:
    from ticketsim.core.events import Recorder
    from ticketsim.sale.steps import BuyerSpec, Pacer

#: A request: the buyer, its pid, its recorder, where its answer goes; ``None`` stops.
Request = tuple["BuyerSpec", int, "Recorder", "queue.Queue[int | BaseException | None]"]


@frozen
class ThreadOfficeTools(Tools):
    """Ask the writer thread, which runs every read-decide-write itself."""

    requests: queue.Queue[Request | None] = field(default_factory=queue.Queue)

    def serve(self) -> None:
        """The writer thread's loop, until the pill (``None``)."""
        while (request := self.requests.get()) is not None:
            spec, pid, record, answer = request
            try:
                seat = take_ticket(self.store, spec.number, pid, spec.window, record)
            except Exception as exc:  # the buyer's to record
                answer.put(exc)
            else:
                answer.put(seat)
            finally:
                self.store.tidy()  # the old db its write swapped out

    def start(self) -> threading.Thread:
        writer = threading.Thread(target=self.serve, name="ticket-office", daemon=True)
        writer.start()
        return writer

    def stop(self) -> None:
        self.requests.put(None)

    def purchase(self, spec: BuyerSpec, pid: int, record: Recorder, pacer: Pacer) -> int | None:
        answer: queue.Queue[int | BaseException | None] = queue.Queue(maxsize=1)
        self.requests.put((spec, pid, record, answer))
        try:
            seat = answer.get(timeout=spec.timeout)
        except queue.Empty:
            raise GuardTimeout("ticket office's answer", spec.timeout) from None
        if isinstance(seat, BaseException):
            raise seat
        pacer.after_read(spec.number, spec.timeout)
        pacer.done(spec.number)
        return seat
