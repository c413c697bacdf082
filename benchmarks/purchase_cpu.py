"""What a purchase costs ticketsim's buyer in CPU, against the bare buyer of ``handoff.py``.

The hand-off goals compare whole sales, whose length on 2 cores is set by the CPU of
every process that runs during the sale. This takes the sale apart: one process makes
``--purchases`` purchases in a row with nobody to wait for, under a
``multiprocessing.Lock``, on the db file, so that what is left is the CPU of the
purchase itself, measured with ``time.process_time`` in the buying process:

- **bare**: ``handoff.py``'s purchase, check, lock, read, write, let go, tidy;
- **ticketsim**: :func:`~ticketsim.sale.buyer.run_buyer` of a crew's buyer, the same
  store and lock, its steps recorded to a real event pipe that another process reads
  as the parent does in a sale (a thread of this one would take the buyer's GIL at
  every event);
- **recording**: the eight steps such a purchase records (ready, check, wait, enter,
  read, write, leave, ok), recorded alone to the same pipe.

The three run interleaved, and it prints their medians, and what is left of
ticketsim's purchase once its recording is taken out.

    python benchmarks/purchase_cpu.py [--purchases 1500] [--runs 9]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ticketsim.core import db as dbfile
from ticketsim.core.events import Step
from ticketsim.engine.collect import GATHER_S
from ticketsim.sale.buyer import run_buyer
from ticketsim.sale.channel import EventChannel, StepRecorder
from ticketsim.sale.gate import StartGate
from ticketsim.sale.guards import LockGuard
from ticketsim.sale.steps import BuyerSpec, GuardedTools, Pacer
from ticketsim.sale.stores import FileStore

KINDS = ("bare", "ticketsim", "recording")


def _empty(channel: EventChannel, stop: Any) -> None:
    """Read what the buyer records, as the parent follows a sale, until told to stop."""
    while not stop.is_set():
        try:
            channel.receive(timeout=0.05, gather_s=GATHER_S)
        except queue.Empty:
            continue


def _bare(store: FileStore, lock: object, purchases: int) -> None:
    for buyer in range(1, purchases + 1):
        store.peek(None)  # type: ignore[arg-type] # a file store's check records nothing
        with lock:  # type: ignore[attr-defined]
            seen = store.read(None)  # type: ignore[arg-type]
            if seen.remaining > 0:
                sale = dbfile.Sale(f"buyer-{buyer}", seen.seat, os.getpid(), time.time())
                store.sell(seen, sale)
        store.tidy()


def _ticketsim(tools: GuardedTools, channel: EventChannel, start: StartGate, n: int) -> None:
    pacer = Pacer()
    for buyer in range(1, n + 1):
        spec = BuyerSpec(buyer, 0.0, 60.0)
        run_buyer(spec, tools, channel.sender, start.gate, pacer, prepared=True)


def _recording(channel: EventChannel, purchases: int) -> None:
    pid = os.getpid()
    for buyer in range(1, purchases + 1):
        record = StepRecorder(channel.sender, buyer, pid)
        record(Step.READY)
        record(Step.CHECK, value=purchases - buyer + 1)
        record(Step.WAIT)
        record(Step.ENTER)
        record(Step.READ, value=purchases - buyer + 1)
        record(Step.WRITE, value=purchases - buyer, seat=buyer)
        record(Step.LEAVE)
        record(Step.OK, seat=buyer)


def measure(purchases: int, runs: int) -> dict[str, list[float]]:
    """Microseconds of CPU per purchase of each kind, one figure per run."""
    ctx = multiprocessing.get_context("fork")
    found: dict[str, list[float]] = {kind: [] for kind in KINDS}
    channel, start = EventChannel(ctx), StartGate(ctx)
    stop = ctx.Event()
    reader = ctx.Process(target=_empty, args=(channel, stop))
    reader.start()
    try:
        start.set()
        lock = ctx.Lock()
        with tempfile.TemporaryDirectory() as folder:
            path = str(Path(folder) / "tickets.json")
            for run in range(runs):
                for kind in KINDS if run % 2 else KINDS[::-1]:
                    dbfile.write_atomic(path, dbfile.TicketDB.fresh(purchases))
                    store = FileStore(path)
                    store.prepare()
                    began = time.process_time()
                    if kind == "bare":
                        _bare(store, lock, purchases)
                    elif kind == "ticketsim":
                        _ticketsim(GuardedTools(store, LockGuard(lock)), channel, start, purchases)
                    else:
                        _recording(channel, purchases)
                    found[kind].append((time.process_time() - began) / purchases * 1e6)
                    sold = len(dbfile.load(path).ledger)
                    if sold != (0 if kind == "recording" else purchases):
                        raise SystemExit(f"{kind}: sold {sold} of {purchases}")
    finally:
        stop.set()
        reader.join(5)
        if reader.is_alive():
            reader.kill()
            reader.join()
        start.close()
        channel.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--purchases", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=9)
    options = parser.parse_args()
    found = measure(options.purchases, options.runs)
    median = {kind: statistics.median(figures) for kind, figures in found.items()}
    print(f"CPU per purchase, medians of {options.runs} interleaved runs of "
          f"{options.purchases} purchases in one process:\n")  # fmt: skip
    print("| purchase | us of CPU | against bare |")
    print("|---|---:|---:|")
    for kind in KINDS:
        print(f"| {kind} | {median[kind]:.1f} | {median[kind] / median['bare']:.2f}x |")
    beyond = median["ticketsim"] - median["bare"]
    rest = beyond - median["recording"]
    print(f"\nticketsim's purchase beyond the bare one: {beyond:.1f} us, of which recording "
          f"its 8 steps {median['recording']:.1f} us and the rest {rest:.1f} us")  # fmt: skip


if __name__ == "__main__":
    main()
