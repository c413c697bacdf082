"""A buyer's purchase: the critical section, and the ways a buyer gets it run.

:func:`take_ticket` is the read-decide-write section. A buyer's :class:`Tools` say how
it gets there: :class:`GuardedTools` run it in the buyer, under the strategy's guard;
the ticket office's (:class:`ticketsim.sale.office.OfficeTools`) ask the one process
that runs it for everybody. The buyer (:mod:`ticketsim.sale.buyer`) does not know which.

Buyer processes unpickle these, so this module uses the standard library only.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from ticketsim.core.db import Sale
from ticketsim.core.events import Step, buyer_name
from ticketsim.core.frozen import frozen, replace
from ticketsim.sale.channel import discarding

if TYPE_CHECKING:
    from ticketsim.core.events import Recorder
    from ticketsim.sale.guards import Guard
    from ticketsim.sale.stores import Store


@frozen
class BuyerSpec:
    """Who this buyer is and how it behaves; decided by the parent."""

    number: int
    #: Seconds between reading the db and writing it back: the race window.
    window: float
    #: Longest wait for anything (a lock, a barrier, and the sale to open unless below).
    timeout: float
    #: Longest wait for the sale to open (0: ``timeout``): the parent may wait longer
    #: than the timeout for the slowest buyer to start (spawn, a big sale).
    opening: float = 0.0

    @property
    def opens_within(self) -> float:
        """How long this buyer waits for the sale to open."""
        return max(self.opening, self.timeout)

    @property
    def name(self) -> str:
        return buyer_name(self.number)


class Pacer:
    """Hooks that force an interleaving. This one forces nothing."""

    def before_check(self, number: int, timeout: float) -> None:
        """Called when the sale has opened, before the buyer's first step."""
        del number, timeout

    def patience(self, timeout: float) -> float:
        """How long the buyer may wait for its strategy's lock."""
        return timeout

    def after_read(self, number: int, timeout: float) -> None:
        """Called once the buyer is committed to buying: inside its critical section
        right after its read, or (with the ticket office) once it has its answer."""
        del number, timeout

    def race_window(self, seconds: float) -> None:
        """The race window, between deciding and writing: the tutorial's sleep."""
        time.sleep(seconds)

    def done(self, number: int) -> None:
        """Called once the buyer has written, or decided not to."""
        del number

    def finished(self, number: int, error: BaseException | None) -> None:
        """Called last, once the buyer has its outcome (or ``error``)."""
        del number, error

    def abort(self) -> None:
        """Called in the parent when ticketsim ends a sale of threads early: let go of
        the buyers this pacer keeps waiting (a process is killed instead)."""

    def stopped(self) -> bool:
        """Whether ticketsim has ended the sale early and told this buyer so (a thread):
        what it then meets (a lock it gave up on) is not an outcome of its own."""
        return False


def take_ticket(
    store: Store,
    number: int,
    pid: int,
    window: float,
    record: Recorder,
    pacer: Pacer | None = None,
    timeout: float = 0.0,
) -> int | None:
    """Read, decide, wait out the race window, write: the critical section.

    Returns the seat sold, or ``None`` when the read found no ticket left. Run by a
    buyer inside its strategy's guard, or by the ticket office on a buyer's behalf.
    """
    pacer = pacer or Pacer()
    seen = store.read(record)
    record(Step.READ, value=seen.remaining)
    try:
        pacer.after_read(number, timeout)
        if seen.remaining <= 0:
            return None
        if window:
            # Not even sleep(0) without one: that gives up the processor, which is a window.
            pacer.race_window(window)
        store.sell(seen, Sale(buyer_name(number), seen.seat, pid, time.time()))
        record(Step.WRITE, value=seen.remaining - 1, seat=seen.seat)
        return seen.seat
    finally:
        pacer.done(number)


@frozen
class Tools(ABC):
    """Everything one buyer needs from its strategy; passed to the buyer explicitly.

    Defined here, not with the strategies, so that a buyer process that unpickles it
    does not import every strategy (and what they import) to start.
    """

    store: Store

    def prepare(self) -> None:
        """Before the sale opens, in each buyer process or pool worker: whatever the
        first purchase would otherwise do inside the critical section."""
        self.store.prepare()

    def rehearse(self, spec: BuyerSpec, pid: int) -> None:
        """Before the sale opens, in a buyer's own process: a whole purchase on the
        store's rehearsal state (:meth:`Store.rehearsal`), if it has one, its steps
        recorded as a sale's are but kept out of the history, with no race window and
        no forced interleaving. The sale's store is left as it was.

        Best effort: a rehearsal that fails (refused, or the server gone) has still run
        what it could, and what made it fail fails again in the sale, where the buyer's
        history records it. A buyer must not be lost to its rehearsal.
        """
        try:
            with self.store.rehearsal() as scratch:
                if scratch is None:
                    return
                with discarding(spec.number, pid) as record:
                    replace(self, store=scratch).purchase(
                        replace(spec, window=0.0), pid, record, Pacer()
                    )
        except Exception:  # see above: the sale records what this would have
            return

    @abstractmethod
    def purchase(self, spec: BuyerSpec, pid: int, record: Recorder, pacer: Pacer) -> int | None:
        """Buy one ticket for buyer ``spec``: the seat sold, or ``None`` if none was left."""

    def end_sale(self, timeout: float) -> None:
        """In the parent, once every buyer has ended and before the history is read:
        stop what still works on the buyers' behalf (a ticket office's queue), so that
        nothing is sold that the history does not show; waits ``timeout`` at most."""
        del timeout


@frozen
class GuardedTools(Tools):
    """The buyer runs the critical section itself, under ``guard``."""

    guard: Guard

    def prepare(self) -> None:
        self.guard.prepare()
        super().prepare()

    def purchase(self, spec: BuyerSpec, pid: int, record: Recorder, pacer: Pacer) -> int | None:
        try:
            with self.guard.hold(record, pacer.patience(spec.timeout)):
                return take_ticket(
                    self.store, spec.number, pid, spec.window, record, pacer, spec.timeout
                )
        finally:
            self.store.tidy()  # after letting go: the others need not wait for it
