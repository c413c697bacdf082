"""Ctrl-C, SIGTERM and SIGHUP around the processes of a sale, and their lifetime.

A terminal's Ctrl-C reaches the whole process group, and so does a ``kill`` of the
group. The parent ends every process of a sale itself, so that the history, not a
traceback per buyer, says what happened: the processes it starts ignore Ctrl-C and
die of SIGTERM and SIGHUP, whatever handlers they inherited from the parent.

An interrupt that lands while the parent starts a process, after the fork and before
the parent has recorded the child, would leave a child nobody ends: an orphan. So the
parent holds these signals while it starts and records a process (:func:`held`), the
child inherits them held, and lifts them once its own handlers are set
(:func:`as_child`); whatever arrived meanwhile is then delivered, to handlers that
expect it.

A parent that is SIGKILLed runs no ``finally``: nobody ends its processes. So each of
them dies with ticketsim by itself (:func:`as_child` ties it): on Linux the kernel kills
it when its parent dies (``PR_SET_PDEATHSIG``); elsewhere a thread of its own watches
for the ticketsim process that started it, and ends it once that one is gone.

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal.py without its Enums
import functools
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any, Final

from ticketsim.core._interrupts import CAN_HOLD, INTERRUPTS
from ticketsim.core._interrupts import held as held  # noqa: PLC0414 - where the sale looks for it

#: ``prctl(2)``'s option that makes the kernel signal a process when its parent dies.
_PR_SET_PDEATHSIG: Final = 1
#: How often a process without that option looks for the ticketsim process that started it.
WATCH_S: Final = 0.1


def as_child() -> None:
    """In a process the sale started, first thing: die with ticketsim, ignore Ctrl-C,
    die of SIGTERM and SIGHUP, and only then take the signals held while it started."""
    tie_to_owner()
    if threading.current_thread() is not threading.main_thread():
        return
    # The C module's functions, as in held(): signal's turn the handler they replace
    # (Python's, inherited) into a ValueError caught inside Enum, in every buyer.
    _signal.signal(signal.SIGINT, _signal.SIG_IGN)
    for ending in INTERRUPTS - {signal.SIGINT}:
        _signal.signal(ending, _signal.SIG_DFL)
    if CAN_HOLD:
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, INTERRUPTS)


def tie_to_owner(*, kernel: bool = True) -> None:
    """End this process when the ticketsim process that started it is gone.

    That process is multiprocessing's ``parent_process()`` under every start method
    (under ``forkserver`` the forkserver forked this one, but ticketsim asked for it).
    With ``kernel`` false the watch thread is used even where the kernel could do it.
    """
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None:
        return  # not started by multiprocessing: nobody to outlive
    owner = parent.pid
    direct = os.getppid() == owner
    # The kernel ties a process to its parent only: under forkserver, that is the
    # forkserver, which outlives a SIGKILLed ticketsim while its children hold its pipe.
    if not (kernel and direct and die_with_parent()):
        threading.Thread(
            target=_watch, args=(owner, direct), name="ticketsim-watch", daemon=True
        ).start()
    # The owner may have died before the kernel was asked (a SIGKILL during start-up).
    if not owner_alive(owner, direct=direct):
        _die()


def die_if_orphaned() -> None:
    """End this process now if the ticketsim process that started it is gone: a wait
    that ended with it (the gate's pipe hung up) would otherwise go on to tell nobody,
    and a pool worker to hand its task back down a broken pipe, with a traceback on
    the terminal, before its watch thread's next look."""
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid is None:
        return
    if not owner_alive(parent.pid, direct=os.getppid() == parent.pid):
        _die()


def tie_to_parent(parent: int) -> None:
    """In a process a buyer forked itself (not through multiprocessing), first thing:
    end it when that buyer, ``parent``, is gone, as :func:`as_child` ties a buyer to
    ticketsim. A buyer's children are nobody else's to end: ticketsim knows only the
    buyer, and a child left to run would outlive the sale, holding its output."""
    if not die_with_parent():
        threading.Thread(
            target=_watch, args=(parent, True), name="ticketsim-watch", daemon=True
        ).start()
    if os.getppid() != parent:  # gone before the kernel was asked
        _die()


def owner_alive(owner: int, *, direct: bool = False) -> bool:
    """Whether the process ``owner`` still runs.

    ``direct``: ``owner`` was this process's parent when it started. It is then alive
    while it stays the parent: a dead one's children go to another at once, while
    its pid still answers as a zombie until whoever started it reaps it.
    """
    if os.getppid() == owner:
        return True
    if direct:
        return False
    try:
        os.kill(owner, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone's process has the pid; ours are never another user's
    return not _zombie(owner)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has ended and waits to be reaped (``False`` where /proc is not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def _watch(owner: int, direct: bool) -> None:
    while owner_alive(owner, direct=direct):
        time.sleep(WATCH_S)
    _die()


def _die() -> None:
    # As the kernel would: no handler, no cleanup that could wait on the dead parent.
    os.kill(os.getpid(), signal.SIGKILL)


def die_with_parent() -> bool:
    """Ask the kernel for SIGKILL when the parent dies; whether it agreed."""
    if not sys.platform.startswith("linux"):
        return False
    prctl = _libc_prctl()
    if prctl is None:
        return False
    return bool(prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0)


def load_in_parent() -> None:
    """In the parent, before it forks processes: load what :func:`as_child` uses, so
    that each fork inherits it instead of loading it again (the C library's ``prctl``,
    looked up through ctypes, cost each buyer a class of its own)."""
    if sys.platform.startswith("linux"):
        _libc_prctl()


@functools.cache
def _libc_prctl() -> Any:
    try:
        import ctypes  # noqa: PLC0415 - Linux only, and only in a started process

        return ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None
