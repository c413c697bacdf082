"""A bound on how long this process waits for a server's answer.

A server that is stopped (``SIGSTOP``, a frozen VM), not gone, keeps its connections
open: its kernel acknowledges every byte, so neither TCP keepalives nor libpq's
``tcp_user_timeout`` ever fire, and libpq has no timeout of its own on an answer. A
client-side alarm is the only bound that holds, so ticketsim's own statements run
under one (:func:`within`); a buyer's purchase does not, as the sale's stall watch
already ends a buyer that waits too long.

The alarm is ``SIGALRM``, so the bound holds in the main thread only (where every
command and every buyer runs); elsewhere the wait is unbounded, as it was. An alarm
already set to ring sooner (pytest-timeout's, say) is left to ring; one set to ring
later is put back, less the time spent here.

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import FrameType

#: How long one statement of ticketsim's own may wait for its answer; Redis's client
#: has the same as its socket timeout.
ANSWER_S: Final = 30.0


class _Rang(BaseException):
    """The alarm, raised into the wait it ended. A ``BaseException``, as
    ``KeyboardInterrupt`` is, so that no ``except Exception`` on the way swallows it."""


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """Run the block; :class:`TimeoutError` if it is still waiting after ``seconds``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before, interval = signal.getitimer(signal.ITIMER_REAL)
    if 0 < before <= seconds:  # someone else's alarm rings first: let it
        yield
        return
    armed = [True]

    def ring(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        if armed[0]:  # not once the block has ended, on its way out
            raise _Rang

    previous = signal.signal(signal.SIGALRM, ring)
    began = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Rang:
        raise TimeoutError(f"no answer within {seconds:g} s") from None
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)
        if before > 0:
            left = before - (time.monotonic() - began)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6), interval)
