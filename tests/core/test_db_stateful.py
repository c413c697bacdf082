"""The db layer and the checker under random runs of sales, refunds, resets and damage.

A model (the TicketDB the file must hold, built here without the db module's
``sell``/``refund``) is kept beside a real file; after every step the file must load
back equal to the model and the checker must find nothing wrong with it. Sales are
made both ways: whole (load, sell, write) and as a buyer's file store makes them
(read the first line and the new ledger lines, append one line), with one
``LedgerIndex`` kept across every step, as a pool worker keeps it across buyers.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ticketsim.analysis.checker import check_db
from ticketsim.core import db as dbfile
from ticketsim.core.db import Sale, TicketDB
from ticketsim.errors import DbError
from ticketsim.sale.stores import _ledger as ledger

if TYPE_CHECKING:
    from ticketsim.sale.stores.base import Seen

MAX_TICKETS = 6
TICKETS = st.integers(min_value=0, max_value=MAX_TICKETS)
EVENTS = st.text(max_size=12)
PIDS = st.integers(min_value=1, max_value=2**22)
TIMES = st.floats(min_value=0.0, max_value=2e9, allow_nan=False, allow_infinity=False)


def _event(seen: Seen) -> str:
    """The event's name as a buyer's read saw it: in the header line, or in the db read whole."""
    if isinstance(seen, ledger.LedgerSeen):
        return seen.head.event
    assert isinstance(seen, ledger.WholeSeen)
    return seen.db.event


class DbMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="ticketsim-stateful-"))
        self.path = self.folder / "tickets.json"
        self.model = TicketDB.fresh(0)
        self.buyers = 0  # buyer names handed out so far, so each sale's buyer is new
        self.index = ledger.LedgerIndex()
        dbfile.write_atomic(self.path, self.model)

    def teardown(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _seats(self) -> list[int]:
        return [sale.seat for sale in self.model.ledger]

    # --- rules --------------------------------------------------------------------

    @initialize(tickets=TICKETS, event=EVENTS)
    def open_sale(self, tickets: int, event: str) -> None:
        self._reset(tickets, event)

    @rule(tickets=TICKETS, event=EVENTS)
    def reset(self, tickets: int, event: str) -> None:
        self._reset(tickets, event)

    def _reset(self, tickets: int, event: str) -> None:
        fresh = TicketDB.fresh(tickets, event)
        assert (fresh.tickets, fresh.remaining, fresh.ledger, fresh.event) == (
            tickets,
            tickets,
            (),
            event,
        )
        dbfile.write_atomic(self.path, fresh)
        self.model = fresh

    @precondition(lambda self: self.model.remaining > 0)
    @rule(pid=PIDS, when=TIMES)
    def sell(self, pid: int, when: float) -> None:
        db = dbfile.load(self.path)
        seat = db.next_seat()
        taken = set(self._seats())
        assert seat == min(set(range(1, db.tickets + 1)) - taken)
        self.buyers += 1
        sale = Sale(buyer=f"buyer-{self.buyers}", seat=seat, pid=pid, time=when)
        dbfile.write_atomic(self.path, db.sell(sale))
        self._sold(sale)

    @precondition(lambda self: self.model.remaining > 0)
    @rule(pid=PIDS, when=TIMES)
    def sell_as_a_buyer(self, pid: int, when: float) -> None:
        seen = ledger.read_for_sale(self.path, self.index)
        self.buyers += 1
        sale = Sale(buyer=f"buyer-{self.buyers}", seat=seen.seat, pid=pid, time=when)
        ledger.append_sale(self.path, seen, sale, self.index)
        self._sold(sale)
        # Appending a line writes exactly what encoding the whole db would.
        assert self.path.read_text() == dbfile.dumps(self.model)

    def _sold(self, sale: Sale) -> None:
        model = self.model
        self.model = TicketDB(
            tickets=model.tickets,
            remaining=model.remaining - 1,
            ledger=(*model.ledger, sale),
            event=model.event,
        )

    @precondition(lambda self: bool(self.model.ledger))
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        seat = data.draw(st.sampled_from(sorted(self._seats())), label="seat")
        db = dbfile.load(self.path)
        after = db.refund(seat)
        with pytest.raises(ValueError, match=f"seat={seat} is not sold"):
            after.refund(seat)
        dbfile.write_atomic(self.path, after)
        model = self.model
        self.model = TicketDB(
            tickets=model.tickets,
            remaining=model.remaining + 1,
            ledger=tuple(sale for sale in model.ledger if sale.seat != seat),
            event=model.event,
        )

    @rule(data=st.data())
    def corrupt_then_recover(self, data: st.DataObject) -> None:
        body = dbfile.dumps(self.model).rstrip()
        garbage = data.draw(
            st.one_of(
                st.just(b""),
                # Any proper prefix of the object: the closing brace is always cut.
                st.integers(min_value=0, max_value=len(body) - 1).map(
                    lambda cut: body[:cut].encode()
                ),
                st.lists(st.integers(), max_size=4).map(lambda items: json.dumps(items).encode()),
                st.text(max_size=40).map(lambda text: text.encode()),
                st.binary(max_size=40),
            ),
            label="garbage",
        )
        self.path.write_bytes(garbage)
        with pytest.raises(DbError) as caught:
            dbfile.load(self.path)
        assert caught.value.path == str(self.path)
        dbfile.write_atomic(self.path, self.model)

    @rule()
    def naive_write(self) -> None:
        dbfile.write_naive(self.path, self.model)
        assert dbfile.load(self.path) == self.model

    # --- invariants ---------------------------------------------------------------

    @invariant()
    def the_file_holds_the_model(self) -> None:
        assert dbfile.load(self.path) == self.model

    @invariant()
    def a_buyer_reads_what_the_file_holds(self) -> None:
        assert ledger.read_remaining(self.path) == self.model.remaining
        seen = ledger.read_for_sale(self.path, self.index)
        assert (seen.tickets, seen.remaining, _event(seen)) == (
            self.model.tickets,
            self.model.remaining,
            self.model.event,
        )
        if self.model.remaining > 0:
            assert seen.seat == self.model.next_seat()

    @invariant()
    def the_checker_finds_nothing(self) -> None:
        assert check_db(self.model) == []
        assert check_db(dbfile.load(self.path)) == []

    @invariant()
    def every_ticket_is_left_or_sold(self) -> None:
        assert self.model.remaining + len(self.model.ledger) == self.model.tickets
        assert 0 <= self.model.remaining <= self.model.tickets

    @invariant()
    def no_seat_is_sold_twice(self) -> None:
        seats = self._seats()
        assert len(set(seats)) == len(seats)

    @invariant()
    def every_seat_is_on_sale(self) -> None:
        assert all(1 <= seat <= self.model.tickets for seat in self._seats())

    @invariant()
    def the_next_seat_is_free(self) -> None:
        if self.model.remaining > 0:
            seat = self.model.next_seat()
            assert seat not in self._seats()
            assert 1 <= seat <= self.model.tickets


TestDbStateMachine = DbMachine.TestCase
TestDbStateMachine.settings = settings(
    max_examples=50,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
