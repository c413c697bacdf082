"""The lesson ``ticketsim demo`` follows: each step a real sale, explained before and after.

The steps are data; :func:`run_step` runs one and returns what happened, and the
command line decides how to show it and when to pause.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Final

from ticketsim.analysis.report import Report, build_report
from ticketsim.core import db as dbfile
from ticketsim.core.frozen import field, frozen, replace
from ticketsim.core.names import DEFAULT_DB
from ticketsim.core.settings import RunConfig
from ticketsim.engine.runner import run_sale
from ticketsim.errors import ServerUnavailable

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from ticketsim.core.names import StoreKind


@frozen
class Lesson:
    title: str
    before: str
    #: The sales to run and show, in order.
    sales: tuple[RunConfig, ...] = ()
    #: Run the sale as two separate programs at once (``ticketsim run --keep``), once
    #: per strategy named, on ``db_path``.
    two_programs: tuple[str, ...] = ()
    db_path: Path | None = None
    after: str = ""


@frozen
class Outcome:
    lesson: Lesson
    reports: tuple[Report, ...] = ()
    #: For two programs: what each program sold, and the db they shared afterwards.
    programs: tuple[tuple[str, int, int], ...] = field(default=())
    #: Why the lesson could not run (a database server that is not installed), if so.
    unavailable: str | None = None


def lessons(db_path: Path) -> tuple[Lesson, ...]:
    """The lesson plan (README "Lesson plan" describes the same steps)."""
    base = RunConfig(db_path=db_path, buyers=20, tickets=5, delay=0.1, seed=7, timeout=5.0)
    return (
        *_the_race(base),
        *_shared_memory(base),
        *_where_a_lock_lives(base, db_path),
        *_real_databases(base),
    )


def _the_race(base: RunConfig) -> tuple[Lesson, ...]:
    """The race, then the lock that ends it, and what the lock costs."""
    return (
        Lesson(
            "1. The race",
            "20 buyer processes want 5 tickets. Each checks the count, reads the db, "
            "waits 0.1 s (the race window), then writes the count back minus one. "
            "Nothing stops a second buyer from reading before the first has written.",
            (base,),
            after="Every buyer read the same count before anyone wrote it back, so each "
            "was told it got a ticket, and most of the sales vanished from the ledger.",
        ),
        Lesson(
            "2. The fix, and what it costs",
            "The same sale with a multiprocessing.Lock around read-decide-write.",
            (replace(base, strategy="lock"),),
            after="Exactly 5 sold, no seat twice. The price: buyers now take turns, and "
            "those who saw a ticket at first were refused once their turn came.",
        ),
    )


def _shared_memory(base: RunConfig) -> tuple[Lesson, ...]:
    """multiprocessing's shared Value and Array: their locks protect one access, not a sale."""
    forced = replace(base, buyers=3, delay=0.0, lockstep=True)
    return (
        Lesson(
            "3. The Value misconception",
            "A tutorial claims a shared multiprocessing.Value is safe for 'v.value -= 1' "
            "because it carries a lock. Three buyers, forced to read before any writes:",
            (
                replace(forced, strategy="value-unlocked"),
                replace(base, strategy="value", buyers=3, delay=0.0),
            ),
            after="Each access takes the lock separately, so the read and the write are "
            "not one step: three sales, and the count fell by one. Holding get_lock() "
            "across both (the second sale) is what makes it safe.",
        ),
        Lesson(
            "4. The seat map",
            "Seats in a shared multiprocessing.Array, claimed without, then with, its lock:",
            (
                replace(forced, strategy="array-unlocked"),
                replace(base, strategy="array", buyers=3, delay=0.0),
            ),
            after="Without the lock, all three saw seat 1 free and claimed it; the later "
            "claims overwrote the earlier ones.",
        ),
    )


def _where_a_lock_lives(base: RunConfig, db_path: Path) -> tuple[Lesson, ...]:
    """A lock in one program's memory against one the kernel keeps: other programs, and
    a holder that dies."""
    killed = replace(base, buyers=6, tickets=3, delay=0.05, kill_holder=True, timeout=2.0)
    return (
        Lesson(
            "5. Two programs, one db",
            "Two separate 'ticketsim run --keep' programs sell the last ticket at once, "
            "first with a multiprocessing.Lock each, then with a file lock.",
            two_programs=("lock", "filelock"),
            db_path=db_path,
            after="A multiprocessing.Lock lives in one program's memory: the other cannot "
            "see it, and the ticket is sold twice. The file lock lives in the kernel, "
            "keyed by the lock file, so it protects both programs.",
        ),
        Lesson(
            "6. A killed lock holder",
            "The first buyer to take the lock is killed (SIGKILL) while holding it. "
            "First with a multiprocessing.Lock, then with a file lock.",
            (replace(killed, strategy="lock"), replace(killed, strategy="filelock")),
            after="A multiprocessing.Lock has no owner: nobody ever releases it, and the "
            "sale stalls (ticketsim notices, ends every process and exits 3). The kernel "
            "releases a file lock when its holder dies, and the sale goes on.",
        ),
    )


def _real_databases(base: RunConfig) -> tuple[Lesson, ...]:
    """What a database lets through that a lock on a file would not: write skew, and a
    lock whose lease runs out while its holder is paused."""
    forced = replace(base, buyers=3, tickets=1, delay=0.0, lockstep=True)
    paused = replace(base, buyers=3, tickets=1, delay=0.0, pause_holder=True)
    return (
        Lesson(
            "7. Write skew in PostgreSQL",
            "Each buyer counts the sales in the ledger under REPEATABLE READ (snapshot "
            "isolation), then inserts its own. Three buyers, forced to count before any "
            "inserts; then the same under SERIALIZABLE, which retries what it refuses:",
            (
                replace(forced, strategy="pg-write-skew"),
                replace(forced, strategy="pg-ledger-serializable"),
            ),
            after="No two transactions wrote the same row, so snapshot isolation let all "
            "three commit, with no error at all: the one ticket was sold three times. "
            "SERIALIZABLE saw that each read what the others wrote, refused two, and "
            "their retries found the ticket gone.",
        ),
        Lesson(
            "8. A lock whose lease runs out",
            "A Redis lock (SET NX PX) with a 1 s lease. The first buyer to take it is "
            "SIGSTOPped just after its read, and resumed once the others are done; "
            "then the same with a fencing token that the store checks on every write:",
            (replace(paused, strategy="redis-lock"), replace(paused, strategy="redis-fenced")),
            after="The lease ran out while the holder was paused; another buyer took the "
            "lock and sold the ticket, then the holder woke up and sold it again, never "
            "knowing it had lost the lock. With the fencing token, its late write "
            "carried an older token than the store had seen, and was refused.",
        ),
    )


#: How long program A sleeps in its race window before program B starts.
_HEAD_START_S: Final = 0.5


def _two_programs(strategy: str, db_path: Path) -> tuple[tuple[str, int, int], ...]:
    """Sell the last ticket from two programs at once; what each sold, and the ledger."""
    dbfile.write_atomic(db_path, dbfile.TicketDB.fresh(1))

    def program(delay: float) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "ticketsim", "run", "--keep", "--json", "--buyers", "1",
             "--strategy", strategy, "--delay", str(delay), "--db", str(db_path)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip

    first = program(1.5)
    time.sleep(_HEAD_START_S)  # a demo, not a test: A is in its race window by now
    second = program(0.0)
    sold = [json.loads(p.communicate(timeout=60)[0])["sold"] for p in (first, second)]
    ledger = len(dbfile.load(db_path).ledger)
    return ((strategy, sold[0] + sold[1], ledger),)


def run_step(lesson: Lesson, servers: Mapping[StoreKind, str] | None = None) -> Outcome:
    """Run one lesson's sales (a database's on ``servers``, started once for the whole
    lesson plan); a lesson whose server cannot be had says why instead."""
    try:
        reports = tuple(build_report(run_sale(config, servers=servers)) for config in lesson.sales)
    except ServerUnavailable as exc:
        return Outcome(lesson, unavailable=str(exc))
    programs: tuple[tuple[str, int, int], ...] = ()
    for strategy in lesson.two_programs:
        programs += _two_programs(strategy, lesson.db_path or DEFAULT_DB)
    return Outcome(lesson, reports, programs)
