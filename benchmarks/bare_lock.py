"""The baseline ticketsim's overhead is measured against: the same purchases, by hand.

50 buyer processes, one ``multiprocessing.Lock``, one JSON db with 10 tickets: each
buyer, holding the lock, reads the db, takes a ticket if one is left and writes the
db back through a temp file and ``os.replace``. No events, no checks, no report: the
least a correct program has to do. Standard library only.

Two flags add, one at a time, what ticketsim must do and this script need not; with
both, the script is the floor under ``ticketsim run`` (``performance.py`` runs all four):

- ``--gate``: the buyers wait at a barrier until every one of them is up, and the sale
  opens at once for all (issue 2's start gate: without it, the first buyers forked
  have bought before the last exist, and there is no race to see);
- ``--cli``: the parent first imports ``ticketsim.cli`` (typer, click, the library),
  as the ``ticketsim`` command does, and forks its buyers from that bigger process.

With ``--start-method spawn`` (or ``forkserver``) the buyers are started that way, each
importing this script and the standard library only.

    python benchmarks/bare_lock.py [--db db/tickets.json] [--buyers 50] [--tickets 10]
                                   [--gate] [--cli] [--start-method fork]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from typing import Any


def _write(path: str, db: dict[str, Any]) -> None:
    temp = f"{path}.{os.getpid()}.tmp"
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump(db, handle)
    os.replace(temp, path)


def buy(path: str, lock: Any, number: int, gate: Any) -> None:
    if gate is not None:
        gate.wait(60)
    with lock:
        with open(path, encoding="utf-8") as handle:
            db = json.load(handle)
        if db["remaining"] > 0:
            seat = db["tickets"] - db["remaining"] + 1
            db["remaining"] -= 1
            sale = {"buyer": f"buyer-{number}", "seat": seat, "pid": os.getpid()}
            db["ledger"].append({**sale, "time": time.time()})
            _write(path, db)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--db", default=os.path.join("db", "tickets.json"))
    parser.add_argument("--buyers", type=int, default=50)
    parser.add_argument("--tickets", type=int, default=10)
    parser.add_argument("--gate", action="store_true", help="open the sale for all at once")
    parser.add_argument("--cli", action="store_true", help="import ticketsim.cli first")
    parser.add_argument("--start-method", default=None, help="fork, spawn or forkserver")
    options = parser.parse_args()
    if options.cli:
        import ticketsim.cli  # noqa: F401
    os.makedirs(os.path.dirname(options.db) or ".", exist_ok=True)
    fresh = {"event": "Concert", "tickets": options.tickets, "remaining": options.tickets}
    _write(options.db, {**fresh, "ledger": []})
    ctx = multiprocessing.get_context(options.start_method)
    lock = ctx.Lock()
    gate = ctx.Barrier(options.buyers + 1) if options.gate else None
    buyers = [
        ctx.Process(target=buy, args=(options.db, lock, n, gate))
        for n in range(1, options.buyers + 1)
    ]
    for process in buyers:
        process.start()
    if gate is not None:
        gate.wait(60)
    for process in buyers:
        process.join(60)
    with open(options.db, encoding="utf-8") as handle:
        sold = len(json.load(handle)["ledger"])
    print(f"sold {sold} of {options.tickets} tickets to {options.buyers} buyers")


if __name__ == "__main__":
    main()
