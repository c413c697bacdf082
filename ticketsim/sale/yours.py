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
import functools
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Final

from ticketsim.sale import _signals

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from multiprocessing.connection import Connection

#: How long a buyer outside ticketsim's scheduler waits between tries of a held lock,
#: and for the lock at most.
_SPIN_S: Final = 0.001
_OUTSIDE_S: Final = 60.0
#: How often a buyer waiting for its turn looks whether the scheduler is still there.
_LOOK_S: Final = 1.0


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


def wait_for(name: str, attempt: Callable[[], bool]) -> None:
    """Wait until ``attempt()`` (a try that never blocks, a lock's ``acquire(False)``)
    succeeds. Under ticketsim the buyer tells the scheduler it is blocked at ``name``
    and is tried again only once another buyer has moved: a buyer that blocked for real
    inside a turn would stop the whole sale."""
    deadline = time.monotonic() + _OUTSIDE_S
    while not attempt():
        control = _here.control
        if control is None:  # outside ticketsim: a plain wait, with a bound
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} was not had in {_OUTSIDE_S:g} s")
            time.sleep(_SPIN_S)
            continue
        control.send(("blocked", name, None))
        _turn(control, _here.timeout)


@contextlib.contextmanager
def locked(lock: Any, name: str = "lock") -> Iterator[None]:
    """``with locked(lock):`` is ``with lock:`` for a buyer under ticketsim's scheduler:
    taking it is a step, and a buyer that finds it held waits its turn instead of
    blocking. For any lock with ``acquire(False)`` and ``release()``, and filelock's."""
    step(name)  # another buyer may come in before it is taken: a free lock's too
    wait_for(name, lambda: _try(lock))
    try:
        yield
    finally:
        lock.release()


def _try(lock: Any) -> bool:
    if hasattr(lock, "is_locked") and hasattr(lock, "lock_file"):  # filelock's
        from filelock import Timeout  # noqa: PLC0415 - only for a file lock

        try:
            lock.acquire(blocking=False)
        except Timeout:
            return False
        return True
    return bool(lock.acquire(False))


def _turn(control: Connection, timeout: float) -> None:
    """Wait for this buyer's next turn, however long the others' turns take: the
    scheduler bounds each of them, and ends this process (as it dies with ticketsim)
    when the sale is over. ``timeout`` only paces the look at whether it is still there."""
    del timeout
    while not control.poll(_LOOK_S):
        if os.getppid() == 1:  # the scheduler is gone: nobody will give a turn
            raise TimeoutError("ticketsim's scheduler is gone")
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
    # What the buyer prints goes to stderr: ticketsim's stdout is its report (--json).
    with contextlib.suppress(OSError):
        os.dup2(2, 1)
    sys.stdout = sys.stderr
    # A process the buyer forks itself ends with it: nothing outlives the sale.
    os.register_at_fork(after_in_child=functools.partial(_signals.tie_to_parent, os.getpid()))
    _here.control, _here.timeout = control, timeout
    said: tuple[str, Any, Any]
    try:
        control.send(("ready", os.getpid(), None))
        _turn(control, timeout)
        seat = buy(handle, number)
        if seat is not None and type(seat) is not int:
            raise TypeError(f"the buyer returned {seat!r}; return a seat number or None")
        said = ("done", seat, None)
    except BaseException as exc:  # the history says why, not a traceback
        said = ("error", f"{type(exc).__name__}: {exc}", type(exc).__name__)
        # Dropped before it is told: the traceback's frames would keep the buyer's
        # connections and locks alive past its end.
        exc.__traceback__ = None
        del exc
    try:
        with contextlib.suppress(OSError):
            control.send(said)
    finally:
        _here.control = None


#: A connection's methods that send nothing to the store.
_UNMARKED: Final = frozenset({"close", "transaction", "register_script"})
#: Methods that hand out an object which sends the statements: marked in turn.
_HANDS_OUT: Final = frozenset({"cursor", "pipeline"})


class Marked:
    """A connection (sqlite3, psycopg, redis-py) whose every statement or command is a
    marked step, named by its verb: ``select``, ``update``, ``commit`` for SQL, the
    command for Redis (``get``, ``set``, ``incr``). The mark comes before it is sent, so
    another buyer may come in before each one. Outside ticketsim it only forwards."""

    __slots__ = ("_connection",)

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._connection, name)
        if name.startswith("_") or name in _UNMARKED or not callable(found):
            return found

        if name in _HANDS_OUT:
            return lambda *args, **kwargs: Marked(found(*args, **kwargs))

        def marked(*args: Any, **kwargs: Any) -> Any:
            step(_verb(name, args))
            return found(*args, **kwargs)

        return marked

    def __enter__(self) -> Marked:
        self._connection.__enter__()
        return self

    def __exit__(self, *exc: object) -> Any:
        return self._connection.__exit__(*exc)

    def __iter__(self) -> Any:  # a cursor's rows
        return iter(self._connection)


def _verb(method: str, args: tuple[Any, ...]) -> str:
    """The step's name: a SQL statement's first word, else the method (a command)."""
    if method in ("execute", "executemany", "executescript") and args and isinstance(args[0], str):
        words = args[0].split(None, 1)
        return words[0].lower() if words else method
    return method


def marked(connection: Any) -> Any:
    """``connection``, each statement it sends a marked step (:class:`Marked`)."""
    return Marked(connection)
