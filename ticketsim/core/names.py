"""The names and defaults the command line declares its options with, in a module of
their own.

The command line offers the strategies' names as choices on every start, even for
``--help``; importing :mod:`ticketsim.engine.strategies` for that (and with it
multiprocessing and every store) would add about a third to the start-up time. The
strategies themselves are in :mod:`ticketsim.engine.strategies`, which re-exports this enum.
The default db path is here rather than in :mod:`ticketsim.core.db` because buyer
processes import that module, and a ``Path`` would cost each of them ``pathlib``.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Final

#: The db every command uses unless given ``--db`` or ``TICKETSIM_DB``.
DEFAULT_DB: Final = Path("db") / "tickets.json"


class StrategyName(str, Enum):
    """The strategies' names, as the command line spells them."""

    NONE = "none"
    LOCK = "lock"
    SEMAPHORE = "semaphore"
    FILELOCK = "filelock"
    MANAGER = "manager"
    VALUE = "value"
    ARRAY = "array"
    OFFICE = "office"
    VALUE_UNLOCKED = "value-unlocked"
    ARRAY_UNLOCKED = "array-unlocked"
    SQLITE_NAIVE = "sqlite-naive"
    SQLITE_DEFERRED = "sqlite-deferred"
    SQLITE_IMMEDIATE = "sqlite-immediate"
    SQLITE_UPDATE = "sqlite-update"
    PG_NAIVE = "pg-naive"
    PG_UPDATE = "pg-update"
    PG_FOR_UPDATE = "pg-for-update"
    PG_ADVISORY = "pg-advisory"
    PG_REPEATABLE_READ = "pg-repeatable-read"
    PG_SERIALIZABLE = "pg-serializable"
    PG_WRITE_SKEW = "pg-write-skew"
    PG_LEDGER_SERIALIZABLE = "pg-ledger-serializable"
    PG_SKIP_LOCKED = "pg-skip-locked"
    PG_UNIQUE = "pg-unique"
    PG_OPTIMISTIC = "pg-optimistic"
    REDIS_NAIVE = "redis-naive"
    REDIS_DECR = "redis-decr"
    REDIS_WATCH = "redis-watch"
    REDIS_LUA = "redis-lua"
    REDIS_LOCK = "redis-lock"
    REDIS_FENCED = "redis-fenced"


class WorldName(str, Enum):
    """The strategies made for buyers that are threads or asyncio tasks (``--workers``),
    and the module-global counter: kept apart from :class:`StrategyName`, whose
    strategies are all built for buyer processes."""

    GLOBAL_COUNTER = "global-counter"
    THREAD_LOCK = "thread-lock"
    THREAD_SEMAPHORE = "thread-semaphore"
    THREAD_OFFICE = "thread-office"
    TASK_NONE = "task-none"
    TASK_NO_AWAIT = "task-no-await"
    TASK_LOCK = "task-lock"
    TASK_SEMAPHORE = "task-semaphore"
    TASK_OFFICE = "task-office"


class WorkerKind(str, Enum):
    """What runs each buyer: its own process (the lesson), a thread, or an asyncio task."""

    PROCESSES = "processes"
    THREADS = "threads"
    ASYNCIO = "asyncio"


class StoreKind(str, Enum):
    """Where a strategy keeps the tickets while the sale runs."""

    #: The JSON db file, or shared memory written to it when the sale ends.
    FILE = "file"
    SQLITE = "sqlite"
    POSTGRES = "postgres"
    REDIS = "redis"

    @property
    def prefix(self) -> str:
        """The start of the names of this store's strategies (``pg-``)."""
        return {"sqlite": "sqlite-", "postgres": "pg-", "redis": "redis-"}.get(self.value, "")

    @classmethod
    def of(cls, strategy: str) -> StoreKind:
        """The store the strategy called ``strategy`` keeps its tickets in."""
        for kind in (cls.SQLITE, cls.POSTGRES, cls.REDIS):
            if strategy.startswith(kind.prefix):
                return kind
        return cls.FILE
