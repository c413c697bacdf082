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
from ticketsim.errors import GuardTimeout, SaleEnded
from ticketsim.sale.steps import Pacer, Tools, take_ticket

if TYPE_CHECKING:
    from ticketsim.core.events import Recorder
    from ticketsim.sale.steps import BuyerSpec

#: A request: the buyer, its pid, its recorder, its pacer, where its answer goes;
#: ``None`` stops.
Request = tuple["BuyerSpec", int, "Recorder", Pacer, "queue.Queue[int | BaseException | None]"]


@frozen
class Ending(Pacer):
    """``pacer``'s hooks, for buyer threads that stop once ``ended`` is set.

    A buyer process is killed when ticketsim ends a sale early; a thread cannot be, and
    one left in its race window would write its sale after the sale was over (and kept
    a Ctrl-C waiting for it). So the window is a wait on ``ended``, and a buyer that
    finds it set before its write raises :class:`SaleEnded` instead of writing.
    """

    pacer: Pacer
    ended: threading.Event

    def _stop_if_ended(self) -> None:
        if self.ended.is_set():
            raise SaleEnded("ticketsim ended the sale before this buyer wrote")

    def before_check(self, number: int, timeout: float) -> None:
        self._stop_if_ended()
        self.pacer.before_check(number, timeout)

    def patience(self, timeout: float) -> float:
        return self.pacer.patience(timeout)

    def after_read(self, number: int, timeout: float) -> None:
        self._stop_if_ended()
        try:
            self.pacer.after_read(number, timeout)
        except Exception:
            self._stop_if_ended()  # a wait the end broke (abort): the end is why
            raise
        self._stop_if_ended()

    def race_window(self, seconds: float) -> None:
        if self.ended.wait(seconds):
            self._stop_if_ended()

    def done(self, number: int) -> None:
        self.pacer.done(number)

    def finished(self, number: int, error: BaseException | None) -> None:
        self.pacer.finished(number, error)

    def stopped(self) -> bool:
        return self.ended.is_set()

    def end(self) -> None:
        """In the parent: the sale is over early; stop every buyer thread."""
        self.ended.set()
        self.pacer.abort()


def _writer_hooks(pacer: Pacer) -> Pacer:
    """The office writer's hooks for one request: none of the asking buyer's own (it
    runs them itself once answered), but the end of its sale."""
    return Ending(Pacer(), pacer.ended) if isinstance(pacer, Ending) else Pacer()


@frozen
class ThreadOfficeTools(Tools):
    """Ask the writer thread, which runs every read-decide-write itself."""

    requests: queue.Queue[Request | None] = field(default_factory=queue.Queue)

    def serve(self) -> None:
        """The writer thread's loop, until the pill (``None``)."""
        while (request := self.requests.get()) is not None:
            spec, pid, record, pacer, answer = request
            try:
                seat = take_ticket(
                    self.store, spec.number, pid, spec.window, record, _writer_hooks(pacer)
                )
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
        self.requests.put((spec, pid, record, pacer, answer))
        try:
            seat = answer.get(timeout=spec.timeout)
        except queue.Empty:
            raise GuardTimeout("ticket office's answer", spec.timeout) from None
        if isinstance(seat, BaseException):
            raise seat
        pacer.after_read(spec.number, spec.timeout)
        pacer.done(spec.number)
        return seat
