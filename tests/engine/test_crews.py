"""Ending a crew never waits for ever, whatever state the pool's queues are in."""

from __future__ import annotations

import multiprocessing
import time
from typing import TYPE_CHECKING

from ticketsim.engine import crews
from ticketsim.engine.crews import PoolCrew

if TYPE_CHECKING:
    import pytest


def test_a_pool_whose_queue_lock_is_never_let_go_is_still_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A worker SIGTERMed while it holds a queue's lock leaves ``Pool.terminate`` waiting
    for that lock for ever. Held here by the test itself, it is never let go either:
    ending the crew still returns, within its bounds, and no worker is left."""
    monkeypatch.setattr(crews, "_JOIN_S", 0.5)  # the bound, shortened for the test
    ctx = multiprocessing.get_context("fork")
    crew = PoolCrew(ctx, 2)
    crew.pool = ctx.Pool(2)
    workers = list(crew.pool._pool)
    lock = crew.pool._outqueue._wlock
    lock.acquire()
    try:
        began = time.monotonic()
        assert crew.end(at_once=True) == set()
        assert time.monotonic() - began < 10
        assert all(not worker.is_alive() for worker in workers)
    finally:
        lock.release()  # the pool's own thread, still waiting, can now finish
