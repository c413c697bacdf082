"""Your own buyer under ticketsim's scheduler: the buyer's side.

Your buyer is any function ``buy(handle, buyer) -> seat or None`` (``None``: sold out),
which marks the points where another buyer may come between its steps by calling
:func:`step`. Under ticketsim each buyer is a process of its own, and each mark is a
turn: the buyer says where it is, then waits until the scheduler lets it go on. Only
one buyer moves at a time, so a schedule (who moves at each turn) fixes the whole
interleaving, run after run. Outside ticketsim, :func:`step` does nothing.

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from ticketsim.sale import _signals

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection


class _Here:
    """This process's line to the scheduler: set only in a buyer process ticketsim
    started, for the buyer it runs (one per process); never shared."""

    control: Connection | None = None
    timeout: float = 0.0


_here = _Here()


def step(name: str, value: int | None = None) -> None:
    """Mark a point in your buyer where another buyer may come in: ``name`` is the
    step's name in ticketsim's reports, ``value`` what the buyer saw there (the count
    it read, say), if it matters. Outside ticketsim it does nothing."""
    control = _here.control
    if control is None:
        return
    control.send(("mark", name, value))
    _turn(control, _here.timeout)


def _turn(control: Connection, timeout: float) -> None:
    if not control.poll(timeout):
        raise TimeoutError(f"ticketsim's scheduler gave this buyer no turn in {timeout:g} s")
    control.recv()


def run_yours(
    buy: Callable[[Any, int], int | None],
    handle: Any,
    number: int,
    control: Connection,
    timeout: float,
) -> None:
    """The body of one buyer process: say it is ready, wait for its first turn, buy,
    and say how it ended; nothing escapes it (the scheduler records what happened)."""
    _signals.as_child()
    _here.control, _here.timeout = control, timeout
    try:
        control.send(("ready", os.getpid(), None))
        _turn(control, timeout)
        seat = buy(handle, number)
        if seat is not None and type(seat) is not int:
            raise TypeError(f"the buyer returned {seat!r}; return a seat number or None")
        control.send(("done", seat, None))
    except BaseException as exc:  # the history says why, not a traceback
        with contextlib.suppress(OSError):
            control.send(("error", f"{type(exc).__name__}: {exc}", type(exc).__name__))
    finally:
        _here.control = None
