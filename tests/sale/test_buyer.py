"""A buyer's own body, run in this process with real parts: nothing escapes it."""

from __future__ import annotations

import multiprocessing
import threading
from typing import TYPE_CHECKING

from ticketsim.core import db as dbfile
from ticketsim.core.events import Event, Step
from ticketsim.sale.buyer import run_buyer
from ticketsim.sale.channel import EventChannel
from ticketsim.sale.guards import NoGuard
from ticketsim.sale.steps import BuyerSpec, GuardedTools, Pacer
from ticketsim.sale.stores import FileStore

if TYPE_CHECKING:
    from pathlib import Path


def test_a_buyer_whose_pipe_is_gone_ends_quietly(db_path: Path) -> None:
    """ticketsim closes the events' pipe when it ends a sale (refused at the process
    limit, interrupted); a buyer still starting then finds nobody to tell. Its first
    record fails, and so would the record of that failure: the buyer must end without
    raising, or its process prints a traceback on ticketsim's stderr."""
    dbfile.write_atomic(db_path, dbfile.TicketDB.fresh(2))
    ctx = multiprocessing.get_context("fork")
    channel = EventChannel(ctx)
    sender = channel.sender
    channel._reader.close()  # the parent's end, as ticketsim closes it when it ends
    gate = ctx.Event()
    tools = GuardedTools(FileStore(str(db_path)), NoGuard())
    try:
        run_buyer(BuyerSpec(1, 0.0, 1.0), tools, sender, gate, Pacer(), prepared=True)
    finally:
        sender.conn.close()
    assert dbfile.load(db_path) == dbfile.TicketDB.fresh(2)  # it bought nothing


class _Events:
    """A channel that keeps what it is sent."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def put(self, event: Event) -> None:
        self.events.append(event)


def test_a_buyer_waits_for_the_sale_to_open_as_long_as_the_parent_waits_to_open_it(
    db_path: Path,
) -> None:
    """The parent waits up to 30 s for the slowest buyer to be ready; the ready ones
    waited only their timeout for the gate, and gave up on a sale about to open."""
    dbfile.write_atomic(db_path, dbfile.TicketDB.fresh(1))
    gate = threading.Event()
    opening = threading.Timer(1.5, gate.set)  # later than the timeout, within the opening
    events = _Events()
    tools = GuardedTools(FileStore(str(db_path)), NoGuard())
    opening.start()
    try:
        run_buyer(BuyerSpec(1, 0.0, 1.0, 5.0), tools, events, gate, Pacer(), prepared=True)
    finally:
        opening.cancel()
    assert [e.step for e in events.events][-1] is Step.OK
