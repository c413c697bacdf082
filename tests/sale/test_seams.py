"""The seams of a sale: a new store or guard is one subclass, and the base class does
the rest (writing the sale back to the db; recording a buyer's wait, entry and leave)."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pytest

from ticketsim.core import db as dbfile
from ticketsim.core.events import OUTCOMES, Step
from ticketsim.errors import GuardTimeout
from ticketsim.sale.buyer import BuyerSpec, Pacer, run_buyer
from ticketsim.sale.channel import EventChannel
from ticketsim.sale.guards import Guard, LockGuard
from ticketsim.sale.steps import GuardedTools
from ticketsim.sale.stores import STORES, Seen, Store, Tally
from ticketsim.sale.stores.base import sales_written

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

    from ticketsim.core.events import Event, Recorder


@dataclass(frozen=True)
class _CounterStore(Store):
    """A store written for this test: the remaining count in a ``Value``, nothing else.
    It says what the sale left (``tally``); writing the db is the base class's."""

    count: Any
    tickets: int

    def read(self, record: Recorder) -> Seen:
        del record
        remaining = self.count.value
        seat = self.tickets - remaining + 1 if remaining > 0 else 0
        return Seen(self.tickets, remaining, seat)

    def sell(self, seen: Seen, sale: dbfile.Sale) -> None:
        del sale
        self.count.value = seen.remaining - 1

    def tally(self, initial: dbfile.TicketDB, history: Sequence[Event]) -> Tally:
        del initial
        return Tally(self.count.get_obj().value, sales_written(history))


def _sell(tools: GuardedTools, buyers: int, timeout: float = 30.0) -> list[Event]:
    """A real sale: each buyer in a process of its own; the history they record."""
    ctx = multiprocessing.get_context("fork")
    channel, gate = EventChannel(ctx), ctx.Event()
    processes = [
        ctx.Process(
            target=run_buyer,
            args=(BuyerSpec(n, 0.001, timeout), tools, channel.sender, gate, Pacer()),
        )
        for n in range(1, buyers + 1)
    ]
    history: list[Event] = []
    try:
        for process in processes:
            process.start()
        gate.set()
        while sum(e.step in OUTCOMES for e in history) < buyers:
            history.append(channel.get(timeout))
    finally:
        for process in processes:
            process.join(timeout)
        channel.close()
    assert [p.exitcode for p in processes] == [0] * buyers
    return sorted(history, key=lambda e: e.t)


def test_a_new_store_is_a_module_and_a_registry_entry(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(STORES, "counter", _CounterStore)
    initial = dbfile.TicketDB(
        tickets=5,
        remaining=3,
        ledger=(dbfile.Sale("walk-in", 1, 1, 1.0), dbfile.Sale("walk-in", 2, 1, 2.0)),
        event="Opera",
        extra=(("venue", '"the old hall"'),),
    )
    dbfile.write_atomic(db_path, initial)
    ctx = multiprocessing.get_context("fork")
    store = STORES["counter"](ctx.Value("i", initial.remaining), initial.tickets)  # type: ignore[call-arg]
    history = _sell(GuardedTools(store, LockGuard(ctx.Lock())), buyers=5)

    store.write_back(str(db_path), initial, history)

    final = dbfile.load(db_path)
    sold = {e.name for e in history if e.step is Step.OK}
    assert len(sold) == 3
    assert final.remaining == 0
    assert final.ledger[:2] == initial.ledger  # the sales made before are kept
    assert {sale.buyer for sale in final.ledger[2:]} == sold
    assert sorted(sale.seat for sale in final.ledger[2:]) == [3, 4, 5]
    assert (final.event, final.extra) == (initial.event, initial.extra)
    # A buyer that found none left went through the guard the same way.
    failed = next(e.buyer for e in history if e.step is Step.FAIL)
    steps = [e.step for e in history if e.buyer == failed]
    assert steps == [
        Step.READY,
        Step.CHECK,
        Step.WAIT,
        Step.ENTER,
        Step.READ,
        Step.LEAVE,
        Step.FAIL,
    ]


class _Count:
    """A count in this process alone: a rehearsal's scratch state."""

    def __init__(self, value: int) -> None:
        self.value = value


@dataclass(frozen=True)
class _RehearsingStore(_CounterStore):
    """The counter store, with a rehearsal on a count of its own (``broken``: a
    rehearsal that cannot be made); ``rehearsed`` counts the rehearsals that sold."""

    rehearsed: Any
    broken: bool = False

    @contextlib.contextmanager
    def rehearsal(self) -> Iterator[Store | None]:
        if self.broken:
            raise RuntimeError("no scratch state today")
        scratch = replace(self, count=_Count(1), tickets=1)
        yield scratch
        if scratch.count.value == 0:
            with self.rehearsed.get_lock():
                self.rehearsed.value += 1


@pytest.mark.parametrize("broken", [False, True])
def test_a_stores_rehearsal_is_a_whole_purchase_that_leaves_the_sale_alone(
    broken: bool,
) -> None:
    """Each buyer buys once on the store's rehearsal before the sale opens; the sale's
    count and history are as if it had not, and a rehearsal that fails loses nobody."""
    ctx = multiprocessing.get_context("fork")
    store = _RehearsingStore(ctx.Value("i", 3), 3, ctx.Value("i", 0), broken)
    history = _sell(GuardedTools(store, LockGuard(ctx.Lock())), buyers=5)
    assert store.rehearsed.value == (0 if broken else 5)
    assert store.count.value == 0
    assert sum(e.step is Step.OK for e in history) == 3
    assert sum(e.step is Step.FAIL for e in history) == 2
    assert not [e for e in history if e.step is Step.ERROR]
    for buyer in range(1, 6):  # one pass of the steps each, the rehearsal's unrecorded
        steps = [e.step for e in history if e.buyer == buyer]
        assert steps[:2] == [Step.READY, Step.CHECK]
        assert steps.count(Step.READ) == 1


def test_a_store_that_writes_with_every_sale_has_nothing_to_write_back(db_path: Path) -> None:
    dbfile.write_atomic(db_path, dbfile.TicketDB.fresh(2))
    store = STORES["file"](str(db_path))  # type: ignore[call-arg]
    before = db_path.read_bytes()
    store.write_back(str(db_path), dbfile.TicketDB.fresh(7), [])
    assert db_path.read_bytes() == before


class _ThreadGuard(Guard):
    """A guard written for this test: only how to take and let go of its lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def _acquire(self, timeout: float) -> bool:
        return self.lock.acquire(timeout=timeout)

    def _release(self) -> None:
        self.lock.release()


def _recorder(guard: _ThreadGuard, seen: list[tuple[Step, bool]]) -> Recorder:
    def record(step: Step, **_: object) -> None:
        seen.append((step, guard.lock.locked()))

    return record


def test_a_guard_that_only_takes_and_releases_gets_the_recorded_protocol() -> None:
    guard = _ThreadGuard()
    seen: list[tuple[Step, bool]] = []
    with guard.hold(_recorder(guard, seen), 1.0):
        assert guard.lock.locked()
        seen.append((Step.READ, guard.lock.locked()))
    # Waiting is recorded before the lock is taken, the leave while it is still held.
    assert seen == [(Step.WAIT, False), (Step.ENTER, True), (Step.READ, True), (Step.LEAVE, True)]
    assert not guard.lock.locked()


def test_a_guard_that_cannot_take_its_lock_in_time_times_out_by_its_name() -> None:
    guard = _ThreadGuard()
    seen: list[tuple[Step, bool]] = []
    guard.lock.acquire()
    try:
        with pytest.raises(GuardTimeout) as caught, guard.hold(_recorder(guard, seen), 0.01):
            pytest.fail("ran without the lock")
    finally:
        guard.lock.release()
    assert str(caught.value) == "gave up waiting for the _ThreadGuard after 0.01 s"
    assert seen == [(Step.WAIT, True)]  # no entry, no leave: it never held the lock


def test_a_guard_lets_go_even_when_its_entry_cannot_be_recorded() -> None:
    guard = _ThreadGuard()

    def record(step: Step, **_: object) -> None:
        if step is Step.ENTER:
            raise BrokenPipeError("the parent is gone")

    with pytest.raises(BrokenPipeError), guard.hold(record, 1.0):
        pytest.fail("ran though its entry was not recorded")
    assert not guard.lock.locked()
    with guard.hold(lambda *a, **k: None, 0.01):  # free for the next buyer
        assert guard.lock.locked()
