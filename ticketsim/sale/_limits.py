"""The machine refusing what a sale needs: a process, a thread, a file descriptor.

``fork`` fails with ``EAGAIN`` at the process limit (``ulimit -u``, which counts
threads too, or a container's pids limit) and with ``ENOMEM`` without memory; a pipe,
a socket or a lock fails with ``EMFILE`` at the open-file limit (``ulimit -n``).
Python says ``can't start new thread`` when a thread is refused, and under
``forkserver`` the parent only sees the forkserver die (``EOFError``). Each becomes a
:class:`~ticketsim.errors.SystemRefused` (exit 4) that names the limit and what to do,
where the sale starts a process; the caller's ``finally`` ends those already started.

Used by the parent only (the buyers start nothing).
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
from typing import TYPE_CHECKING, Final

from ticketsim.errors import SystemRefused

if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.context import BaseContext

#: The errors of a refused process or thread, and those of a refused file descriptor.
PROCESS_ERRNOS: Final = frozenset({errno.EAGAIN, errno.ENOMEM})
FILE_ERRNOS: Final = frozenset({errno.EMFILE, errno.ENFILE})
#: Under forkserver a refused fork shows only as the forkserver dying.
FORK_DIED: Final = "the forkserver died forking it (the process limit is the usual cause)"
#: What ``threading.Thread.start`` raises when the system refuses the thread.
_NO_THREAD: Final = "can't start new thread"


def _ulimit(which: str, flag: str) -> str:
    try:
        import resource  # noqa: PLC0415 - Unix only, and only to word an error

        soft, _ = resource.getrlimit(getattr(resource, which))
    except (ImportError, AttributeError, OSError, ValueError):
        return f"ulimit {flag}"
    return f"ulimit {flag}: {'unlimited' if soft == resource.RLIM_INFINITY else soft}"


#: The process limit, in words: the user's (``ulimit -u``) or, in a container, its
#: cgroup's (``pids.max``), which refuses a fork with the same EAGAIN.
_PROCESSES: Final = "the process limit ({}, or a container's pids.max; threads count too)"


def cause(exc: BaseException) -> str | None:
    """The limit that refused ``exc``, in words; ``None`` if ``exc`` is not a refusal."""
    if isinstance(exc, OSError) and exc.errno == errno.EAGAIN:
        return _PROCESSES.format(_ulimit("RLIMIT_NPROC", "-u"))
    if isinstance(exc, OSError) and exc.errno == errno.ENOMEM:
        return "the memory left on the machine"
    if isinstance(exc, OSError) and exc.errno == errno.EMFILE:
        return f"the open-file limit ({_ulimit('RLIMIT_NOFILE', '-n')})"
    if isinstance(exc, OSError) and exc.errno == errno.ENFILE:
        return "the system's table of open files, which is full"
    if isinstance(exc, RuntimeError) and _NO_THREAD in str(exc):
        return _PROCESSES.format(_ulimit("RLIMIT_NPROC", "-u"))
    return None


@contextlib.contextmanager
def starting(what: str, advice: str, *, died: str | None = None) -> Iterator[None]:
    """Turn the machine refusing ``what`` (``"buyer 3 of 50"``) into SystemRefused.

    ``advice`` is what the user can change (``"lower --buyers"``); raising the limit
    is always offered too. ``died``, if given, is what it means that the process
    died as it started (``EOFError``, a reset connection): under ``forkserver`` and
    for a server process, the only sign of a refused fork.
    """
    try:
        yield
    except SystemRefused:
        raise
    except (OSError, RuntimeError, EOFError) as exc:
        refused = refusal(exc, what, advice, died=died)
        if refused is None:
            raise
        raise refused from exc


def refusal(
    exc: BaseException, what: str, advice: str, *, died: str | None = None
) -> SystemRefused | None:
    """What :func:`starting` raises for ``exc``, or ``None`` if ``exc`` is no refusal:
    for a loop that starts many processes and should make nothing per process when
    none is refused (a ``try`` costs nothing until it catches)."""
    if isinstance(exc, SystemRefused):
        return None
    limit = cause(exc)
    if limit is not None:
        reason = f"{limit} refused it"
    elif died is not None and isinstance(exc, EOFError | ConnectionError):
        reason = died
    else:
        return None
    return SystemRefused(f"starting {what}", f"{reason}; {advice}, or raise the limit")


def context(start_method: str | None) -> BaseContext:
    """multiprocessing's context for ``start_method``, its resource tracker running
    already if the context names its semaphores (all but ``fork``).

    Such a semaphore is made first and handed to the tracker after, by a process the
    tracker's start forks: when the process limit refuses that fork, nothing ever
    removes the name, and it stays in ``/dev/shm`` for good. Started here, before any
    semaphore, the tracker is refused with nothing made yet.
    """
    ctx = multiprocessing.get_context(start_method)
    if ctx.get_start_method() != "fork":
        from multiprocessing import resource_tracker  # noqa: PLC0415 - not for fork

        with starting("multiprocessing's resource tracker", "lower --buyers"), _quiet_tracker():
            resource_tracker.ensure_running()
    return ctx


#: The tracker's warning, as ``PYTHONWARNINGS`` names it (its module, matched whole).
_TRACKER_WARNING: Final = "ignore::UserWarning:multiprocessing.resource_tracker"


@contextlib.contextmanager
def _quiet_tracker() -> Iterator[None]:
    """Start the tracker with its leak warning off. When ticketsim is SIGKILLed the
    tracker removes the semaphores it left, as it is there to, and then warned of
    them on the terminal, after the shell's prompt: nothing the user can act on, as
    nothing is left. The tracker reads its warnings from the environment it starts in."""
    before = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = f"{before},{_TRACKER_WARNING}" if before else _TRACKER_WARNING
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONWARNINGS"]
        else:
            os.environ["PYTHONWARNINGS"] = before
