"""Guards on their own, outside a sale: what each process holds, and for how long."""

from __future__ import annotations

import multiprocessing
import pickle
from typing import TYPE_CHECKING, Any

import pytest

from ticketsim.errors import GuardTimeout
from ticketsim.guards import FileLockGuard

if TYPE_CHECKING:
    from pathlib import Path

#: What a child reports back: it held the lock, or timed out waiting for it.
HELD, TIMED_OUT = 1, 2


def _nothing(*args: Any, **kwargs: Any) -> None:
    del args, kwargs


def _try_to_hold(guard: FileLockGuard, result: Any) -> None:
    try:
        with guard.hold(_nothing, 0.2):
            result.value = HELD
    except GuardTimeout:
        result.value = TIMED_OUT


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_file_lock_guard_used_by_its_parent_is_a_lock_of_its_own_in_a_child(
    tmp_path: Path, start_method: str
) -> None:
    """The parent's lock object is reused from buyer to buyer, never across a fork:
    filelock refuses an inherited one, and a child that took it would not exclude."""
    ctx: Any = multiprocessing.get_context(start_method)  # Process: on every concrete context
    guard = FileLockGuard(str(tmp_path / "tickets.json.lock"))
    guard.prepare()
    for expected in (TIMED_OUT, HELD):
        result = ctx.Value("i", 0)
        child = ctx.Process(target=_try_to_hold, args=(guard, result))
        if expected == TIMED_OUT:
            with guard.hold(_nothing, 1.0):
                child.start()
                child.join(30)
        else:
            child.start()
            child.join(30)
        assert child.exitcode == 0
        assert result.value == expected


def test_a_pickled_file_lock_guard_arrives_without_its_lock(tmp_path: Path) -> None:
    guard = FileLockGuard(str(tmp_path / "tickets.json.lock"))
    guard.prepare()
    copy = pickle.loads(pickle.dumps(guard))
    assert copy == guard
    # A lock of its own: it must wait for the original's holder, not share its hold.
    with guard.hold(_nothing, 1.0), pytest.raises(GuardTimeout), copy.hold(_nothing, 0.05):
        pass
