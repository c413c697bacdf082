"""A server that is stopped, not gone, never answers: ticketsim's own statements give up
on it after their bound (``ticketsim.sale._answer``), with exit 4 and one line, where
they waited forever. Real servers of the test's own, stopped with ``SIGSTOP``."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
import redis
from sales import descendants
from typer.testing import CliRunner

from ticketsim.cli import app, errors
from ticketsim.core.exits import ExitCode
from ticketsim.core.names import StoreKind
from ticketsim.engine.hosts import Place, open_sale
from ticketsim.errors import ServerUnavailable
from ticketsim.sale import _answer
from ticketsim.sale.stores import postgres as pgstore
from ticketsim.servers.postgres import PostgresServer
from ticketsim.servers.redis import RedisServer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ticketsim.servers.base import Server

#: The bound the tests give ticketsim's statements, in place of the real 30 s.
BOUND_S = 1.0
STRATEGIES = {StoreKind.POSTGRES: "pg-update", StoreKind.REDIS: "redis-lua"}


def _signal(server: Server[Any], sent: signal.Signals) -> None:
    """``sent`` to the server's program and every process it started (PostgreSQL's each
    make a session of their own, so its process group is not enough)."""
    assert server.pid is not None
    for pid in [server.pid, *descendants(server.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sent)


@contextlib.contextmanager
def _stopped(server: Server[Any]) -> Iterator[None]:
    """Every process of ``server`` stopped, and let go on again after the block."""
    _signal(server, signal.SIGSTOP)
    try:
        yield
    finally:
        _signal(server, signal.SIGCONT)


@pytest.fixture(params=list(STRATEGIES), ids=lambda kind: kind.value)
def server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Place]:
    """A server of this test's own, with a sale open on it that a host has joined."""
    kind: StoreKind = request.param
    started: Server[Any] = PostgresServer() if kind is StoreKind.POSTGRES else RedisServer()
    with started as address:
        place = Place(kind, address.url)
        open_sale(place, STRATEGIES[kind], 3, delay=0.0, seed=1, timeout=5.0, replace=True)
        board = place.board()
        try:
            board.join("host-1", 1)  # which never reports: a check waits for it
        finally:
            board.close()
        monkeypatch.setattr(_answer, "ANSWER_S", BOUND_S)
        request.node.server = started
        yield place


def _clients(place: Place) -> int:
    """How many connections the server at ``place`` has, besides the one that asks."""
    if place.kind is StoreKind.POSTGRES:
        with psycopg.connect(place.where, autocommit=True) as db:
            row = db.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            ).fetchone()
            return int(row[0]) if row else 0
    client = redis.Redis.from_url(place.where)
    try:
        return len(client.client_list()) - 1
    finally:
        client.close()


def _stop_once_connected(server: Server[Any], place: Place) -> threading.Thread:
    """Stop ``server`` once a client of ticketsim's is connected to it (within 30 s)."""

    def stop() -> None:
        deadline = time.monotonic() + 30
        while _clients(place) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        _signal(server, signal.SIGSTOP)

    thread = threading.Thread(target=stop, daemon=True)
    thread.start()
    return thread


def test_a_board_whose_server_stopped_gives_up_on_it(
    server: Place, request: pytest.FixtureRequest
) -> None:
    board = server.board()
    try:
        assert board.card() is not None  # connected
        with _stopped(request.node.server):
            began = time.monotonic()
            with pytest.raises(ServerUnavailable) as caught:
                board.hosts()
            assert time.monotonic() - began < BOUND_S + 5
        assert "gave no answer within 1 s" in str(caught.value)
    finally:
        board.close()


def test_sale_check_on_a_server_that_stops_ends_in_one_line(
    server: Place, request: pytest.FixtureRequest
) -> None:
    stopper = _stop_once_connected(request.node.server, server)
    try:
        began = time.monotonic()
        result = CliRunner().invoke(
            app, ["sale", "check", "--wait", "60", "--store", server.where], prog_name="ticketsim"
        )
        took = time.monotonic() - began
    finally:
        stopper.join(35)
        _signal(request.node.server, signal.SIGCONT)
    assert result.exit_code == ExitCode.IO_ERROR, result.output
    said = result.stderr.strip().splitlines()
    assert len(said) == 1, result.stderr
    assert "no answer within 1 s" in said[0], said[0]
    assert took < 30, took  # not the 60 s it would wait for the host, nor forever


@contextlib.contextmanager
def _alarm_put_back() -> Iterator[None]:
    """The alarm as it was before the block (pytest-timeout's), put back after it."""
    outer = signal.getitimer(signal.ITIMER_REAL)
    began = time.monotonic()
    try:
        yield
    finally:
        left = outer[0] - (time.monotonic() - began)
        signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3) if outer[0] > 0 else 0, outer[1])


def test_the_bound_puts_back_a_later_alarm_and_leaves_a_sooner_one() -> None:
    # pytest-timeout's alarm, say: it must still ring after a bounded statement.
    with _alarm_put_back():
        signal.setitimer(signal.ITIMER_REAL, 100)
        _answer.answer(5, lambda: None)
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 99 < left <= 100
        signal.setitimer(signal.ITIMER_REAL, 2)
        _answer.answer(5, lambda: None)
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 1 < left <= 2


def _spin(until: float) -> None:
    while time.monotonic() < until:
        pass


def test_an_alarm_as_the_block_ends_never_escapes_nor_loses_the_earlier_one() -> None:
    """Bounds that run out as their blocks end, thousands of times: a ring on the way
    out of the block escaped as a BaseException and left its handler in place, and the
    earlier alarm was lost (a generator's exit is not one step)."""
    outcomes = {"ended": 0, "timed out": 0}
    with _alarm_put_back():
        set_at = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 1000)
        before = signal.getsignal(signal.SIGALRM)
        for n in range(5000):
            # Each ends within a tenth of the bound of its alarm, either side.
            end = time.monotonic() + 0.0005 * (0.9 + (n % 20) / 100)
            try:
                _answer.answer(0.0005, functools.partial(_spin, end))
                outcomes["ended"] += 1
            except TimeoutError:
                outcomes["timed out"] += 1
            assert signal.getsignal(signal.SIGALRM) is before, n
        # Still the alarm set before, running since (however slowly the loop ran).
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        assert abs(left - (1000 - (time.monotonic() - set_at))) < 1.0, left
    assert all(outcomes.values()), outcomes  # both ends were reached: the race was run


def test_ticketsims_own_statement_on_a_stopped_server_is_exit_4_and_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The store's load and snapshot (show, reset, a sale's db set-up) raised psycopg's
    own error there, an internal error (exit 70); in a transaction, psycopg then tried
    to roll back and warned on stderr."""
    started = PostgresServer()
    with started as address:
        db = pgstore.connect(address.url, answer_s=BOUND_S)
        try:
            db.execute("SELECT 1")
            with _stopped(started):
                began = time.monotonic()
                with pytest.raises(ServerUnavailable) as caught, db.transaction():
                    db.execute("SELECT 1")
                assert time.monotonic() - began < BOUND_S + 5
        finally:
            db.close()
    assert errors.outcome(caught.value)[1] == ExitCode.IO_ERROR
    assert "the server gave no answer within 1 s" in str(caught.value)
    assert str(caught.value).startswith("postgresql://")  # which server: its URL
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")] == []


def test_a_wait_that_outlives_the_bound_raises_timeout_error() -> None:
    before = signal.getitimer(signal.ITIMER_REAL)[0]  # pytest-timeout's, if it runs
    began = time.monotonic()
    with pytest.raises(TimeoutError, match=r"no answer within 0\.2 s"):
        _answer.answer(0.2, functools.partial(time.sleep, 10))
    assert time.monotonic() - began < 5
    left = signal.getitimer(signal.ITIMER_REAL)[0]
    assert left == 0 if before == 0 else before - 5 < left <= before
