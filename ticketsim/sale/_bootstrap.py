"""Quiet the start-up of a process the sale started, before ticketsim's code runs in it.

A worker or buyer that the machine refused something as it started (a fork, a thread),
or whose parent gave up and left while it was starting (its semaphores already gone),
dies in multiprocessing's own bootstrap; the parent says why in one line (exit 4), and
the child's traceback would only bury that line. Errors raised by ticketsim's code are
not touched: ``Process`` prints those itself, and a buyer records them as events.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import TracebackType


def _quiet_faults(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, OSError | EOFError):
        return  # a refused fork, or a parent gone: the parent reports what matters
    sys.__excepthook__(kind, exc, tb)


def install() -> None:
    sys.excepthook = _quiet_faults
