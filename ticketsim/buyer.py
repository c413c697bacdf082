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

    def after_read(self, timeout: float) -> None:
        del timeout


@dataclass(frozen=True)
class Lockstep(Pacer):
    """Every buyer reads before any buyer writes: the race, made certain.

    Each buyer waits at a ``multiprocessing.Barrier`` sized to the number of buyers
    right after its read. Only unguarded strategies can pass it: under a lock the
    second buyer cannot read until the first has written.
    """

    barrier: Any

    def after_read(self, timeout: float) -> None:
        self.barrier.wait(timeout)


def run_buyer(
    spec: BuyerSpec, tools: Tools, channel: Channel, gate: Gate, pacer: Pacer
) -> None:
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
            pacer.after_read(spec.timeout)
            if seen.remaining > 0:
                seat = seen.next_seat()
                # The race window: the tutorial's sleep between deciding and writing.
                time.sleep(spec.window)
                tools.store.write(seen.sell(Sale(spec.name, seat, pid, time.time())))
                record(Step.WRITE, value=seen.remaining - 1, seat=seat)
        if seat is None:
            record(Step.FAIL, value=seen.remaining)
        else:
            record(Step.OK, seat=seat)
    except BaseException as exc:  # noqa: BLE001 - the history, not stderr, must say why
        record(Step.ERROR, note=f"{type(exc).__name__}: {exc}")
