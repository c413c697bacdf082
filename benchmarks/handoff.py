"""The least a lock-based sale can cost here: buyers with nothing but the sale (issue 7).

The serial limit (``performance.py``) is one process selling in a loop: it never waits
for a lock and never finds the db last written by another core. A real sale has to
hand its lock from process to process. This measures that hand-off with no ticketsim
machinery around it: each buyer looks at the count (``check``), takes the guard,
reads the db and writes its sale (``FileStore``, the same read and write as the limit),
and lets go. No events, no pacer, no pool, no report.

- ``--processes 0``: one process per buyer, as ticketsim runs a small sale;
- ``--processes K``: K processes that each make ``buyers / K`` purchases in a row, as
  ticketsim's crew does.

The sale opens as ticketsim opens it: once every process has said it is ready, the
parent notes the time and opens the same gate (``ticketsim.sale.gate``: a byte on a
pipe wakes every buyer together). A ``multiprocessing.Event``, which this used, lets
its waiters through one by one, and spared the bare buyers the crowd at the lock that
ticketsim's meet. (A barrier would not do: the parent wakes from it at some point
among the others, and a clock started then missed part of the sale.) It prints medians
of ``--runs`` runs:

- sales per second, from the opening to the last buyer done (after it let go), as
  ticketsim's report counts them to the last outcome;
- the time per buyer, the same span divided by the buyers (with ``--tickets`` below
  ``--buyers``, the rest only check and read: issue 7's scale goal);
- the hold: from holding the lock to letting go, the buyer's read and write;
- the hand-off: from one buyer letting go to the next one holding the lock.

    python benchmarks/handoff.py [--buyers 2000] [--tickets N] [--processes 2]
                                 [--guard lock|filelock] [--runs 5]
"""

from __future__ import annotations

import argparse
import itertools
import math
import multiprocessing
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ticketsim.core import db as dbfile
from ticketsim.sale.gate import PipeGate, StartGate
from ticketsim.sale.guards import FILELOCK_POLL_S
from ticketsim.sale.stores import FileStore


@dataclass(frozen=True)
class BareSale:
    """What one bare sale measured."""

    #: Sales per second, from the opening of the sale to the last buyer done.
    rate: float
    #: Seconds from the opening to the last buyer done, per buyer.
    per_buyer_s: float
    #: Median time a buyer held the lock: its read and its write.
    hold_s: float
    #: Median time from one buyer letting go of the lock to the next one holding it
    #: (``nan`` with a single buyer).
    handoff_s: float


def _buyer(
    path: str, lock: Any, first: int, count: int, ready: Any, gate: PipeGate, times: Any, done: Any
) -> None:
    """Buyers ``first`` to ``first + count - 1``, one after another in this process.
    ``times[3 * b : 3 * b + 3]`` get buyer ``b``'s hold, release and end."""
    guard: Any = lock
    if lock is None:  # a file lock: each process opens its own, as ticketsim's buyers do
        from filelock import FileLock

        guard = FileLock(f"{path}.lock", timeout=60, poll_interval=FILELOCK_POLL_S)
    store = FileStore(path)
    store.prepare()  # ticketsim's buyers rehearse their first sale too
    ready.release()
    if not gate.wait(60):
        raise SystemExit("the sale never opened")
    for buyer in range(first, first + count):
        store.peek(None)  # type: ignore[arg-type] # a file store's check records nothing
        with guard:
            times[3 * buyer] = time.monotonic()
            seen = store.read(None)  # type: ignore[arg-type]
            if seen.remaining > 0:
                sale = dbfile.Sale(f"buyer-{buyer}", seen.seat, os.getpid(), time.time())
                store.sell(seen, sale)
            times[3 * buyer + 1] = time.monotonic()
        store.tidy()  # the old db, removed once the lock is let go, as ticketsim's buyers do
        times[3 * buyer + 2] = time.monotonic()
    # As ticketsim's buyers do: a process that ends during the sale takes a core from
    # the buyers still buying while the kernel takes its memory down.
    done.release()
    gate.wait_over(60)


def bare_sale(buyers: int, tickets: int, processes: int, guard_kind: str, folder: str) -> BareSale:
    """One bare sale of ``tickets`` tickets to ``buyers`` buyers, on ``processes``
    processes (0: one per buyer)."""
    path = str(Path(folder) / "tickets.json")
    dbfile.write_atomic(path, dbfile.TicketDB.fresh(tickets))
    ctx = multiprocessing.get_context("fork")
    lock = ctx.Lock() if guard_kind == "lock" else None
    each = processes or buyers
    shares = [buyers // each + (1 if n < buyers % each else 0) for n in range(each)]
    firsts = [sum(shares[:n]) for n in range(each)]
    ready, done = ctx.Semaphore(0), ctx.Semaphore(0)  # a process is ready; is done
    start = StartGate(ctx)
    times = ctx.Array("d", 3 * buyers, lock=False)
    workers = [
        ctx.Process(target=_buyer, args=(path, lock, first, share, ready, start.gate, times, done))
        for first, share in zip(firsts, shares, strict=True)
    ]
    try:
        for worker in workers:
            worker.start()
        for _ in workers:
            if not ready.acquire(timeout=60):
                raise SystemExit("a buyer never got ready")
        opened = time.monotonic()
        start.set()
        for _ in workers:
            if not done.acquire(timeout=60):
                raise SystemExit("a buyer never finished")
        start.end()
        for worker in workers:
            worker.join(60)
            if worker.exitcode != 0:
                raise SystemExit(f"a buyer exited with {worker.exitcode}")
    finally:
        start.close()
    final = dbfile.load(path)
    sold = len({sale.seat for sale in final.ledger})
    expected = min(tickets, buyers)
    if sold != expected or len(final.ledger) != expected:
        raise SystemExit(f"sold {sold} of {expected}: the bare sale is broken")
    holds = sorted((float(times[3 * b]), float(times[3 * b + 1])) for b in range(buyers))
    elapsed = max(float(times[3 * b + 2]) for b in range(buyers)) - opened
    gaps = [after[0] - before[1] for before, after in itertools.pairwise(holds)]
    return BareSale(
        rate=sold / elapsed,
        per_buyer_s=elapsed / buyers,
        hold_s=statistics.median(end - begin for begin, end in holds),
        handoff_s=statistics.median(gaps) if gaps else math.nan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--tickets", type=int, default=None, help="default: --buyers")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--guard", choices=("lock", "filelock"), default="lock")
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    tickets = options.buyers if options.tickets is None else options.tickets
    with tempfile.TemporaryDirectory() as folder:
        sales = [
            bare_sale(options.buyers, tickets, options.processes, options.guard, folder)
            for _ in range(options.runs)
        ]
    print(f"sales/s: {statistics.median(s.rate for s in sales):.0f}")
    print(f"per buyer: {statistics.median(s.per_buyer_s for s in sales) * 1e6:.1f} us")
    print(f"hold (read and write): {statistics.median(s.hold_s for s in sales) * 1e6:.1f} us")
    print(f"hand-off: {statistics.median(s.handoff_s for s in sales) * 1e6:.1f} us")


if __name__ == "__main__":
    main()
