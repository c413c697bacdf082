"""Preloaded by the forkserver of a ``forkserver`` sale (``set_forkserver_preload``).

The forkserver is a process ticketsim starts, so it dies with ticketsim like the
others (``PR_SET_PDEATHSIG`` on Linux; it also exits once ticketsim's end of its
"alive" pipe closes). And it is quiet: when the machine refuses it a fork it dies, and
the parent says so in one line (exit 4); the forkserver's own traceback, and those of
children left without their parent, would only bury that line.

Importing this module is what it does; nothing but the forkserver imports it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from ticketsim import _signals

if TYPE_CHECKING:
    from types import TracebackType


def _quiet_faults(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, OSError | EOFError):
        return  # a refused fork, or a parent gone: the parent reports what matters
    sys.__excepthook__(kind, exc, tb)


_signals.die_with_parent()
sys.excepthook = _quiet_faults
