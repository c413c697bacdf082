"""Ctrl-C and SIGTERM around the processes of a sale.

A terminal's Ctrl-C reaches the whole process group, and so does a ``kill`` of the
group. The parent ends every process of a sale itself, so that the history, not a
traceback per buyer, says what happened: the processes it starts ignore Ctrl-C and
die of SIGTERM, whatever handlers they inherited from the parent.

An interrupt that lands while the parent starts a process, after the fork and before
the parent has recorded the child, would leave a child nobody ends: an orphan. So the
parent holds both signals while it starts and records a process (:func:`held`), the
child inherits them held, and lifts them once its own handlers are set
(:func:`settle`); whatever arrived meanwhile is then delivered, to handlers that
expect it.

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator

_INTERRUPTS: Final = frozenset({signal.SIGINT, signal.SIGTERM})
#: Not every platform can hold signals; there the window stays, as narrow as it is.
_CAN_HOLD: Final = hasattr(signal, "pthread_sigmask")


@contextlib.contextmanager
def held() -> Iterator[None]:
    """In the parent: delay Ctrl-C and SIGTERM until the block is over."""
    if not _CAN_HOLD or threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, _INTERRUPTS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def settle() -> None:
    """In a process the sale started, first thing: ignore Ctrl-C, die of SIGTERM, and
    only then take the signals that were held while it started."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if _CAN_HOLD:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _INTERRUPTS)
