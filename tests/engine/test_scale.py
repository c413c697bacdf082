"""Big sales: a bounded crew of processes, light buyer processes, the event pipe under load.

Speed is measured by ``benchmarks/performance.py``, never asserted here: these tests
check what a big sale does, not how fast.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import pytest
from _probe import ImportProbe
from hypothesis import given
from hypothesis import strategies as st
from sales import assert_safe_and_live, descendants, sale

from ticketsim.analysis.report import build_report
from ticketsim.core.events import Event, Step
from ticketsim.core.settings import PROCESS_PER_BUYER_MAX, RunConfig, auto_workers
from ticketsim.engine.crews import POOL_BATCH_MAX, pool_batch
from ticketsim.sale.channel import EventChannel

if TYPE_CHECKING:
    from pathlib import Path

    from ticketsim.sale.buyer import Pacer


def test_a_sale_past_the_lesson_size_runs_on_a_bounded_crew(db_path: Path) -> None:
    buyers = PROCESS_PER_BUYER_MAX + 100
    alive: list[int] = []
    # Earlier tests may have left a forkserver or a resource tracker running: not ours.
    before = set(descendants(os.getpid()))

    def count(event: Event) -> None:
        if event.step is Step.CHECK and event.buyer % 25 == 0:
            alive.append(len(set(descendants(os.getpid())) - before))

    result = sale(
        db_path, buyers=buyers, tickets=buyers // 2, strategy="lock", delay=0.0, watch=count
    )
    assert_safe_and_live(result)
    report = build_report(result)
    assert report.pool == auto_workers()
    assert f"{auto_workers()} worker processes" in report.crew
    assert len({e.pid for e in result.history if e.step is Step.READY}) <= auto_workers()
    # The workers, plus at most the resource tracker: never a process per buyer.
    assert alive
    assert max(alive) <= auto_workers() + 1


def test_the_lesson_sizes_keep_one_process_per_buyer(db_path: Path) -> None:
    assert RunConfig(buyers=PROCESS_PER_BUYER_MAX).workers is None
    assert RunConfig(buyers=PROCESS_PER_BUYER_MAX + 1).workers == auto_workers()
    assert RunConfig(buyers=PROCESS_PER_BUYER_MAX + 1, pool=3).workers == 3
    result = sale(db_path, buyers=12, tickets=5, strategy="lock", delay=0.0)
    assert len({e.pid for e in result.history if e.step is Step.READY}) == 12
    assert build_report(result).crew == "one process per buyer"


@given(buyers=st.integers(1, 5000), workers=st.integers(1, 16))
def test_pool_tasks_are_one_buyer_in_small_sales_and_batches_in_big_ones(
    buyers: int, workers: int
) -> None:
    batch = pool_batch(buyers, workers)
    assert 1 <= batch <= POOL_BATCH_MAX
    if buyers < 8 * workers:
        assert batch == 1  # the lesson of --pool: each buyer a task
    tasks = -(-buyers // batch)
    assert tasks >= min(buyers, 4 * workers)  # every worker has work to the end


def test_a_big_sale_in_batches_sells_each_ticket_once_on_a_pool_of_three(db_path: Path) -> None:
    result = sale(db_path, buyers=400, tickets=300, strategy="semaphore", pool=3)
    assert_safe_and_live(result)
    assert len({e.pid for e in result.history if e.step is Step.READY}) == 3


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
@pytest.mark.parametrize("strategy", ["filelock", "office", "value"])
def test_a_started_buyer_imports_only_the_standard_library_and_filelock(
    db_path: Path, method: str, strategy: str
) -> None:
    def probe(ctx: object, config: RunConfig) -> Pacer:
        del ctx, config
        return ImportProbe()

    result = sale(
        db_path,
        buyers=3,
        tickets=2,
        strategy=strategy,
        delay=0.0,
        start_method=method,
        pacer=probe,
    )
    errors = [e.note for e in result.history if e.step is Step.ERROR]
    assert errors == []
    assert_safe_and_live(result)


def test_the_event_pipe_delivers_a_flood_whole_and_in_order() -> None:
    import multiprocessing

    channel = EventChannel(multiprocessing.get_context("fork"))
    sent = [Event(n, Step.CHECK, float(n), 4242, n, note="x" * (n % 300)) for n in range(20_000)]

    def flood() -> None:  # more than a pipe holds: the reader must keep up as it goes
        for event in sent:
            channel.sender.put(event)

    writer = threading.Thread(target=flood)
    writer.start()
    received = [channel.get(timeout=10) for _ in sent]
    writer.join(10)
    channel.close()
    assert received == sent
