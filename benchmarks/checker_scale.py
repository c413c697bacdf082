"""Auditing big sales: time and memory of checking a history, from 10k to 1M events.

For each size the benchmark builds, in memory, the history of a safe ``lock`` sale:
N buyers for N/2 tickets on a pool of 8 workers, each buyer ``ready check wait enter
read [write] leave ok|fail``, the critical sections one after another, and a final
db whose ledger holds every sale. It times, best of ``--repeat``:

* ``check``: :func:`ticketsim.analysis.checker.check` on the history in memory, as
  :func:`ticketsim.analysis.report.build_report` calls it at the end of a run;
* ``report``: the whole :func:`~ticketsim.analysis.report.build_report` (the check included);
* ``write``: :func:`ticketsim.analysis.history.save`, as ``ticketsim run --history`` writes it;
* ``audit``: what ``ticketsim check --history`` does: :func:`ticketsim.analysis.history.load`,
  then :func:`~ticketsim.analysis.report.build_report`;
* ``racy check``: the checker on a ``none`` sale of the same size where every seat was
  sold twice (pairs of buyers read the same count: ``ready check read write ok``), so
  that every seat has a double-booking to explain and half the sales are lost.

Memory is measured in a separate pass with ``tracemalloc`` (which slows Python down,
so it is off while timing): ``history`` is what the events of the lock sale take in
memory; each step's ``peak`` is the most memory it had allocated at once beyond what
was allocated before it started (for ``audit``, that includes the history it loads,
and the buffer ``ticketsim.core.db`` reads the db into). Figures are per event.

The racy sale is timed up to ``--racy-max`` events (default: every size).

A run has at most 100,000 buyers (``ticketsim.engine.runner``'s limit): 750,000 events in
such a sale. Larger sizes are built with that limit lifted, in this process only.

    python benchmarks/checker_scale.py [--events 1000000] [--sizes 10000,100000,300000]
        [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final
from unittest import mock

from ticketsim.analysis import history as historyfile
from ticketsim.analysis.checker import check
from ticketsim.analysis.report import build_report
from ticketsim.core import db as dbfile
from ticketsim.core import settings
from ticketsim.core.events import Event, Step, buyer_name
from ticketsim.core.result import RunResult
from ticketsim.core.settings import RunConfig
from ticketsim.engine import runner

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

WORKERS: Final = 8
OPENED_AT: Final = 5000.0
#: Epoch seconds of the first sale in the ledger.
WALL: Final = 1_795_000_000.0
#: Seconds one buyer holds the lock.
SECTION_S: Final = 2e-5


#: The limits on a sale's buyers, where they are checked (whichever each module has).
BUYER_LIMITS: Final = ("MAX_BUYERS", "MAX_POOLED_BUYERS")


@contextlib.contextmanager
def lifted_cap(buyers: int) -> Iterator[None]:
    """Let this process describe a sale of ``buyers`` pooled buyers, past the run limit."""
    with contextlib.ExitStack() as stack:
        for module in (runner, settings):
            for name in BUYER_LIMITS:
                limit = getattr(module, name, None)
                if isinstance(limit, int) and limit < buyers:
                    stack.enter_context(mock.patch.object(module, name, buyers))
        yield


def buyers_for(events: int) -> int:
    """Buyers whose sale records about ``events`` events (7.5 each: half of them buy)."""
    return max(2, round(events / 7.5))


def pid_of(number: int) -> int:
    return 40_000 + number % WORKERS


def history(buyers: int) -> tuple[Event, ...]:
    """The events of a safe lock sale, in time order: every buyer finishes, the first
    half (in the order the lock was granted) buy."""
    tickets = buyers // 2
    events: list[Event] = []
    for number in range(1, buyers + 1):
        pid = pid_of(number)
        start = OPENED_AT + number * 1e-6
        events.append(Event(number, Step.READY, start - 0.5, pid))
        events.append(Event(number, Step.CHECK, start, pid, value=tickets))
        events.append(Event(number, Step.WAIT, start + 5e-7, pid))
        # The lock is granted in buyer order, once every buyer has checked.
        section = OPENED_AT + buyers * 1e-6 + number * SECTION_S
        left = max(tickets - number + 1, 0)
        events.append(Event(number, Step.ENTER, section, pid))
        events.append(Event(number, Step.READ, section + 2e-6, pid, value=left))
        if left:
            events.append(
                Event(number, Step.WRITE, section + 1e-5, pid, value=left - 1, seat=number)
            )
        events.append(Event(number, Step.LEAVE, section + 1.2e-5, pid))
        if left:
            events.append(Event(number, Step.OK, section + 1.5e-5, pid, seat=number))
        else:
            events.append(Event(number, Step.FAIL, section + 1.5e-5, pid))
    events.sort(key=lambda e: e.t)
    return tuple(events)


def sale(buyers: int, db_path: Path, events: tuple[Event, ...]) -> RunResult:
    """The run that recorded ``events``, with the final db that matches them."""
    tickets = buyers // 2
    ledger = tuple(
        dbfile.Sale(buyer_name(n), n, pid_of(n), WALL + n * SECTION_S)
        for n in range(1, tickets + 1)
    )
    with lifted_cap(buyers):
        config = RunConfig(
            buyers=buyers,
            tickets=tickets,
            strategy="lock",
            db_path=db_path,
            delay=0.0,
            seed=7,
            pool=WORKERS,
            start_method="fork",
        )
    return RunResult(
        config=config,
        start_method="fork",
        seed=7,
        initial=dbfile.TicketDB.fresh(tickets),
        final=dbfile.TicketDB(tickets=tickets, remaining=0, ledger=ledger),
        final_error=None,
        history=events,
        opened_at=OPENED_AT,
        elapsed_s=events[-1].t - OPENED_AT,
    )


def racy_buyers_for(events: int) -> int:
    """Buyers whose racy sale records about ``events`` events (5 each)."""
    return max(2, round(events / 5) // 2 * 2)


def racy_sale(buyers: int) -> tuple[dbfile.TicketDB, dbfile.TicketDB, tuple[Event, ...]]:
    """An unprotected sale where buyers ``2k-1`` and ``2k`` both read the count before
    either wrote it back, and were both sold seat ``k``: the db as it opened, after, and
    the history. The second writer of each pair wins the ledger."""
    tickets = buyers // 2
    events: list[Event] = []
    ledger: list[dbfile.Sale] = []
    for number in range(1, buyers + 1):
        pid = pid_of(number)
        seat = (number + 1) // 2
        start = OPENED_AT + number * 1e-6
        events.append(Event(number, Step.READY, start - 0.5, pid))
        events.append(Event(number, Step.CHECK, start, pid, value=tickets))
        read = OPENED_AT + buyers * 1e-6 + seat * SECTION_S + number % 2 * 1e-6
        events.append(Event(number, Step.READ, read, pid, value=tickets - seat + 1))
        events.append(Event(number, Step.WRITE, read + 1e-5, pid, value=tickets - seat, seat=seat))
        events.append(Event(number, Step.OK, read + 1.5e-5, pid, seat=seat))
        if number % 2 == 0:
            ledger.append(dbfile.Sale(buyer_name(number), seat, pid, WALL + seat * SECTION_S))
    events.sort(key=lambda e: e.t)
    final = dbfile.TicketDB(tickets=tickets, remaining=0, ledger=tuple(ledger))
    return dbfile.TicketDB.fresh(tickets), final, tuple(events)


@dataclass(frozen=True)
class Figures:
    #: Events in the history the step worked on.
    events: int
    seconds: float
    #: Bytes allocated at the peak, beyond what was allocated before the step.
    peak: int

    @property
    def us_per_event(self) -> float:
        return self.seconds / self.events * 1e6

    @property
    def peak_per_event(self) -> float:
        return self.peak / self.events


def timed(step: Callable[[], object], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        gc.collect()
        begin = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - begin)
    return best


def peak(step: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    step()
    top = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return top - before


def measure(events: int, step: Callable[[], object], repeat: int) -> Figures:
    return Figures(events, timed(step, repeat), peak(step))


def built(buyers: int) -> tuple[tuple[Event, ...], int]:
    """The history of a sale of ``buyers``, and the bytes it takes in memory (the
    events, their times and numbers, and the tuple that holds them)."""
    gc.collect()
    tracemalloc.start()
    events = history(buyers)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return events, held


@dataclass(frozen=True)
class Row:
    events: int
    buyers: int
    #: Bytes the lock sale's history takes in memory.
    history: int
    #: Bytes ``ticketsim.core.db.load`` allocates at its peak to read the final db.
    db_read: int
    check: Figures
    report: Figures
    write: Figures
    audit: Figures
    #: ``None``: not measured at this size (``--racy-max``).
    racy: Figures | None


#: The steps timed, as the tables name them.
STEPS: Final = {
    "check": "check",
    "report": "report",
    "write": "write",
    "audit": "audit",
    "racy": "racy check",
}


def lock_row(size: int, folder: Path, repeat: int) -> Row:
    """Every figure of the lock sale of about ``size`` events; the racy check left out."""
    buyers = buyers_for(size)
    db_path = folder / "tickets.json"
    path = folder / "sale.jsonl"
    events, held = built(buyers)
    result = sale(buyers, db_path, events)
    final = result.final
    if final is None:
        raise RuntimeError("the sale has no final db")
    dbfile.write_atomic(db_path, final)

    def checking() -> object:
        found = check(
            result.initial, final, result.history, buyers=buyers, safe=True, final_error=None
        )
        if found:
            raise RuntimeError(f"a safe sale has violations: {found[0].explanation}")
        return found

    def reporting() -> object:
        return build_report(result)

    def writing() -> object:
        historyfile.save(path, result)
        return None

    def auditing() -> object:
        report = build_report(historyfile.load(path, db_path))
        if not report.ok or report.sold != final.tickets:
            raise RuntimeError(f"the audit disagrees with the sale: {report.verdict}")
        return report

    with lifted_cap(buyers):
        return Row(
            events=len(events),
            buyers=buyers,
            history=held,
            db_read=peak(lambda: dbfile.load(db_path)),
            check=measure(len(events), checking, repeat),
            report=measure(len(events), reporting, repeat),
            write=measure(len(events), writing, repeat),
            audit=measure(len(events), auditing, repeat),
            racy=None,
        )


def racy_figures(size: int, repeat: int) -> Figures:
    """The racy check on a racy sale of about ``size`` events."""
    buyers = racy_buyers_for(size)
    initial, final, events = racy_sale(buyers)
    # Oversold, one double booking a seat, and the lost sales.
    expected = 1 + buyers // 2 + 1

    def checking() -> object:
        found = check(initial, final, events, buyers=buyers, safe=False)
        if len(found) != expected:
            raise RuntimeError(f"{len(found)} violations in the racy sale, not {expected}")
        return found

    return measure(len(events), checking, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="the largest size")
    parser.add_argument(
        "--sizes", default="10000,100000,300000", help="smaller sizes, comma separated"
    )
    parser.add_argument("--repeat", type=int, default=3, help="best of this many timings")
    parser.add_argument(
        "--racy-max", type=int, default=None, help="time the racy sale only up to this size"
    )
    options = parser.parse_args()
    sizes = sorted({int(s) for s in options.sizes.split(",") if s} | {options.events})
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            row = lock_row(size, Path(folder), options.repeat)
            if options.racy_max is None or size <= options.racy_max:
                row = replace(row, racy=racy_figures(size, options.repeat))
            rows.append(row)
    print(f"Time, best of {options.repeat}: seconds (µs per event)")
    print()
    table(["events", "buyers", *STEPS.values()], rows, time_cell)
    print()
    print(
        "Memory, bytes per event: the lock sale's history, and each step's tracemalloc "
        "peak beyond what was allocated before it"
    )
    print()
    head = ["events", "buyers", "history", *(f"{label} peak" for label in STEPS.values())]
    table(head, rows, lambda f: f"{f.peak_per_event:.0f}", history=True)
    print()
    print(
        "The audit's peak includes the buffer ticketsim.core.db.load allocates to read the db "
        f"({rows[0].db_read / 2**20:.0f} MB whatever the db's size; allocated, not all of it "
        "touched)."
    )
    small = min(rows, key=lambda r: abs(r.events - 100_000))
    large = rows[-1]
    if large is not small:
        print()
        print(f"Per event, {large.events:,} events vs {small.events:,} (linear: about 1):")
        print()
        print("| step | time | peak memory |")
        print("|---|---:|---:|")
        for name, label in STEPS.items():
            a: Figures | None = getattr(large, name)
            b: Figures | None = getattr(small, name)
            if a is None or b is None:
                continue
            time_ratio = a.us_per_event / b.us_per_event
            memory_ratio = a.peak_per_event / b.peak_per_event
            print(f"| {label} | {time_ratio:.2f} | {memory_ratio:.2f} |")


def time_cell(figures: Figures) -> str:
    return f"{figures.seconds:.3f} ({figures.us_per_event:.2f})"


def table(
    head: list[str], rows: list[Row], cell: Callable[[Figures], str], *, history: bool = False
) -> None:
    """A markdown table: one row per size, one column per step."""
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---:" for _ in head) + "|")
    for row in rows:
        cells = [f"{row.events:,}", f"{row.buyers:,}"]
        if history:
            cells.append(f"{row.history / row.events:.0f}")
        for name in STEPS:
            figures: Figures | None = getattr(row, name)
            cells.append("-" if figures is None else cell(figures))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
