"""Holding Ctrl-C, SIGTERM and SIGHUP back while a process is started and recorded.

An interrupt that lands after a process was started and before its starter has it on
record would leave a process nobody ends. The starter holds these signals for that
moment; whatever arrived meanwhile is delivered when the block is over.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

INTERRUPTS: Final = frozenset(
    {signal.SIGINT, signal.SIGTERM} | ({signal.SIGHUP} if hasattr(signal, "SIGHUP") else set())
)
#: Not every platform can hold signals; there the window stays, as narrow as it is.
CAN_HOLD: Final = hasattr(signal, "pthread_sigmask")


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Delay Ctrl-C, SIGTERM and SIGHUP until the block is over (main thread only:
    signals are delivered there)."""
    if not CAN_HOLD or threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
