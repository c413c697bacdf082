"""Buyers as threads of ticketsim's own process (``--workers threads``).

A thread cannot be killed. When the sale ends early (an interrupt, a stall) every buyer
thread is told (:class:`~ticketsim.sale.threads.Ending`): one in its race window stops
at once, and none writes after that. One that hangs anyway is given a bounded join,
then left behind as a daemon thread (it dies with the program), and its buyer's
history says it was ended.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any, Final

from ticketsim.engine.crews import Crew
from ticketsim.sale import _signals
from ticketsim.sale.buyer import run_buyer
from ticketsim.sale.steps import Pacer
from ticketsim.sale.threads import Ending

if TYPE_CHECKING:
    from collections.abc import Collection

    from ticketsim.sale.steps import BuyerSpec, Tools

#: Grace given to the threads to finish once the sale is over.
JOIN_S: Final = 5.0
#: Grace given to the threads to stop once they are told the sale ended early: enough
#: for those that hold a lock to let go of it without writing, and the next to do so.
ENDING_S: Final = 1.0


class ThreadCrew(Crew):
    """One ``threading.Thread`` per buyer, named ``buyer-N``."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        #: The buyers' pacer, which tells them when ticketsim ends the sale early.
        self.pacer = Ending(Pacer(), threading.Event())

    def start(self, specs: list[BuyerSpec], args: tuple[Any, ...]) -> None:
        tools: Tools = args[0]
        self.pacer = Ending(args[-1], threading.Event())
        args = (*args[:-1], self.pacer)
        # Once, for every thread: they share the process, and what it loads. What fails
        # here fails again in each buyer's first step, where it is recorded.
        with contextlib.suppress(Exception):
            tools.prepare()
        for spec in specs:
            thread = threading.Thread(
                target=run_buyer,
                name=spec.name,
                args=(spec, *args),
                kwargs={"prepared": True},
                daemon=True,  # a hung buyer must not keep ticketsim from exiting
            )
            with _signals.held():  # an interrupt now must find the buyer in the list
                thread.start()
                self.threads.append(thread)

    @property
    def at_once(self) -> int:
        return len(self.threads)

    def alive(self, ended: Collection[int] = frozenset()) -> bool:
        return any(t.is_alive() for n, t in enumerate(self.threads, start=1) if n not in ended)

    def end(self, *, at_once: bool) -> set[int]:
        if at_once:
            # Those still buying are ended by ticketsim, however quickly they then stop.
            ended = {n for n, t in enumerate(self.threads, start=1) if t.is_alive()}
            self.pacer.end()
            _join(self.threads, ENDING_S)
            return ended
        _join(self.threads, JOIN_S)
        return {n for n, t in enumerate(self.threads, start=1) if t.is_alive()}

    def exit_codes(self) -> tuple[int | None, ...]:
        return ()


def _join(threads: list[threading.Thread], seconds: float) -> None:
    """Join every thread, for ``seconds`` in all."""
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
