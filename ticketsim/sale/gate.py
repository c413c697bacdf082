"""The start gate: every buyer waits at it, and the parent opens it for all at once.

A ``multiprocessing.Event`` wakes its waiters through one ``Condition``, and each woken
waiter must then take the condition's lock in turn before its ``wait`` returns: the
buyers came through the gate one by one, each a context switch after the last, so that
the sale's first buyers had bought before the last had left the gate. Here the gate is
a pipe: opening it writes one byte that nobody reads, and every buyer polling the
pipe is woken by that one write, with no lock to pass around. The byte stays, so a pool
worker's later buyers find the gate open and go straight through.

The same is done at the other end of the sale: a buyer's own process, once the buyer
has its outcome, waits for a byte on a second pipe, which the parent writes when the
sale is over. A process that ends has its memory taken down by the kernel, on the
cores on which the buyers still buying run: the processes that ended during the sale
took about two thirds of it from them, and more under ``spawn``.

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import select
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.context import BaseContext


class PipeGate:
    """The buyers' end: picklable, and passed to every buyer explicitly.

    A plain class, not a ``@frozen`` one: it keeps whether this process saw the gate open.
    """

    __slots__ = ("conn", "opened", "over")

    def __init__(self, conn: Connection, over: Connection) -> None:
        self.conn, self.over = conn, over
        #: Whether this process has seen the gate open: it never closes again, and a
        #: crew's worker passes it once for each of its buyers.
        self.opened = False

    def __getstate__(self) -> tuple[Connection, Connection]:
        return self.conn, self.over

    def __setstate__(self, state: tuple[Connection, Connection]) -> None:
        self.conn, self.over = state
        self.opened = False

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the gate opened within ``timeout`` seconds (``None``: no bound)."""
        if not self.opened:
            self.opened = _written(self.conn, timeout)
        return self.opened

    def wait_over(self, timeout: float | None = None) -> bool:
        """Whether the sale was over within ``timeout`` seconds (``None``: no bound)."""
        return _written(self.over, timeout)


def _written(conn: Connection, timeout: float | None) -> bool:
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    ready = poller.poll(None if timeout is None else max(0, int(timeout * 1000)))
    # A hang-up with no byte is the parent gone before it wrote (a spawned buyer holds
    # no writer's end): nothing will be written.
    return any(mask & select.POLLIN for _, mask in ready)


class StartGate:
    """The parent's end: :attr:`gate` to hand out, :meth:`set` to open it."""

    def __init__(self, ctx: BaseContext) -> None:
        reader, self._writer = ctx.Pipe(duplex=False)
        try:
            over, self._over_writer = ctx.Pipe(duplex=False)
        except BaseException:
            reader.close()
            self._writer.close()
            raise
        self.gate = PipeGate(reader, over)

    def set(self) -> None:
        """Open the sale: every buyer waiting at the gate goes now, and any later one at once."""
        if not self.is_set():
            self._writer.send_bytes(b"\x01")

    def is_set(self) -> bool:
        return self.gate.wait(0)

    def end(self) -> None:
        """The sale is over: the buyers' processes waiting for that end now."""
        if not self.gate.wait_over(0):
            self._over_writer.send_bytes(b"\x01")

    def close(self) -> None:
        for conn in (self.gate.conn, self.gate.over, self._writer, self._over_writer):
            conn.close()
