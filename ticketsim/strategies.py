"""Strategies: how buyers share the ticket db, and what (if anything) protects it.

A strategy contributes two picklable parts to every buyer, bundled as :class:`Tools`:

* a **store**, which reads and writes the shared state (:class:`FileStore`: the db
  file, written atomically or the tutorial's naive way);
* a **guard**, which decides who may run the read-decide-write section
  (:class:`NoGuard`, or :class:`LockGuard` around any primitive with
  ``acquire(timeout=)``/``release()``).

The buyer (:mod:`ticketsim.buyer`) owns the order of the steps; the runner owns the
processes. A new strategy subclasses :class:`Strategy`, builds its primitives from
the run's multiprocessing context in :meth:`Strategy.provide`, and registers itself
in :data:`STRATEGIES`; neither the buyer nor the runner changes.

Buyer processes unpickle the stores and guards defined here, so this module uses the
standard library (and, for file locks, ``filelock``) only.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol

from ticketsim import db as dbfile
from ticketsim.errors import ConfigError, DbError, GuardTimeout
from ticketsim.events import Step

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from multiprocessing.context import BaseContext

#: How often a buyer re-reads a db it found half written before it gives up.
TORN_RETRIES: Final = 1000
#: Pause between those re-reads: long enough for the writer to finish its ``json.dump``.
TORN_BACKOFF_S: Final = 0.0005


class Recorder(Protocol):
    """What a buyer hands to stores and guards to record a step."""

    def __call__(
        self,
        step: Step,
        *,
        value: int | None = None,
        seat: int | None = None,
        note: str | None = None,
    ) -> None: ...


@dataclass(frozen=True)
class FileStore:
    """The db file as the shared state.

    ``naive`` selects the tutorial's ``open(path, "w")`` + ``json.dump`` write, which
    can be seen half done; otherwise every write is atomic. Reads that find a
    half-written db are recorded as ``torn`` and retried: with atomic writes that
    never happens, so there a bad db is an error, not a torn read.
    """

    path: str
    naive: bool = False

    def read(self, record: Recorder) -> dbfile.TicketDB:
        for _ in range(TORN_RETRIES):
            try:
                return dbfile.load(self.path)
            except DbError as exc:
                if not self.naive:
                    raise
                record(Step.TORN, note=exc.reason)
            time.sleep(TORN_BACKOFF_S)
        raise DbError(self.path, f"still half written after {TORN_RETRIES} reads")

    def write(self, db: dbfile.TicketDB) -> None:
        if self.naive:
            dbfile.write_naive(self.path, db)
        else:
            dbfile.write_atomic(self.path, db)


class Guard(ABC):
    """Decides when a buyer may run its read-decide-write section."""

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
    """Mutual exclusion with any multiprocessing lock-like primitive.

    The wait is bounded: a buyer that cannot get the lock within ``timeout`` raises
    :class:`GuardTimeout` instead of waiting forever (a killed holder never releases a
    ``multiprocessing.Lock``).
    """

    lock: Any
    what: str = "multiprocessing.Lock"

    @contextlib.contextmanager
    def hold(self, record: Recorder, timeout: float) -> Iterator[None]:
        record(Step.WAIT)
        if not self.lock.acquire(timeout=timeout):
            raise GuardTimeout(self.what, timeout)
        record(Step.ENTER)
        try:
            yield
        finally:
            self.lock.release()
            record(Step.LEAVE)


@dataclass(frozen=True)
class Tools:
    """Everything one buyer needs from its strategy; passed to the buyer explicitly."""

    store: FileStore
    guard: Guard


class StrategyName(str, Enum):
    """The strategies' names, as the command line spells them."""

    NONE = "none"
    LOCK = "lock"


class Strategy(ABC):
    """A way to run the sale. Subclasses set the class attributes and :meth:`provide`."""

    name: ClassVar[StrategyName]
    #: A safe strategy must sell exactly ``min(tickets, buyers)`` with no violation.
    safe: ClassVar[bool]
    #: One line on how it works, for reports and ``ticketsim strategies``.
    how: ClassVar[str]

    @abstractmethod
    def provide(self, ctx: BaseContext, db_path: str) -> contextlib.AbstractContextManager[Tools]:
        """Create this run's primitives in ``ctx``; clean them up on exit."""


class Unprotected(Strategy):
    name = StrategyName.NONE
    safe = False
    how = "No protection; the tutorial's read, sleep, open(path, 'w') + json.dump."

    @contextlib.contextmanager
    def provide(self, ctx: BaseContext, db_path: str) -> Iterator[Tools]:
        del ctx  # nothing is shared but the file
        yield Tools(store=FileStore(db_path, naive=True), guard=NoGuard())


class MutexLock(Strategy):
    name = StrategyName.LOCK
    safe = True
    how = "A multiprocessing.Lock around read-decide-write; atomic db writes."

    @contextlib.contextmanager
    def provide(self, ctx: BaseContext, db_path: str) -> Iterator[Tools]:
        yield Tools(store=FileStore(db_path), guard=LockGuard(ctx.Lock()))


STRATEGIES: Final[Mapping[StrategyName, Strategy]] = {
    strategy.name: strategy for strategy in (Unprotected(), MutexLock())
}


def get(name: str) -> Strategy:
    """The strategy called ``name``; :class:`ConfigError` lists the choices otherwise."""
    # StrategyName members are str, so they and plain strings find the same entry.
    strategy: Strategy | None = STRATEGIES.get(name)  # type: ignore[call-overload]
    if strategy is None:
        choices = ", ".join(s.value for s in StrategyName)
        raise ConfigError("strategy", name, f"choose one of {choices}")
    return strategy
