"""Buyer threads: the pacer that stops them when the sale ends early, and their
ticket office, one writer thread fed by a ``queue.Queue``.

The buyers of a thread sale share ticketsim's memory, so the office needs no pipe and
no shared array: a request carries the buyer's own recorder and the cell its answer
goes in. Runs inside ticketsim's process; standard library only.
"""

from __future__ import annotations

import contextlib
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
Request = tuple["BuyerSpec", int, "Recorder", Pacer, "Answer"]
#: Where a request stands (as the process office's replies say it).
_PENDING, _SERVING, _GAVE_UP, _ANSWERED = "pending", "serving", "gave up", "answered"


class Answer:
    """The office's answer to one buyer: the seat, ``None`` (sold out) or what the
    attempt raised. A buyer that stops waiting before the office took its request up
    leaves it unserved, as one whose sale is over does: served later, its sale would be
    one its history never shows."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.state = _PENDING
        self.value: int | BaseException | None = None

    def take_up(self) -> bool:
        """The writer's: whether to serve the request (its buyer still waits)."""
        with self._changed:
            if self.state != _PENDING:
                return False
            self.state = _SERVING
            return True

    def give(self, value: int | BaseException | None) -> None:
        with self._changed:
            self.value, self.state = value, _ANSWERED
            self._changed.notify_all()

    def drop(self) -> None:
        """The sale is over: a request not yet taken up never will be."""
        with self._changed:
            if self.state == _PENDING:
                self.state = _GAVE_UP

    def wait(self, timeout: float) -> int | BaseException | None:
        """The buyer's: the answer. One being served is waited for once more: the
        office ends it within its race window."""

        def answered() -> bool:
            return self.state == _ANSWERED

        with self._changed:
            if not self._changed.wait_for(answered, timeout):
                if self.state == _PENDING:
                    self.state = _GAVE_UP
                    raise GuardTimeout("ticket office's answer", timeout)
                if not self._changed.wait_for(answered, timeout):
                    raise GuardTimeout("ticket office's answer", timeout)
            return self.value


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
    #: The writer thread, once started.
    writer: list[threading.Thread] = field(default_factory=list)
    #: Set once the sale is over: the writer serves nothing more.
    closed: threading.Event = field(default_factory=threading.Event)

    def serve(self) -> None:
        """The writer thread's loop, until the pill (``None``)."""
        while (request := self.requests.get()) is not None:
            spec, pid, record, pacer, answer = request
            if self.closed.is_set():
                answer.drop()
            if not answer.take_up():
                continue
            try:
                seat = take_ticket(
                    self.store, spec.number, pid, spec.window, record, _writer_hooks(pacer)
                )
            except Exception as exc:  # the buyer's to record
                answer.give(exc)
            else:
                answer.give(seat)
            finally:
                self.store.tidy()  # the old db its write swapped out

    def start(self) -> threading.Thread:
        writer = threading.Thread(target=self.serve, name="ticket-office", daemon=True)
        writer.start()
        self.writer.append(writer)
        return writer

    def stop(self) -> None:
        self.requests.put(None)

    def end_sale(self, timeout: float) -> None:
        # What is queued is dropped; what is being served ends first (its events are
        # the history's), within its race window.
        self.closed.set()
        self.stop()
        for writer in self.writer:
            writer.join(timeout)

    def purchase(self, spec: BuyerSpec, pid: int, record: Recorder, pacer: Pacer) -> int | None:
        answer = Answer()
        self.requests.put((spec, pid, record, pacer, answer))
        seat = answer.wait(spec.timeout)
        if isinstance(seat, BaseException):
            raise seat
        # Served, the buyer knows its outcome: a sale ended meanwhile changes nothing.
        with contextlib.suppress(SaleEnded):
            pacer.after_read(spec.number, spec.timeout)
        pacer.done(spec.number)
        return seat
