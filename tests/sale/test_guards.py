"""Guards on their own, outside a sale: what each process holds, and for how long."""

from __future__ import annotations

import dataclasses
import multiprocessing
import pickle
from typing import TYPE_CHECKING, Any

import pytest

from ticketsim.core.events import Step
from ticketsim.errors import GuardTimeout
from ticketsim.sale.guards import FileLockGuard, Guard, LockGuard

if TYPE_CHECKING:
    from collections.abc import Callable
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


class _ParentGone(BrokenPipeError):
    """What recording an event raises once the parent has closed its end."""


def _fails_on(step: Step) -> Callable[..., None]:
    def record(recorded: Step, **kwargs: Any) -> None:
        del kwargs
        if recorded is step:
            raise _ParentGone(f"cannot record {recorded.value}")

    return record


def _guards(tmp_path: Path) -> list[Guard]:
    return [
        LockGuard(multiprocessing.get_context("fork").Lock()),
        FileLockGuard(str(tmp_path / "tickets.json.lock")),
    ]


def _free(guard: Guard) -> bool:
    """Whether another process could take ``guard`` now (a fresh pickled copy has a
    file lock of its own; a multiprocessing lock is tried without waiting)."""
    if isinstance(guard, LockGuard):
        if not guard.lock.acquire(False):
            return False
        guard.lock.release()
        return True
    try:
        with pickle.loads(pickle.dumps(guard)).hold(_nothing, 0.05):
            return True
    except GuardTimeout:
        return False


@pytest.mark.parametrize("step", [Step.ENTER, Step.LEAVE])
@pytest.mark.parametrize("kind", ["lock", "filelock"])
def test_a_hold_whose_event_cannot_be_recorded_still_lets_go(
    tmp_path: Path, kind: str, step: Step
) -> None:
    """A buyer whose parent has gone fails; its guard must not stay held, least of all
    a file lock object the process keeps for its next buyer."""
    guard = _guards(tmp_path)[kind == "filelock"]
    guard.prepare()
    with pytest.raises(_ParentGone), guard.hold(_fails_on(step), 1.0):
        pass
    assert _free(guard)
    with guard.hold(_nothing, 1.0):  # the next buyer of this process
        assert not _free(guard)
    assert _free(guard)


def test_a_file_lock_guard_follows_its_path(tmp_path: Path) -> None:
    guard = FileLockGuard(str(tmp_path / "a.lock"))
    guard.prepare()
    moved = dataclasses.replace(guard, path=str(tmp_path / "b.lock"))
    with moved.hold(_nothing, 1.0):
        assert (tmp_path / "b.lock").exists()
        assert _free(guard)  # a.lock is not the one held
