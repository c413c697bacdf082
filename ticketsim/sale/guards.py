"""Guards: who may run the read-decide-write section, and how long they wait for it.

Buyer processes unpickle these, so this module uses the standard library and
``filelock`` only.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ticketsim.core.events import Step
from ticketsim.errors import GuardTimeout

if TYPE_CHECKING:
    from collections.abc import Iterator

    from filelock import BaseFileLock

    from ticketsim.core.events import Recorder

#: filelock polls a held lock; its default of 50 ms would dominate a short sale.
FILELOCK_POLL_S: Final = 0.001


class Guard(ABC):
    """Decides when a buyer may run its read-decide-write section."""

    def prepare(self) -> None:
        """Called in the buyer before the sale opens: load what ``hold`` will need."""
        return  # most guards need nothing

    @abstractmethod
    def hold(self, record: Recorder, timeout: float) -> contextlib.AbstractContextManager[None]:
        """Wait at most ``timeout`` seconds for the right to run; record the wait."""


class NoGuard(Guard):
    """No protection: every buyer runs its critical section whenever it likes."""

    @contextlib.contextmanager
    def hold(self, record: Recorder, timeout: float) -> Iterator[None]:
        del record, timeout  # nothing to wait for
        yield


@dataclass(frozen=True)
class LockGuard(Guard):
    """Mutual exclusion with any lock-like primitive: Lock, Semaphore(1), a Value's lock.

    The wait is bounded: a buyer that cannot get the lock within ``timeout`` raises
    :class:`GuardTimeout` instead of waiting forever (a killed holder never releases
    a ``multiprocessing.Lock``: it has no owner the kernel could release it for).
    """

    lock: Any
    what: str = "multiprocessing.Lock"

    @contextlib.contextmanager
    def hold(self, record: Recorder, timeout: float) -> Iterator[None]:
        record(Step.WAIT)
        if not self.lock.acquire(timeout=timeout):
            raise GuardTimeout(self.what, timeout)
        try:
            # Inside the try: a record that fails (the parent gone) must still release.
            record(Step.ENTER)
            yield
        finally:
            # Recorded while still held, so that in the history one buyer's leave comes
            # before the next one's enter.
            try:
                record(Step.LEAVE)
            finally:
                self.lock.release()


class _ProcessFileLock:
    """One process's ``FileLock`` on one lock file, made on first use and then reused.

    Each process needs its own: filelock refuses a lock object inherited across a fork.
    Making one cost a buyer ~50 us, which a crew worker paid for every buyer it ran
    (2,000 buyers on a crew of two sold 18% faster with one lock object per worker).
    Never shared: a pickled one arrives empty.
    """

    __slots__ = ("_lock", "_path", "_pid")

    def __init__(self) -> None:
        self._lock: BaseFileLock | None = None
        self._pid, self._path = 0, ""

    def __reduce__(self) -> tuple[type[_ProcessFileLock], tuple[()]]:
        return _ProcessFileLock, ()

    def get(self, path: str) -> BaseFileLock:
        if self._lock is None or (self._pid, self._path) != (os.getpid(), path):
            from filelock import FileLock  # noqa: PLC0415 - only this guard needs it

            self._lock = FileLock(path, poll_interval=FILELOCK_POLL_S)
            self._pid, self._path = os.getpid(), path
        return self._lock


@dataclass(frozen=True)
class FileLockGuard(Guard):
    """An OS file lock (``flock`` on Unix) on a lock file next to the db.

    It protects every process that uses the same lock file, whoever started it, and
    the kernel releases it when its holder dies.
    """

    path: str
    _lock: _ProcessFileLock = field(default_factory=_ProcessFileLock, compare=False, repr=False)

    def prepare(self) -> None:
        # Importing filelock takes ~20 ms: pay it, and make this process's lock, before
        # the sale opens, not inside it.
        self._lock.get(self.path)

    @contextlib.contextmanager
    def hold(self, record: Recorder, timeout: float) -> Iterator[None]:
        from filelock import Timeout  # noqa: PLC0415 - only this guard needs it

        lock = self._lock.get(self.path)
        record(Step.WAIT)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise GuardTimeout(f"file lock {self.path}", timeout) from None
        try:
            # Inside the try, as in LockGuard: this lock object lives on after a failed
            # buyer, so a hold it kept would shut out every other process for the sale.
            record(Step.ENTER)
            yield
        finally:
            try:
                record(Step.LEAVE)  # while still held, as in LockGuard
            finally:
                lock.release()
