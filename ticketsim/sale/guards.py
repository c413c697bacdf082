"""Guards: who may run the read-decide-write section, and how long they wait for it.

Buyer processes unpickle these, so this module uses the standard library and
``filelock`` only.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Final

from ticketsim.core.events import Step
from ticketsim.core.frozen import field, frozen
from ticketsim.errors import GuardTimeout

if TYPE_CHECKING:
    from collections.abc import Iterator

    from filelock import BaseFileLock

    from ticketsim.core.events import Recorder

#: filelock polls a held lock; its default of 50 ms would dominate a short sale.
FILELOCK_POLL_S: Final = 0.001


class Guard(ABC):
    """Decides when a buyer may run its read-decide-write section.

    The base class owns the protocol, as filelock's ``BaseFileLock`` does: a subclass
    says only how to take its lock (:meth:`_acquire`) and let it go (:meth:`_release`),
    and :meth:`hold` records the wait, the entry and the leave around them.
    """

    def prepare(self) -> None:
        """Called in the buyer before the sale opens: load what ``hold`` will need."""
        return  # most guards need nothing

    def describe(self) -> str:
        """What a buyer waits for, as a timeout names it."""
        return type(self).__name__

    @abstractmethod
    def _acquire(self, timeout: float) -> bool:
        """Take the lock within ``timeout`` seconds; ``False`` if that was not enough."""

    @abstractmethod
    def _release(self) -> None:
        """Let go of the lock :meth:`_acquire` took."""

    @contextlib.contextmanager
    def hold(self, record: Recorder, timeout: float) -> Iterator[None]:
        """Wait at most ``timeout`` seconds for the right to run; record the wait.

        The wait is bounded: a buyer that cannot get the lock in time raises
        :class:`GuardTimeout` instead of waiting forever (a killed holder never releases
        a ``multiprocessing.Lock``: it has no owner the kernel could release it for).
        """
        record(Step.WAIT)
        if not self._acquire(timeout):
            raise GuardTimeout(self.describe(), timeout)
        try:
            # Inside the try: a record that fails (the parent gone) must still release,
            # or a lock that lives on after a failed buyer shuts out every other one.
            record(Step.ENTER)
            yield
        finally:
            # Recorded while still held, so that in the history one buyer's leave comes
            # before the next one's enter.
            try:
                record(Step.LEAVE)
            finally:
                self._release()


class NoGuard(Guard):
    """No protection: every buyer runs its critical section whenever it likes, and
    records no wait, entry or leave."""

    @contextlib.contextmanager
    def hold(self, record: Recorder, timeout: float) -> Iterator[None]:
        del record, timeout  # nothing to wait for
        yield

    def _acquire(self, timeout: float) -> bool:
        del timeout
        return True  # there is no lock: the right to run is always there

    def _release(self) -> None:
        return


@frozen
class LockGuard(Guard):
    """Mutual exclusion with any lock-like primitive: Lock, Semaphore(1), a Value's lock."""

    lock: Any
    what: str = "multiprocessing.Lock"

    def describe(self) -> str:
        return self.what

    def _acquire(self, timeout: float) -> bool:
        return bool(self.lock.acquire(timeout=timeout))

    def _release(self) -> None:
        self.lock.release()


class _ProcessFileLock:
    """One process's ``FileLock`` on each lock file, made on first use and then reused:
    the lock a guard releases is the one it acquired, even if another guard sharing
    this object (a ``replace`` copy) took a lock on another path meanwhile.

    Each process needs its own: filelock refuses a lock object inherited across a fork.
    Making one is not free, and a crew worker would pay for it with every buyer it ran.
    Never shared: a pickled one arrives empty.
    """

    __slots__ = ("_locks", "_pid")

    def __init__(self) -> None:
        self._locks: dict[str, BaseFileLock] = {}
        self._pid = 0

    def __reduce__(self) -> tuple[type[_ProcessFileLock], tuple[()]]:
        return _ProcessFileLock, ()

    def get(self, path: str) -> BaseFileLock:
        if self._pid != os.getpid():
            self._locks, self._pid = {}, os.getpid()
        lock = self._locks.get(path)
        if lock is None:
            from filelock import FileLock  # noqa: PLC0415 - only this guard needs it

            lock = self._locks[path] = FileLock(path, poll_interval=FILELOCK_POLL_S)
        return lock


@frozen
class FileLockGuard(Guard):
    """An OS file lock (``flock`` on Unix) on a lock file next to the db.

    It protects every process that uses the same lock file, whoever started it, and
    the kernel releases it when its holder dies.
    """

    path: str
    _lock: _ProcessFileLock = field(default_factory=_ProcessFileLock, compare=False, repr=False)

    def prepare(self) -> None:
        # Importing filelock takes a while: pay it, and make this process's lock, before
        # the sale opens, not inside it.
        self._lock.get(self.path)

    def describe(self) -> str:
        return f"file lock {self.path}"

    def _acquire(self, timeout: float) -> bool:
        from filelock import Timeout  # noqa: PLC0415 - only this guard needs it

        try:
            self._lock.get(self.path).acquire(timeout=timeout)
        except Timeout:
            return False
        return True

    def _release(self) -> None:
        self._lock.get(self.path).release()
