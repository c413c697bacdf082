"""What each strategy is and claims: the catalogue every layer reads.

How a strategy is built (its store, its guard, the processes it starts) is the
engine's business (:mod:`ticketsim.engine.strategies`); what it promises is data, here,
so that the settings, the checker's report and the views can name and judge a strategy
without importing the code that runs it. ``tests/engine/test_claims.py`` checks every claim
against behaviour, and ``tests/engine/test_registry.py`` that every entry here has a
builder there and no builder lacks an entry.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Final

from ticketsim.core.frozen import frozen
from ticketsim.core.names import StoreKind, StrategyName, WorkerKind, WorldName
from ticketsim.core.schedule import Model
from ticketsim.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping


@frozen(kw_only=True)
class Claims:
    """What a strategy protects; every field is checked by a test (tests/engine/test_claims.py)."""

    #: The remaining count never lets more buyers than tickets be told "yes".
    count: bool
    #: No seat is sold to two buyers.
    seats: bool
    #: Every sale a buyer is told about is in the ledger, once.
    ledger: bool
    #: Two separate ``ticketsim run --keep`` programs on one db cannot oversell.
    separate_programs: bool
    #: A buyer killed inside its critical section does not stall everyone else.
    killed_holder: bool
    #: Each sale is in the db file as soon as it is made (a crash loses nothing told).
    durable: bool
    #: A buyer killed inside its purchase leaves the count and the ledger agreeing.
    crash_consistent: bool = True


#: The claims' column titles, in table order, as ``ticketsim strategies`` prints them.
CLAIM_TITLES: Final = {
    "count": "the count",
    "seats": "the seats",
    "ledger": "the ledger",
    "separate_programs": "separate programs",
    "killed_holder": "killed holder",
    "durable": "durable per sale",
    "crash_consistent": "killed in sale",
}


@frozen(kw_only=True)
class StrategyInfo:
    """One strategy as the user sees it: its name, its promises, its price."""

    name: StrategyName | WorldName
    #: A safe strategy must sell exactly ``min(tickets, buyers)`` with no violation.
    safe: bool
    #: Whether buyers take turns to read: a forced "all read, then all write"
    #: interleaving (lockstep) is only possible when they do not.
    serialises: bool
    claims: Claims
    #: One line on how it works.
    how: str
    #: Whether a buyer holds a lock from its read to its write (the office serialises
    #: without one: its buyers hold nothing).
    guarded: bool = False
    #: What a crash mid-sale costs, when it costs something.
    caveat: str | None = None
    #: What a buyer holds inside its critical section ("" when nothing).
    holding: str = ""
    #: Whether a buyer whose transaction the store refused tries it again; a strategy
    #: that may be refused and does not retry loses those sales instead.
    retries: bool = False
    #: What may run its buyers (``--workers``): where the strategy means something.
    workers: tuple[WorkerKind, ...] = (WorkerKind.PROCESSES,)
    #: What the strategy teaches with each kind of worker, for the report.
    lessons: tuple[tuple[WorkerKind, str], ...] = ()
    #: Whether a buyer's read locks one unsold seat (SKIP LOCKED), which its write
    #: sells: one that finds every unsold seat locked waits (:class:`Model`).
    locks_seats: bool = False

    def lesson(self, workers: WorkerKind) -> str | None:
        """What a sale of this strategy on ``workers`` shows, in words (``None``: nothing
        beyond its row)."""
        return dict(self.lessons).get(workers)

    @property
    def store(self) -> StoreKind:
        """Where the tickets are kept while the sale runs."""
        return StoreKind.of(self.name.value)

    def model(self) -> Model:
        """How this strategy constrains the order of buyers' steps (for schedules)."""
        return Model(
            guarded=self.guarded, reads_commute=not self.serialises, locks_seats=self.locks_seats
        )

    def describe(self) -> dict[str, Any]:
        """This strategy as one row of ``ticketsim strategies --json``."""
        return {
            "strategy": self.name.value,
            "safe": self.safe,
            **dataclasses.asdict(self.claims),
            "store": self.store.value,
            "retries": self.retries,
            "workers": [kind.value for kind in self.workers],
            "how": self.how,
            "caveat": self.caveat,
        }


_PROCESSES_AND_THREADS: Final = (WorkerKind.PROCESSES, WorkerKind.THREADS)
_THREADS: Final = (WorkerKind.THREADS,)
_ASYNCIO: Final = (WorkerKind.ASYNCIO,)
#: What an unprotected sale on threads teaches.
_GIL: Final = (
    "The GIL does not make check-then-act atomic: it lets one thread run Python at a "
    "time, but a thread can be switched out between any two bytecodes, and gives the GIL "
    "up whenever it sleeps or does I/O, so every thread read the count before any wrote it."
)
#: What a multiprocessing primitive does among threads.
_NEEDLESS: Final = (
    "It works, but it is needless: a {what} is made for processes (a kernel semaphore "
    "shared across fork or spawn); threads share one memory, and {use} does the same "
    "job without it."
)

_AT_END: Final = (
    "The db is written once, when the sale ends: if the program dies mid-sale, "
    "every sale of this run is lost from it."
)
#: A lock around the file db's read-decide-write, whichever lock it is.
_LOCKED_FILE: Final = Claims(
    count=True, seats=True, ledger=True, separate_programs=False, killed_holder=False, durable=True
)
#: The same in shared memory, written to the db once at the end.
_LOCKED_MEMORY: Final = dataclasses.replace(_LOCKED_FILE, durable=False)


def _locked(
    name: StrategyName | WorldName,
    *,
    holding: str,
    how: str,
    claims: Claims = _LOCKED_FILE,
    caveat: str | None = None,
    workers: tuple[WorkerKind, ...] = (WorkerKind.PROCESSES,),
    lessons: tuple[tuple[WorkerKind, str], ...] = (),
) -> StrategyInfo:
    """A lock held by each buyer from its read to its write: safe, one reader at a time."""
    return StrategyInfo(
        name=name,
        safe=True,
        serialises=True,
        guarded=True,
        holding=holding,
        claims=claims,
        how=how,
        caveat=caveat,
        workers=workers,
        lessons=lessons,
    )


def _unprotected(
    name: StrategyName | WorldName,
    *,
    how: str,
    caveat: str | None,
    claims: Claims,
    workers: tuple[WorkerKind, ...] = (WorkerKind.PROCESSES,),
    lessons: tuple[tuple[WorkerKind, str], ...] = (),
) -> StrategyInfo:
    return StrategyInfo(
        name=name,
        safe=False,
        serialises=False,
        claims=claims,
        how=how,
        caveat=caveat,
        workers=workers,
        lessons=lessons,
    )


#: Nothing protected: only a killed buyer cannot hurt the others, having nothing to hold.
_NOTHING: Final = Claims(
    count=False,
    seats=False,
    ledger=False,
    separate_programs=False,
    killed_holder=True,
    durable=False,
    crash_consistent=False,
)

#: What a database strategy protects when it works: a killed buyer's transaction is
#: rolled back (its lock freed) by the store; the db file gets the sales at the end.
_DB_SAFE: Final = Claims(
    count=True, seats=True, ledger=True, separate_programs=False, killed_holder=True, durable=False
)
#: A database strategy that races: every buyer writes its own ledger row, but the
#: count and the seats are decided on stale reads.
_DB_RACING: Final = dataclasses.replace(_DB_SAFE, count=False, seats=False, crash_consistent=False)
#: The caveat of a database strategy selling from a copy of the db file (without
#: ``--store``): with ``--store`` the store is the record, and it does not apply.
IN_STORE: Final = (
    "Every sale is in the store as it is made; the db file gets them all when the sale "
    "ends, so a crash mid-sale leaves it behind the store."
)
_ROW_LOCK: Final = "the row's lock, which the server frees when its connection drops"


def _database(
    name: StrategyName,
    *,
    how: str,
    safe: bool = True,
    serialises: bool = False,
    holding: str = "",
    claims: Claims = _DB_SAFE,
    retries: bool = False,
    caveat: str = IN_STORE,
    locks_seats: bool = False,
) -> StrategyInfo:
    return StrategyInfo(
        name=name,
        safe=safe,
        serialises=serialises,
        guarded=bool(holding),
        holding=holding,
        claims=claims,
        how=how,
        caveat=caveat,
        retries=retries,
        locks_seats=locks_seats,
    )


_DATABASES: Final = (
    _database(
        StrategyName.SQLITE_NAIVE,
        how="SQLite, autocommit: SELECT remaining, then UPDATE it and INSERT the sale.",
        safe=False,
        claims=_DB_RACING,
    ),
    _database(
        StrategyName.SQLITE_DEFERRED,
        how="SQLite BEGIN DEFERRED (WAL): read, then write; SQLITE_BUSY is retried.",
        retries=True,
    ),
    _database(
        StrategyName.SQLITE_IMMEDIATE,
        how="SQLite BEGIN IMMEDIATE: the write lock first, then read and write.",
        serialises=True,
        holding="SQLite's write lock, which is freed when its holder dies",
    ),
    _database(
        StrategyName.SQLITE_UPDATE,
        how="SQLite: UPDATE ... SET remaining = remaining - 1 WHERE remaining > 0 RETURNING.",
        serialises=True,
        holding="SQLite's write lock, which is freed when its holder dies",
    ),
    _database(
        StrategyName.PG_NAIVE,
        how="PostgreSQL, READ COMMITTED: SELECT remaining, then UPDATE it and INSERT the sale.",
        safe=False,
        claims=_DB_RACING,
    ),
    _database(
        StrategyName.PG_UPDATE,
        how="PostgreSQL: UPDATE ... SET remaining = remaining - 1 WHERE remaining > 0 RETURNING.",
        serialises=True,
        holding=_ROW_LOCK,
    ),
    _database(
        StrategyName.PG_FOR_UPDATE,
        how="PostgreSQL: SELECT ... FOR UPDATE locks the row, then UPDATE it.",
        serialises=True,
        holding=_ROW_LOCK,
    ),
    _database(
        StrategyName.PG_ADVISORY,
        how="PostgreSQL: pg_advisory_xact_lock first, then read and write.",
        serialises=True,
        holding="an advisory lock, which the server frees when its connection drops",
    ),
    _database(
        StrategyName.PG_REPEATABLE_READ,
        how="PostgreSQL REPEATABLE READ, no retry: a concurrent update is refused.",
        safe=False,
        caveat=(
            "A buyer refused with a serialization failure gives up: no ticket is sold "
            "twice, but tickets are left unsold."
        ),
    ),
    _database(
        StrategyName.PG_SERIALIZABLE,
        how="PostgreSQL SERIALIZABLE: read, then write; serialization failures are retried.",
        retries=True,
    ),
    _database(
        StrategyName.PG_WRITE_SKEW,
        how="PostgreSQL REPEATABLE READ: count the ledger, then INSERT a sale (write skew).",
        safe=False,
        claims=_DB_RACING,
        caveat=(
            "Snapshot isolation lets two transactions that write different rows both "
            "commit: every buyer saw the same count, and no error says so."
        ),
    ),
    _database(
        StrategyName.PG_LEDGER_SERIALIZABLE,
        how="PostgreSQL SERIALIZABLE: count the ledger, then INSERT; failures are retried.",
        retries=True,
    ),
    _database(
        StrategyName.PG_SKIP_LOCKED,
        how=(
            "PostgreSQL: a row per seat; SELECT ... FOR UPDATE SKIP LOCKED takes a free one "
            "(none free but some locked: try again)."
        ),
        retries=True,
        locks_seats=True,
    ),
    _database(
        StrategyName.PG_UNIQUE,
        how="PostgreSQL: INSERT the seat into a UNIQUE column; a unique violation is retried.",
        retries=True,
    ),
    _database(
        StrategyName.PG_OPTIMISTIC,
        how="PostgreSQL: UPDATE ... WHERE version = the version read; 0 rows is retried.",
        retries=True,
    ),
    _database(
        StrategyName.REDIS_NAIVE,
        how="Redis: GET remaining, then SET it and RPUSH the sale.",
        safe=False,
        claims=_DB_RACING,
    ),
    _database(
        StrategyName.REDIS_DECR,
        how="Redis: DECR the count; below zero, INCR it back; then RPUSH the sale.",
        claims=dataclasses.replace(_DB_SAFE, crash_consistent=False),
        caveat=(
            "DECR and the RPUSH of the sale are two commands: a buyer that dies between "
            "them leaves a ticket counted as sold that nobody holds. The Lua script "
            "(redis-lua) does both in one step."
        ),
    ),
    _database(
        StrategyName.REDIS_WATCH,
        how="Redis: WATCH, GET, then MULTI/SET/EXEC; an EXEC refused is retried.",
        retries=True,
    ),
    _database(
        StrategyName.REDIS_LUA,
        how="Redis: one Lua script checks, decrements and records the sale.",
    ),
    _database(
        StrategyName.REDIS_LOCK,
        how="Redis: a SET NX PX lock with a lease, then GET and SET.",
        serialises=True,
        holding="a Redis lock, until its lease runs out",
        caveat=(
            "The lock is a lease: a holder paused past it (GC, SIGSTOP, a slow disk) "
            "loses the lock without knowing, and writes on a stale read."
        ),
    ),
    _database(
        StrategyName.REDIS_FENCED,
        how="Redis: the same lock, and a fencing token the store checks on every write.",
        serialises=True,
        holding="a Redis lock, until its lease runs out",
        retries=True,
    ),
)

CATALOG: Final[Mapping[StrategyName, StrategyInfo]] = {
    StrategyName(info.name.value): info
    for info in (
        _unprotected(
            StrategyName.NONE,
            how="Nothing: read, sleep, then the tutorial's open(path, 'w') + json.dump.",
            caveat=(
                "Writes are not atomic: a read can see a half-written db, and overlapping "
                "writes can leave it unreadable."
            ),
            claims=_NOTHING,
            workers=_PROCESSES_AND_THREADS,
            lessons=((WorkerKind.THREADS, _GIL),),
        ),
        _locked(
            StrategyName.LOCK,
            holding="a multiprocessing.Lock, which no one else can release",
            how="A multiprocessing.Lock around read-decide-write; atomic db writes.",
            workers=_PROCESSES_AND_THREADS,
            lessons=(
                (
                    WorkerKind.THREADS,
                    _NEEDLESS.format(what="multiprocessing.Lock", use="thread-lock"),
                ),
            ),
        ),
        _locked(
            StrategyName.SEMAPHORE,
            holding="the Semaphore(1)'s only permit",
            how="A multiprocessing.Semaphore(1) used as a mutex; atomic db writes.",
            workers=_PROCESSES_AND_THREADS,
            lessons=(
                (
                    WorkerKind.THREADS,
                    _NEEDLESS.format(what="multiprocessing.Semaphore", use="thread-semaphore"),
                ),
            ),
        ),
        _locked(
            StrategyName.FILELOCK,
            holding="the file lock, which the kernel releases when it dies",
            how="filelock.FileLock (flock) on <db>.lock; protects separate programs too.",
            claims=dataclasses.replace(_LOCKED_FILE, separate_programs=True, killed_holder=True),
            workers=_PROCESSES_AND_THREADS,
            lessons=(
                (
                    WorkerKind.THREADS,
                    "filelock's FileLock is thread-local by default: each thread opens the "
                    "lock file itself and flock()s its own descriptor, so one FileLock shared "
                    "by the threads excludes them as it excludes processes.",
                ),
            ),
        ),
        _locked(
            StrategyName.MANAGER,
            holding="the manager's Lock, which the manager keeps for the dead client",
            how="A Manager().Lock() and a Manager dict; every access is a round trip.",
            claims=_LOCKED_MEMORY,
            caveat=_AT_END,
        ),
        _locked(
            StrategyName.VALUE,
            holding="the Value's lock",
            how="The count in a shared multiprocessing.Value, changed under its get_lock().",
            claims=_LOCKED_MEMORY,
            caveat=_AT_END,
        ),
        _locked(
            StrategyName.ARRAY,
            holding="the Array's lock",
            how="A seat map in a shared multiprocessing.Array; a seat is claimed under its lock.",
            claims=_LOCKED_MEMORY,
            caveat=_AT_END,
        ),
        StrategyInfo(
            name=StrategyName.OFFICE,
            safe=True,
            serialises=True,
            claims=dataclasses.replace(_LOCKED_FILE, killed_holder=True),
            how="No lock: one ticket-office process owns the db and serves requests from a pipe.",
        ),
        _unprotected(
            StrategyName.VALUE_UNLOCKED,
            how=(
                "The same Value, no get_lock(): 'v.value -= 1' is a locked read, "
                "then a locked write."
            ),
            caveat=_AT_END,
            claims=dataclasses.replace(_NOTHING, ledger=True),
        ),
        _unprotected(
            StrategyName.ARRAY_UNLOCKED,
            how="The same seat map, read and claimed with no lock held across the two.",
            caveat=_AT_END,
            claims=_NOTHING,
        ),
        *_DATABASES,
    )
}


_IN_MEMORY_AT_END: Final = (
    "The sales are kept in memory and written to the db once, when the sale ends."
)
#: A lock held by each buyer thread or task around the file db's read-decide-write.
_LOCKED_IN_PROCESS: Final = dataclasses.replace(_LOCKED_FILE, killed_holder=False)
_TASK_NEEDS_AWAIT: Final = (
    "asyncio interleaves tasks only at an await: the unlocked coroutine oversells only "
    "when an await sits between its read and its write. Here one does "
    "(await asyncio.sleep(window)), so every task read the count before any wrote it."
)

#: The strategies made for threads and asyncio tasks, and the module-global counter.
#: Not in :data:`CATALOG`, whose strategies are all built for buyer processes and are
#: tested as such; :func:`info` finds both.
WORLDS: Final[Mapping[WorldName, StrategyInfo]] = {
    WorldName(info.name.value): info
    for info in (
        _unprotected(
            WorldName.GLOBAL_COUNTER,
            how=(
                "The count in a module-level variable: 'remaining -= 1' in each buyer, "
                "as the tutorials' global counter."
            ),
            caveat=_IN_MEMORY_AT_END,
            claims=dataclasses.replace(_NOTHING, ledger=True),
            workers=_PROCESSES_AND_THREADS,
            lessons=(
                (
                    WorkerKind.PROCESSES,
                    "Each process has its own copy of the module's variable: a forked or "
                    "spawned buyer gets a copy of the module, and decrements only its own, "
                    "so every buyer saw every ticket and 'sold' one; the parent's copy never "
                    "moved, and only the ledger tells how many were sold.",
                ),
                (
                    WorkerKind.THREADS,
                    "The threads share the module's variable (one process, one memory), so "
                    "they see each other's sales, and race on them: " + _GIL[0].lower() + _GIL[1:],
                ),
            ),
        ),
        _locked(
            WorldName.THREAD_LOCK,
            holding="a threading.Lock",
            how="A threading.Lock around read-decide-write; atomic db writes.",
            claims=_LOCKED_IN_PROCESS,
            workers=_THREADS,
        ),
        _locked(
            WorldName.THREAD_SEMAPHORE,
            holding="the threading.Semaphore(1)'s only permit",
            how="A threading.Semaphore(1) used as a mutex; atomic db writes.",
            claims=_LOCKED_IN_PROCESS,
            workers=_THREADS,
        ),
        StrategyInfo(
            name=WorldName.THREAD_OFFICE,
            safe=True,
            serialises=True,
            claims=_LOCKED_IN_PROCESS,
            how="No lock: one writer thread owns the db and serves requests from a queue.Queue.",
            workers=_THREADS,
        ),
        _unprotected(
            WorldName.TASK_NONE,
            how=(
                "Nothing, with an await between read and write: "
                "read, await asyncio.sleep(window), write."
            ),
            caveat=None,
            claims=dataclasses.replace(_NOTHING, killed_holder=False),
            workers=_ASYNCIO,
            lessons=((WorkerKind.ASYNCIO, _TASK_NEEDS_AWAIT),),
        ),
        StrategyInfo(
            name=WorldName.TASK_NO_AWAIT,
            safe=True,
            # The event loop runs one task's read-decide-write to its end, but nothing
            # makes buyers take turns to read: lockstep runs, and shows it cannot force
            # every read before the writes (the barrier comes at the first await).
            serialises=False,
            claims=_LOCKED_IN_PROCESS,
            how=(
                "Nothing, and no await between read and write (the window is a blocking "
                "time.sleep): no other task can run in between."
            ),
            caveat=(
                "Safe only while nothing between the read and the write awaits; its blocking "
                "window stops the whole event loop, every other buyer with it."
            ),
            workers=_ASYNCIO,
            lessons=(
                (
                    WorkerKind.ASYNCIO,
                    "asyncio interleaves tasks only at an await: with none between its read "
                    "and its write, a coroutine's check-then-act runs whole, and no task can "
                    "oversell, however many there are.",
                ),
            ),
        ),
        _locked(
            WorldName.TASK_LOCK,
            holding="an asyncio.Lock",
            how="An asyncio.Lock around read-decide-write (the window is awaited).",
            claims=_LOCKED_IN_PROCESS,
            workers=_ASYNCIO,
        ),
        _locked(
            WorldName.TASK_SEMAPHORE,
            holding="the asyncio.Semaphore(1)'s only permit",
            how="An asyncio.Semaphore(1) used as a mutex (the window is awaited).",
            claims=_LOCKED_IN_PROCESS,
            workers=_ASYNCIO,
        ),
        StrategyInfo(
            name=WorldName.TASK_OFFICE,
            safe=True,
            serialises=True,
            claims=_LOCKED_IN_PROCESS,
            how="No lock: one writer task owns the db and serves requests from an asyncio.Queue.",
            workers=_ASYNCIO,
        ),
    )
}

#: What to use instead of a strategy that means nothing with a kind of worker.
_INSTEAD: Final[Mapping[WorkerKind, Mapping[str, str]]] = {
    WorkerKind.PROCESSES: {
        "thread-lock": "lock",
        "thread-semaphore": "semaphore",
        "thread-office": "office",
        "task-none": "none",
        "task-no-await": "lock",
        "task-lock": "lock",
        "task-semaphore": "semaphore",
        "task-office": "office",
    },
    WorkerKind.THREADS: {"office": "thread-office"},
    WorkerKind.ASYNCIO: {
        "none": "task-none",
        "lock": "task-lock",
        "semaphore": "task-semaphore",
        "office": "task-office",
    },
}
#: Why a strategy made for one kind of worker means nothing with another.
_WHY: Final[Mapping[WorkerKind, str]] = {
    WorkerKind.PROCESSES: (
        "is made for buyers in one process: each buyer process would get a copy of it of its own"
    ),
    WorkerKind.THREADS: "is made for buyer processes",
    WorkerKind.ASYNCIO: (
        "blocks the event loop: every task runs on one thread, so a task that waits for a "
        "process-wide lock or a file lock another task holds waits for ever"
    ),
}
_DEFAULT_INSTEAD: Final[Mapping[WorkerKind, str]] = {
    WorkerKind.THREADS: "thread-lock",
    WorkerKind.ASYNCIO: "task-lock",
}


def refusal(name: str, workers: WorkerKind) -> str | None:
    """Why strategy ``name`` cannot run on ``workers``, and what to use instead; ``None``
    when it can. ``name`` must be a strategy :func:`info` knows."""
    if workers in info(name).workers:
        return None
    instead = _INSTEAD[workers].get(name)
    if instead is None:
        instead = _DEFAULT_INSTEAD.get(workers, "lock")
    why = _WHY[workers]
    if name in WORLDS.keys() and workers is not WorkerKind.PROCESSES:  # noqa: SIM118 - str keys
        why = f"is not made for {workers.value}"
    elif info(name).store is not StoreKind.FILE:
        why = "sells on a database, each buyer a process with a connection of its own"
    return f"--strategy {name} {why}; with --workers {workers.value} use --strategy {instead}"


def info(name: str) -> StrategyInfo:
    """The strategy called ``name``; :class:`ConfigError` lists the choices otherwise."""
    # StrategyName members are str, so they and plain strings find the same entry.
    found: StrategyInfo | None = CATALOG.get(name)  # type: ignore[call-overload]
    if found is None:
        found = WORLDS.get(name)  # type: ignore[call-overload]
    if found is None:
        choices = ", ".join([*(s.value for s in StrategyName), *(w.value for w in WorldName)])
        raise ConfigError("strategy", name, f"choose one of {choices}")
    return found
