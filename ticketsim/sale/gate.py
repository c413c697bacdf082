"""The start gate: every buyer waits at it, and the parent opens it for all at once.

A ``multiprocessing.Event`` wakes its waiters through one ``Condition``, and each woken
waiter must then take the condition's lock in turn before its ``wait`` returns: the
buyers came through the gate one by one, each a context switch after the last, so that
the sale's first buyers had bought before the last had left the gate. Here the gate is
a pipe: opening it writes one byte that nobody reads, and every buyer polling the
pipe is woken by that one write, with no lock to pass around. The byte stays, so a pool
worker's later buyers find the gate open and go straight through.

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

    A plain class, not a dataclass: every spawned buyer builds the classes it imports,
    and a dataclass costs more to build than this whole class is worth.
    """

    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def __getstate__(self) -> Connection:
        return self.conn

    def __setstate__(self, conn: Connection) -> None:
        self.conn = conn

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the gate opened within ``timeout`` seconds (``None``: no bound)."""
        poller = select.poll()
        poller.register(self.conn.fileno(), select.POLLIN)
        ready = poller.poll(None if timeout is None else max(0, int(timeout * 1000)))
        # A hang-up with no byte is the parent gone before it opened the sale (a spawned
        # buyer holds no writer's end): the gate will never open.
        return any(mask & select.POLLIN for _, mask in ready)


class StartGate:
    """The parent's end: :attr:`gate` to hand out, :meth:`set` to open it."""

    def __init__(self, ctx: BaseContext) -> None:
        reader, self._writer = ctx.Pipe(duplex=False)
        self.gate = PipeGate(reader)

    def set(self) -> None:
        """Open the sale: every buyer waiting at the gate goes now, and any later one at once."""
        if not self.is_set():
            self._writer.send_bytes(b"\x01")

    def is_set(self) -> bool:
        return self.gate.wait(0)

    def close(self) -> None:
        self.gate.conn.close()
        self._writer.close()
