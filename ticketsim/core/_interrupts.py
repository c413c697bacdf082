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

    before = {signum: signal.signal(signum, note) for signum in INTERRUPTS}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        yield
    finally:
        # Unblocked under the noting handlers: what arrived while blocked is noted too.
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for signum, handler in before.items():
            # None: a handler not set from Python, which Python cannot set back.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        for arrived in dict.fromkeys(noted):  # once each, in the order they came
            signal.raise_signal(arrived)
