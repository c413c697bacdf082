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
parent notes the time and sets one ``multiprocessing.Event`` that they all wait on.
Sales per second are counted from then to the last sale, as ticketsim's report counts
them. (A barrier would not do: the parent wakes from it at some point among the
others, and a clock started then missed part of the sale.) Prints one number: the
median of ``--runs`` runs.

    python benchmarks/handoff.py [--buyers 2000] [--processes 2] [--guard lock|filelock]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ticketsim import db as dbfile
from ticketsim.guards import FILELOCK_POLL_S
from ticketsim.stores import FileStore


def _buyer(
    path: str, lock: Any, purchases: int, ready: Any, start: Any, last: Any, slot: int
) -> None:
    guard: Any = lock
    if lock is None:  # a file lock: each process opens its own, as ticketsim's buyers do
        from filelock import FileLock

        guard = FileLock(f"{path}.lock", timeout=60, poll_interval=FILELOCK_POLL_S)
    store = FileStore(path)
    store.prepare()  # ticketsim's buyers rehearse their first sale too
    ready.release()
    if not start.wait(60):
        raise SystemExit("the sale never opened")
    for _ in range(purchases):
        store.peek(None)  # type: ignore[arg-type] # a file store's check records nothing
        with guard:
            seen = store.read(None)  # type: ignore[arg-type]
            if seen.remaining > 0:
                sale = dbfile.Sale(f"buyer-{slot}", seen.next_seat(), os.getpid(), time.time())
                store.sell(seen, sale)
                last[slot] = time.monotonic()


def sale_rate(buyers: int, processes: int, guard_kind: str, folder: str) -> float:
    """Sales per second of one bare sale of ``buyers`` tickets to ``buyers`` buyers."""
    path = str(Path(folder) / "tickets.json")
    dbfile.write_atomic(path, dbfile.TicketDB.fresh(buyers))
    ctx = multiprocessing.get_context("fork")
    lock = ctx.Lock() if guard_kind == "lock" else None
    each = processes or buyers
    shares = [buyers // each + (1 if n < buyers % each else 0) for n in range(each)]
    ready, start = ctx.Semaphore(0), ctx.Event()
    last = ctx.Array("d", each, lock=False)
    workers = [
        ctx.Process(target=_buyer, args=(path, lock, share, ready, start, last, n))
        for n, share in enumerate(shares)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        if not ready.acquire(timeout=60):
            raise SystemExit("a buyer never got ready")
    opened = time.monotonic()
    start.set()
    for worker in workers:
        worker.join(60)
        if worker.exitcode != 0:
            raise SystemExit(f"a buyer exited with {worker.exitcode}")
    final = dbfile.load(path)
    sold = len({sale.seat for sale in final.ledger})
    if sold != buyers or final.remaining != 0:
        raise SystemExit(f"sold {sold} of {buyers}: the bare sale is broken")
    return buyers / (max(float(t) for t in last) - opened)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--guard", choices=("lock", "filelock"), default="lock")
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        rates = [
            sale_rate(options.buyers, options.processes, options.guard, folder)
            for _ in range(options.runs)
        ]
    print(f"{statistics.median(rates):.0f}")


if __name__ == "__main__":
    main()
