"""Holding Ctrl-C while a process starts: nothing arrives inside the block, everything
after it, whichever thread the kernel hands the signal to."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from ticketsim.core._interrupts import held


def _inside_then_after(other_thread: bool) -> list[str]:
    """Send SIGINT inside a held block, keep running there a while, and say where the
    KeyboardInterrupt came: an idle thread is alive when ``other_thread``."""
    where: list[str] = []
    stop = threading.Event()
    idle = threading.Thread(target=stop.wait, daemon=True)
    if other_thread:
        idle.start()
    try:
        with held():
            os.kill(os.getpid(), signal.SIGINT)
            deadline = time.monotonic() + 0.2
            while time.monotonic() < deadline:
                pass  # bytecodes run: a pending handler would run here
            where.append("the block ended")
        time.sleep(0.05)
        where.append("no interrupt at all")
    except KeyboardInterrupt:
        where.append("interrupted")
    finally:
        stop.set()
        if other_thread:
            idle.join(5)
    return where


@pytest.mark.parametrize("other_thread", [False, True], ids=["alone", "with-a-thread"])
def test_an_interrupt_in_a_held_block_comes_after_it(other_thread: bool) -> None:
    assert _inside_then_after(other_thread) == ["the block ended", "interrupted"]


def test_the_handlers_are_the_same_after_the_block() -> None:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    with held():
        pass
    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_one_held_block_entered_again_holds_each_time() -> None:
    """A loop that starts many processes enters one ``held()`` for each of them."""
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    holding = held()
    for _ in range(2):
        where: list[str] = []
        try:
            with holding:
                os.kill(os.getpid(), signal.SIGINT)
                deadline = time.monotonic() + 0.05
                while time.monotonic() < deadline:
                    pass  # bytecodes run: a pending handler would run here
                where.append("the block ended")
        except KeyboardInterrupt:
            where.append("interrupted")
        assert where == ["the block ended", "interrupted"]
        assert {signum: signal.getsignal(signum) for signum in before} == before
