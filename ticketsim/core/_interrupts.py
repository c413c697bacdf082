"""Holding Ctrl-C, SIGTERM and SIGHUP back while a process is started and recorded.

An interrupt that lands after a process was started and before its starter has it on
record would leave a process nobody ends. The starter holds these signals for that
moment; whatever arrived meanwhile is delivered when the block is over.

Two things hold them, because either alone leaks. The main thread blocks them, so
that a process started in the block inherits them blocked (it takes them once its own
handlers are set). And the main thread's handlers are swapped for ones that only take
note: the kernel delivers a process-wide signal to any thread that does not block it,
and Python then runs the handler in the main thread, inside the block, whatever the
main thread's mask says.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal.py without its Enums
import signal
import threading
from typing import Any, Final

INTERRUPTS: Final = frozenset(
    {signal.SIGINT, signal.SIGTERM} | ({signal.SIGHUP} if hasattr(signal, "SIGHUP") else set())
)
#: The same, in the order they are held and let go.
_HELD: Final = tuple(sorted(INTERRUPTS))
#: Not every platform can hold signals; there the window stays, as narrow as it is.
CAN_HOLD: Final = hasattr(signal, "pthread_sigmask")


def held() -> Held:
    """Delay Ctrl-C, SIGTERM and SIGHUP until the block is over (in the main thread,
    where Python runs signal handlers; elsewhere it holds nothing)."""
    return Held()


class Held:
    """A block of :func:`held`, which may be entered again once it is over.

    A sale holds the signals once per buyer it starts, between forks, and after each
    fork every page of the parent's memory it then writes is copied (a fault): what
    the block makes anew, it pays for again at every fork. A loop that starts many
    processes makes one ``Held`` and enters it for each; it keeps its handler and its
    list of handlers replaced, and makes nothing but the mask the system hands back.
    """

    __slots__ = ("_before", "_holding", "_mask", "_note", "_noted")

    def __init__(self) -> None:
        self._noted: list[int] = []
        self._before: list[Any] = [None] * len(_HELD)
        self._holding = False
        self._mask: Any = None
        self._note = self._noted_signal  # one bound method, made once

    def _noted_signal(self, signum: int, frame: Any) -> None:
        del frame
        self._noted.append(signum)

    def __enter__(self) -> None:
        self._holding = CAN_HOLD and threading.current_thread() is threading.main_thread()
        if not self._holding:
            return
        # signal's own functions turn each handler and signal they return into an Enum
        # member, and a handler that is a function into a ValueError caught inside
        # Enum: ten times the cost of the call, and dozens of pages written each time.
        # The C module's functions take and return the plain numbers and handlers.
        for index, signum in enumerate(_HELD):
            self._before[index] = _signal.signal(signum, self._note)
        self._mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, _HELD)

    def __exit__(self, *exc: object) -> None:
        if not self._holding:
            return
        # Unblocked under the noting handlers: what arrived while blocked is noted too.
        _signal.pthread_sigmask(_signal.SIG_SETMASK, self._mask)
        for index, signum in enumerate(_HELD):
            handler, self._before[index] = self._before[index], None
            # None: a handler not set from Python, which Python cannot set back.
            _signal.signal(signum, _signal.SIG_DFL if handler is None else handler)
        if self._noted:
            arrived = dict.fromkeys(self._noted)  # once each, in the order they came
            self._noted.clear()
            for arrival in arrived:
                signal.raise_signal(arrival)
