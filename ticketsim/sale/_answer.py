"""A bound on how long this process waits for a server's answer.

A server that is stopped (``SIGSTOP``, a frozen VM), not gone, keeps its connections
open: its kernel acknowledges every byte, so neither TCP keepalives nor libpq's
``tcp_user_timeout`` ever fire, and libpq has no timeout of its own on an answer. A
client-side alarm is the only bound that holds, so ticketsim's own statements run
under one (:func:`answer`); a buyer's purchase does not, as the sale's stall watch
already ends a buyer that waits too long.

The alarm is ``SIGALRM``, so the bound holds in the main thread only (where every
command and every buyer runs); elsewhere the wait is unbounded, as it was. An alarm
already set to ring sooner (pytest-timeout's, say) is left to ring; one set to ring
later is put back, less the time spent here.

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import signal
import threading
import time
from typing import TYPE_CHECKING, Any, Final, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

#: How long one statement of ticketsim's own may wait for its answer; Redis's client
#: has the same as its socket timeout.
ANSWER_S: Final = 30.0


_R = TypeVar("_R")


class NoAnswer(TimeoutError):
    """What :func:`answer` raises: the bound ran out (not a TimeoutError of the call's own)."""


class _Rang(BaseException):
    """The alarm, raised into the wait it ended. A ``BaseException``, as
    ``KeyboardInterrupt`` is, so that no ``except Exception`` on the way swallows it."""


def answer(seconds: float, wait: Callable[[], _R]) -> _R:
    """``wait()``; :class:`NoAnswer` if it is still waiting after ``seconds``."""
    bound = _Bound(seconds)
    try:
        with bound:
            return wait()
    except _Rang:  # it rang on the way into the block, or out of it before its exit ran
        bound.disarm()
        raise NoAnswer(f"no answer within {seconds:g} s") from None


class _Bound:
    """The alarm of one :func:`answer`: set on entry, put back as it was on exit."""

    __slots__ = ("_armed", "_before", "_began", "_installed", "_interval", "_previous", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._armed = self._installed = False
        self._previous: Any = None
        self._before = self._interval = self._began = 0.0

    def _ring(self, signum: int, frame: FrameType | None) -> None:
        del signum
        # Not once the block has ended: its exit has begun, and the answer came in time.
        if self._armed and (frame is None or frame.f_code not in _EXITS):
            raise _Rang

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self._before, self._interval = signal.getitimer(signal.ITIMER_REAL)
        if 0 < self._before <= self.seconds:  # someone else's alarm rings first: let it
            return
        self._previous = signal.signal(signal.SIGALRM, self._ring)
        self._installed = True
        self._began = time.monotonic()
        self._armed = True
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, kind: type[BaseException] | None, value: object, tb: object) -> None:
        self.disarm()
        if kind is _Rang:
            raise NoAnswer(f"no answer within {self.seconds:g} s") from None

    def disarm(self) -> None:
        """Put back the alarm and the handler as they were; again does nothing."""
        self._armed = False
        if not self._installed:
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        self._installed = False
        # None: a handler not set from Python, which cannot be put back but as the default.
        signal.signal(signal.SIGALRM, signal.SIG_DFL if self._previous is None else self._previous)
        if self._before > 0:
            left = self._before - (time.monotonic() - self._began)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6), self._interval)


#: Where a ring means the block is over (Python runs a handler at a function's start).
_EXITS: Final = frozenset((_Bound.__exit__.__code__, _Bound.disarm.__code__))
