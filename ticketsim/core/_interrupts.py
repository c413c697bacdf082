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
import contextlib
import signal
import threading
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

INTERRUPTS: Final = frozenset(
    {signal.SIGINT, signal.SIGTERM} | ({signal.SIGHUP} if hasattr(signal, "SIGHUP") else set())
)
#: Not every platform can hold signals; there the window stays, as narrow as it is.
CAN_HOLD: Final = hasattr(signal, "pthread_sigmask")


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Delay Ctrl-C, SIGTERM and SIGHUP until the block is over (in the main thread,
    where Python runs signal handlers; elsewhere it holds nothing)."""
    if not CAN_HOLD or threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []

    def note(signum: int, frame: Any) -> None:
        del frame
        noted.append(signum)

    # signal's own functions turn each handler and signal they return into an Enum
    # member, and a handler that is a function into a ValueError caught inside Enum:
    # ten times the cost of the call, and dozens of pages written each time. A sale
    # holds the signals once per buyer it starts, between forks, so that every page
    # written was copied again (a fault) after each fork. The C module's functions take
    # and return the plain numbers and handlers.
    before = {signum: _signal.signal(signum, note) for signum in INTERRUPTS}
    mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, INTERRUPTS)
    try:
        yield
    finally:
        # Unblocked under the noting handlers: what arrived while blocked is noted too.
        _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
        for signum, handler in before.items():
            # None: a handler not set from Python, which Python cannot set back.
            _signal.signal(signum, _signal.SIG_DFL if handler is None else handler)
        for arrived in dict.fromkeys(noted):  # once each, in the order they came
            signal.raise_signal(arrived)
