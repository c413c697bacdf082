"""A buyer's own process ends as a forked one does, under every start method; run in
ticketsim's own process, the same body leaves that process's exit alone."""

from __future__ import annotations

import atexit
import multiprocessing
import signal
from typing import TYPE_CHECKING

from ticketsim.core import db as dbfile
from ticketsim.core._interrupts import INTERRUPTS
from ticketsim.sale.buyer import run_buyer_process
from ticketsim.sale.channel import EventChannel
from ticketsim.sale.gate import StartGate
from ticketsim.sale.guards import NoGuard
from ticketsim.sale.steps import BuyerSpec, GuardedTools, Pacer
from ticketsim.sale.stores import FileStore

if TYPE_CHECKING:
    from pathlib import Path


def test_run_in_this_process_it_registers_no_exit(db_path: Path) -> None:
    dbfile.write_atomic(db_path, dbfile.TicketDB.fresh(1))
    ctx = multiprocessing.get_context("fork")
    channel, start = EventChannel(ctx), StartGate(ctx)
    handlers = atexit._ncallbacks()
    # The body takes a buyer's signals (Ctrl-C ignored): give pytest's back afterwards,
    # or every later test of Ctrl-C in this process would see it ignored.
    dispositions = {signum: signal.getsignal(signum) for signum in INTERRUPTS}
    try:
        start.set()
        tools = GuardedTools(FileStore(str(db_path)), NoGuard())
        run_buyer_process(BuyerSpec(1, 0.0, 5.0), tools, channel.sender, start.gate, Pacer())
        assert atexit._ncallbacks() == handlers  # pytest's own exit is not cut short
        assert dbfile.load(db_path).remaining == 0  # and the buyer bought
    finally:
        for signum, disposition in dispositions.items():
            signal.signal(signum, disposition)
        channel.close()
        start.close()
