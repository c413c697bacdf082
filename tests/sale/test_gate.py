"""The start gate: shut until the parent opens it, then open for every buyer at once."""

from __future__ import annotations

import multiprocessing
import os
from typing import TYPE_CHECKING

import pytest

from ticketsim.sale.gate import PipeGate, StartGate

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


def _wait_and_say(gate: PipeGate, said: Connection) -> None:
    os.write(said.fileno(), b"y" if gate.wait(10) else b"n")


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_every_waiter_goes_once_the_gate_opens(method: str) -> None:
    ctx = multiprocessing.get_context(method)
    start = StartGate(ctx)
    reader, writer = ctx.Pipe(duplex=False)
    # typeshed's BaseContext lacks Process; every concrete context has it.
    waiters = [
        ctx.Process(target=_wait_and_say, args=(start.gate, writer))  # type: ignore[attr-defined]
        for _ in range(3)
    ]
    try:
        for waiter in waiters:
            waiter.start()
        assert not reader.poll(0.2)  # nobody goes before the gate opens
        start.set()
        start.set()  # opening it again changes nothing
        said = b"".join(os.read(reader.fileno(), 1) for _ in waiters)
        assert said == b"yyy"
        for waiter in waiters:
            waiter.join(10)
            assert waiter.exitcode == 0
    finally:
        start.close()
        reader.close()
        writer.close()


def test_a_shut_gate_times_out_and_an_open_one_stays_open() -> None:
    start = StartGate(multiprocessing.get_context("fork"))
    try:
        assert not start.gate.wait(0.01)
        assert not start.is_set()
        start.set()
        assert start.is_set()
        assert start.gate.wait(0)  # a pool worker's later buyers go straight through
        assert start.gate.wait(None)
    finally:
        start.close()


def test_a_gate_whose_opener_is_gone_never_opens() -> None:
    start = StartGate(multiprocessing.get_context("fork"))
    try:
        start._writer.close()  # as a spawned buyer sees it when ticketsim died
        start._over_writer.close()
        assert not start.gate.wait(5)
        assert not start.gate.wait_over(5)
    finally:
        start.close()


def test_the_end_of_the_sale_is_told_apart_from_its_opening() -> None:
    start = StartGate(multiprocessing.get_context("fork"))
    try:
        start.set()
        assert not start.gate.wait_over(0.01)  # open is not over
        start.end()
        start.end()
        assert start.gate.wait_over(0)
    finally:
        start.close()
