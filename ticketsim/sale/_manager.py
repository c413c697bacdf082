"""The ``manager`` strategy's server process, made to fail instead of hanging.

A ``multiprocessing`` manager's server starts a thread for every connection, and
every buyer (and every proxy call of the parent that makes a new object) connects.
At the process limit, which counts threads, ``Thread.start`` fails in the server's
accepting thread: the stock server lets that thread die with a traceback, and from
then on every connection waits for a reply that never comes, the parent's shutdown
included. This server closes a connection it cannot serve (its client gets an error
at once, recorded in the history), keeps accepting, and counts each refusal where
the parent can read it; the parent then ends the run with exit 4 naming the limit.

The server process imports this module, so it uses the standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import sys
import threading
import time
from multiprocessing import managers, process
from typing import TYPE_CHECKING, Any, Final

from ticketsim.errors import SystemRefused
from ticketsim.sale import _limits, _signals

if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.context import BaseContext

#: Pause of the accepting thread after the open-file limit refused it a connection.
_REFUSED_PAUSE_S: Final = 0.05
#: In the server process: how many threads (cell 0) and connections (cell 1) the
#: machine refused it, in shared memory the parent reads.
_refusals: Any = None
_THREAD, _FILE = 0, 1


def _refused(kind: int) -> None:
    if _refusals is not None:
        _refusals[kind] += 1


class _Server(managers.Server):
    """The stock server, but a connection it cannot serve is closed and counted."""

    def serve_forever(self) -> None:
        self.stop_event = threading.Event()
        process.current_process()._manager_server = self  # type: ignore[attr-defined]
        accepter = threading.Thread(target=self.accepter, daemon=True)
        try:
            accepter.start()
        except RuntimeError:
            _refused(_THREAD)
            sys.exit(0)  # the parent's first call fails, and the count says why
        while not self.stop_event.is_set():
            self.stop_event.wait(1)
        sys.exit(0)

    def accepter(self) -> None:
        while True:
            try:
                conn = self.listener.accept()  # type: ignore[attr-defined]
            except OSError as exc:
                if exc.errno in _limits.FILE_ERRNOS:
                    _refused(_FILE)
                    time.sleep(_REFUSED_PAUSE_S)  # not a busy loop while the limit holds
                continue
            serving = threading.Thread(target=self.handle_request, args=(conn,), daemon=True)
            try:
                serving.start()
            except RuntimeError:
                _refused(_THREAD)
                conn.close()  # its client fails now, instead of waiting forever


class TicketManager(managers.SyncManager):
    """A ``SyncManager`` whose server is :class:`_Server`."""

    _Server = _Server


def _serve(refusals: Any) -> None:
    """The server process's initializer: die with ticketsim, keep the count."""
    global _refusals  # noqa: PLW0603 - one per server process, set once
    _refusals = refusals
    _signals.as_child()


def _refusal(refusals: Any) -> SystemRefused:
    threads, files = refusals[_THREAD], refusals[_FILE]
    refused = OSError(errno.EAGAIN if threads else errno.EMFILE, "refused")
    return SystemRefused(
        "running the Manager's server",
        f"{_limits.cause(refused)} refused {threads + files} "
        f"{'thread(s)' if threads else 'connection(s)'} the buyers needed; "
        "lower --buyers, or raise the limit",
    )


@contextlib.contextmanager
def serving(ctx: BaseContext) -> Iterator[TicketManager]:
    """A started :class:`TicketManager`, shut down on the way out; SystemRefused if
    the machine refused its server what it needed to serve the sale."""
    refusals = ctx.RawArray("i", 2)
    manager = TicketManager(ctx=ctx)
    died = "the Manager's server died as it started (the process or file limit is the usual cause)"
    try:
        with contextlib.ExitStack() as stack:
            # Like the buyers, the manager ignores Ctrl-C: the parent reads the sales
            # from it when the sale ends, however it ends, and then shuts it down.
            with (
                _signals.held(),  # an interrupt lands once its shutdown is registered
                _limits.starting("the Manager's server process", "lower --buyers", died=died),
            ):
                manager.start(_serve, (refusals,))
                stack.enter_context(manager)
            yield manager
    except Exception as exc:
        if any(refusals):
            raise _refusal(refusals) from exc
        raise
    if any(refusals):
        raise _refusal(refusals)
