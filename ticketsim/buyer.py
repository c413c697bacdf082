"""One buyer: the steps it takes, run inside its own process.

This is the tutorial's ``search`` then ``get``, split into named steps that are each
sent to the parent as an :class:`~ticketsim.events.Event`. The buyer never prints;
whatever happens to it, including a crash, ends up in the history.

Everything a buyer uses arrives as an argument (no module state), so the same code
runs under ``fork``, ``spawn`` and ``forkserver``. This module, and everything it
imports, uses the standard library (and ``filelock``) only, so that starting a buyer
under ``spawn`` stays cheap.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ticketsim.db import Sale
from ticketsim.events import Event, Step, buyer_name

if TYPE_CHECKING:
    from ticketsim.strategies import Tools


@dataclass(frozen=True)
class BuyerSpec:
    """Who this buyer is and how it behaves; decided by the parent."""

    number: int
    #: Seconds between reading the db and writing it back: the race window.
    window: float
    #: Longest wait for anything (the sale to open, a lock, a barrier).
    timeout: float

    @property
    def name(self) -> str:
        return buyer_name(self.number)


class Channel(Protocol):
    """Where events go: a ``multiprocessing.Queue`` in a run."""

    def put(self, obj: Any, block: bool = ..., timeout: float | None = ...) -> None: ...


class Gate(Protocol):
    """The moment the sale opens: a ``multiprocessing.Event``."""

    def wait(self, timeout: float | None = ...) -> bool: ...


class Pacer:
    """Hooks that force an interleaving. This one forces nothing."""

    def after_read(self, number: int, timeout: float) -> None:
        """Called inside the critical section, once the buyer has read the db."""
        del number, timeout

    def done(self, number: int) -> None:
        """Called once the buyer has written, or decided not to."""
        del number


@dataclass(frozen=True)
class Lockstep(Pacer):
    """Every buyer reads, then they write one at a time in buyer order.

    This is the race made certain and repeatable (schedule ``1r 2r .. 1w 2w ..``):
    each buyer waits at a barrier sized to the number of buyers right after its
    read, then for its turn to write. Writes are taken in turn because unprotected
    writes that overlap in time can interleave their bytes, and which of them wins
    would be luck. Only unguarded strategies can pass the barrier: under a lock the
    second buyer cannot read until the first has written.
    """

    barrier: Any
    #: ``multiprocessing.Value('i')``: the number of the buyer whose turn it is to write.
    turn: Any
    #: ``multiprocessing.Condition`` that guards ``turn``.
    changed: Any

    def after_read(self, number: int, timeout: float) -> None:
        self.barrier.wait(timeout)
        with self.changed:
            if not self.changed.wait_for(lambda: self.turn.value == number, timeout):
                raise TimeoutError(f"buyer {number} never got its turn to write")

    def done(self, number: int) -> None:
        with self.changed:
            self.turn.value = number + 1
            self.changed.notify_all()


def run_buyer(spec: BuyerSpec, tools: Tools, channel: Channel, gate: Gate, pacer: Pacer) -> None:
    """The body of a buyer process."""
    pid = os.getpid()

    def record(
        step: Step, *, value: int | None = None, seat: int | None = None, note: str | None = None
    ) -> None:
        channel.put(Event(spec.number, step, time.monotonic(), pid, value, seat, note))

    try:
        record(Step.READY)
        if not gate.wait(spec.timeout):
            record(Step.ERROR, note=f"the sale did not open within {spec.timeout:g} s")
            return
        record(Step.CHECK, value=tools.store.read(record).remaining)
        seat = None
        with tools.guard.hold(record, spec.timeout):
            seen = tools.store.read(record)
            record(Step.READ, value=seen.remaining)
            try:
                pacer.after_read(spec.number, spec.timeout)
                if seen.remaining > 0:
                    seat = seen.next_seat()
                    # The race window: the tutorial's sleep between deciding and writing.
                    time.sleep(spec.window)
                    tools.store.write(seen.sell(Sale(spec.name, seat, pid, time.time())))
                    record(Step.WRITE, value=seen.remaining - 1, seat=seat)
            finally:
                pacer.done(spec.number)
        if seat is None:
            record(Step.FAIL, value=seen.remaining)
        else:
            record(Step.OK, seat=seat)
    except BaseException as exc:
        record(Step.ERROR, note=f"{type(exc).__name__}: {exc}")
