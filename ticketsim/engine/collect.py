"""The parent's end of the sale's event pipe: the history, as the buyers send it.

The parent never waits without a bound: a wait that sees no progress for its timeout
is abandoned, and says why.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from ticketsim.core.events import OUTCOMES, Event, Step
from ticketsim.sale.channel import EventChannel, decode_records, step_code

if TYPE_CHECKING:
    from ticketsim.engine.crews import Crew

Watcher = Callable[[Event], None]

#: How long the parent blocks on the event queue before it looks at the processes again.
_POLL_S: Final = 0.05
#: How long the parent lets the events of a free sale gather before it reads them: a
#: pipe holds some thousand events, and a sale's end is seen this much later at most.
#: (A schedule's grants do not wait on the events, and the ready phase is before the
#: sale's clock starts; neither gathers.)
GATHER_S: Final = 0.002
#: What counts as progress once the sale is open: a buyer told yes or no.
_ANSWERS: Final = frozenset({Step.OK, Step.FAIL})
#: Events that show buyers busy without progress, in the words of a stall's reason.
_BUSY: Final = {Step.TORN: "torn read(s) retried", Step.ERROR: "buyer(s) gave up"}


@dataclass
class Inbox:
    """The events of one sale, gathered from ``channel`` while ``crew`` runs its buyers;
    ``watch`` sees each as it arrives (a live view, a progress bar)."""

    channel: EventChannel
    crew: Crew
    watch: Watcher | None = None
    _history: list[Event] = field(default_factory=list)
    #: Whole records received during the sale and not yet decoded, in order: with nobody
    #: watching, the parent follows the sale by each event's buyer and step alone.
    _unread: list[bytes] = field(default_factory=list)

    @property
    def history(self) -> list[Event]:
        """Every event so far, in the order received (the same list each time)."""
        for data in self._unread:
            self._history += decode_records(data)
        self._unread.clear()
        return self._history

    def wait_ready(self, timeout: float, start_method: str) -> str | None:
        """Wait for every buyer running at once to be ready; why not, if they were not."""
        stalled = self.collect(until=Step.READY, expected=self.crew.at_once, timeout=timeout)
        unready = stalled is not None and not any(e.step is Step.READY for e in self.history)
        if unready and start_method != "fork":
            stalled = unready_because(start_method, f"{stalled}; no buyer ever got ready")
        return stalled

    def collect(
        self,
        *,
        until: Step | None,
        expected: int,
        timeout: float,
        aborted: Callable[[], str | None] | None = None,
    ) -> str | None:
        """Gather events until ``expected`` buyers have sent ``until`` (``None``: an outcome).

        Returns ``None`` when they all did or every process has exited, or why the wait
        was abandoned: ``aborted`` said why, or there was no progress for ``timeout``
        seconds. Progress is a buyer reaching ``until`` or, in the sale, learning its
        outcome (``ok``, ``fail``): a retried read or a buyer giving up is not, or buyers
        that only retry would never stall.
        """
        steps = OUTCOMES if until is None else frozenset({until})
        progress = _ANSWERS if until is None else steps
        # A buyer that has already finished has certainly passed READY.
        done = {e.buyer for e in self.history if e.step in steps or e.step in OUTCOMES}
        gather_s = GATHER_S if until is None and aborted is None else 0.0
        # Followed by buyer and step alone, decoded once the sale is over (nobody watches).
        raw = until is None and self.watch is None
        if raw:
            self._history += self.channel.decoded()
        ending = {step_code(step) for step in steps | OUTCOMES}
        moving = {step_code(step) for step in progress}
        last_progress = time.monotonic()
        while len(done) < expected:
            reason = aborted() if aborted else None
            if reason is not None:
                return reason
            heads: list[tuple[int, int]] = []
            try:
                if raw:
                    data, heads = self.channel.receive(timeout=_POLL_S, gather_s=gather_s)
                    self._unread.append(data)
                else:
                    event = self.channel.get(timeout=_POLL_S, gather_s=gather_s)
                    self._keep(event)
                    heads = [(event.buyer, step_code(event.step))]
            except queue.Empty:
                # A buyer with its outcome may wait for the sale's end in its process.
                if not self.crew.alive(done if until is None else frozenset()):
                    # Every process has exited and the pipe is empty: the buyers still
                    # missing died without a word. The sale is over, not stalled; the
                    # report counts them as unknown outcomes.
                    return None
            now = time.monotonic()
            for buyer, step in heads:
                if step in moving:
                    last_progress = now
                if step in ending:
                    done.add(buyer)
            # Events that are not progress may keep coming (torn reads, buyers giving
            # up): the sale is stalled all the same, and must be seen to be within its timeout.
            if len(done) < expected and now - last_progress > timeout:
                owed = expected - len(done)
                return self._no_progress(now - last_progress, owed, until, last_progress)
        return None

    def drain(self) -> None:
        """Keep the events that arrived after the collection stopped (a stalled sale's
        last words). Called once every process has exited, so whatever they wrote is in
        the pipe already."""
        while True:
            try:
                self.history.append(self.channel.get(timeout=0))
            except queue.Empty:
                return

    def _keep(self, event: Event) -> None:
        self.history.append(event)
        if self.watch is not None:
            self.watch(event)

    def _no_progress(self, idle: float, owed: int, until: Step | None, since: float) -> str:
        """Why a wait was abandoned, with what the buyers did meanwhile that was not progress."""
        waiting = "an outcome" if until is None else f"{until.value!r}"
        reason = f"no progress for {idle:.1f} s: {owed} buyer(s) still owed {waiting}"
        busy = Counter(e.step for e in self.history if e.t >= since and e.step in _BUSY)
        if busy:
            what = ", ".join(f"{n} {_BUSY[step]}" for step, n in sorted(busy.items()))
            reason += f" (meanwhile {what})"
        return reason


def unready_because(start_method: str | None, what: str) -> str:
    """``what`` (buyers that never got ready), and the usual cause under this start method:
    a pool's workers that die as they start are replaced forever, so a crew says it
    only by stalling."""
    method = start_method or multiprocessing.get_start_method()
    if method == "fork":
        return what + " (its stderr says why)"
    return what + (
        ": under spawn and forkserver the main module is imported again in every buyer, "
        'so a script must start the sale under `if __name__ == "__main__":`'
    )
