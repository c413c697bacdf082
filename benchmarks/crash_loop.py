"""Kill a writing process at random instants: does the db survive?

A child process sells seats in a loop, writing the db after each sale and then
acknowledging it; the parent SIGKILLs it after a random few milliseconds, then reads
the db. Atomic writes (temp file + ``os.replace``) must leave a readable db holding
every acknowledged sale every time; the tutorial's ``open(path, "w")`` + ``json.dump``
does not.

    python benchmarks/crash_loop.py [--kills 200] [--seed 2026]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from ticketsim.core import db as dbfile
from ticketsim.errors import DbError


def _sell_forever(path: str, naive: bool, acks: Any) -> None:
    write = dbfile.write_naive if naive else dbfile.write_atomic
    while True:
        db = dbfile.load(path)
        seat = db.next_seat()
        write(path, db.sell(dbfile.Sale(f"buyer-{seat}", seat, os.getpid(), time.time())))
        acks.send(seat)


def crash_loop(naive: bool, kills: int, seed: int) -> tuple[int, int, int]:
    """(kills, times the db was left unreadable, acknowledged sales lost)."""
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(seed)
    unreadable = lost = 0
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "tickets.json")
        good = dbfile.TicketDB.fresh(10**6)
        dbfile.write_atomic(path, good)
        acknowledged: set[int] = set()
        for _ in range(kills):
            reader, writer = ctx.Pipe(duplex=False)
            child = ctx.Process(target=_sell_forever, args=(path, naive, writer), daemon=True)
            child.start()
            writer.close()
            time.sleep(rng.uniform(0, 0.004))
            child.kill()
            child.join(5)
            while reader.poll():
                try:
                    acknowledged.add(reader.recv())
                except EOFError:
                    break
            reader.close()
            try:
                good = dbfile.load(path)
            except DbError:
                unreadable += 1
                dbfile.write_atomic(path, good)  # start the next round from the last good db
                continue
            lost += len(acknowledged - {s.seat for s in good.ledger})
            acknowledged &= {s.seat for s in good.ledger}
    return kills, unreadable, lost


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=2026)
    options = parser.parse_args()
    for label, naive in (
        ("atomic (temp file, then swapped in or os.replace)", False),
        ('naive (open(path, "w") + json.dump)', True),
    ):
        kills, unreadable, lost = crash_loop(naive, options.kills, options.seed)
        print(
            f"{label}: {kills} kills, db unreadable after {unreadable} "
            f"({100 * unreadable / kills:.1f}%), acknowledged sales lost: {lost}"
        )


if __name__ == "__main__":
    main()
