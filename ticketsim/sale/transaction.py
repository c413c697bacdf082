"""A purchase as a database transaction: the statements a strategy sends, the
refusals it retries, and the steps all of it records.

A database store (:class:`~ticketsim.sale.stores.database.DatabaseStore`) says, for each
of its strategies, which statements one attempt sends; :class:`TransactionTools`
owns what every strategy shares: calling the pacer once per purchase whatever the
retries, the race window, the retry loop and its bound, and letting go of a lock the
attempt took. The buyer (:mod:`ticketsim.sale.buyer`) does not know any of it.

Buyer processes unpickle these, so this module uses the standard library only.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Final

from ticketsim.core.db import Sale
from ticketsim.core.events import Step, buyer_name
from ticketsim.core.frozen import frozen
from ticketsim.errors import Conflict, GuardTimeout
from ticketsim.sale.steps import Tools

if TYPE_CHECKING:
    from collections.abc import Callable

    from ticketsim.core.events import Recorder
    from ticketsim.sale.steps import BuyerSpec, Pacer
    from ticketsim.sale.stores.database import DatabaseStore

#: The longest pause between two attempts. Retrying at once lets the same buyers
#: collide again; a short random pause spreads them out.
MAX_BACKOFF_S: Final = 0.005


class Attempt:
    """One attempt at a purchase: what a store's statements need from the buyer."""

    __slots__ = ("holding", "number", "pacer", "pid", "record", "spec")

    def __init__(
        self, spec: BuyerSpec, pid: int, record: Recorder, pacer: Pacer, number: int = 0
    ) -> None:
        self.spec, self.pid, self.record, self.pacer = spec, pid, record, pacer
        #: 0 for the first attempt; a retry is not paced again (see :meth:`decide`).
        self.number = number
        #: Whether the attempt holds a lock it must record letting go of.
        self.holding = False

    @property
    def buyer(self) -> int:
        return self.spec.number

    @property
    def patience(self) -> float:
        """How long a statement may wait for a lock another buyer holds."""
        return self.pacer.patience(self.spec.timeout)

    def pace(self) -> None:
        """Where a forced interleaving holds the buyer, right after its read: on the
        first attempt only, so that the pacer sees one purchase, whatever it costs."""
        if self.number == 0:
            self.pacer.after_read(self.spec.number, self.spec.timeout)

    def decide(self, remaining: int) -> bool:
        """After the read: pace, then the race window; ``False`` when none is left."""
        self.pace()
        if remaining <= 0:
            return False
        if self.spec.window:
            time.sleep(self.spec.window)
        return True

    def sale(self, seat: int) -> Sale:
        return Sale(buyer_name(self.spec.number), seat, self.pid, time.time())

    def lock(self, what: str, take: Callable[[float], bool]) -> None:
        """Wait for a lock with ``take(patience)``, recording the wait and the entry;
        :class:`GuardTimeout` when ``patience`` was not enough."""
        self.record(Step.WAIT, note=what)
        if not take(self.patience):
            raise GuardTimeout(what, self.patience)
        self.holding = True
        self.record(Step.ENTER)

    def unlocked(self) -> None:
        """Record that the lock this attempt took goes, just before the statement that
        lets it go (a COMMIT, a ROLLBACK, a DEL): recorded after it, the next holder's
        entry could come first in the history."""
        if self.holding:
            self.holding = False
            self.record(Step.LEAVE)


@frozen
class TransactionTools(Tools):
    """A buyer buys in one transaction of its store's; a refused one is tried again
    from the top when ``retry`` says so, and is otherwise the buyer's ``fail``."""

    store: DatabaseStore
    retry: bool = True

    def purchase(self, spec: BuyerSpec, pid: int, record: Recorder, pacer: Pacer) -> int | None:
        deadline = time.monotonic() + spec.timeout
        # Made at the first retry: seeding one is a hash and a large state to fill, which
        # every buyer would pay for and few use.
        backoff: random.Random | None = None
        number = 0
        try:
            while True:
                attempt = Attempt(spec, pid, record, pacer, number)
                try:
                    seat = self.store.attempt(attempt)
                except Conflict as exc:
                    attempt.unlocked()
                    self.store.abandon()
                    if not self.retry:
                        raise
                    record(Step.RETRY, note=exc.why, error=type(exc).__name__)
                except BaseException:
                    attempt.unlocked()
                    self.store.abandon()
                    raise
                else:
                    attempt.unlocked()
                    return seat
                number += 1
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"still refused after {number} attempts in {spec.timeout:g} s"
                    )
                backoff = backoff or random.Random(f"{spec.number}/retry")
                time.sleep(backoff.uniform(0, MAX_BACKOFF_S))
        finally:
            pacer.done(spec.number)
