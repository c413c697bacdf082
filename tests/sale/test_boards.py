"""Boards: a sale of several hosts kept in its store (PostgreSQL, Redis, or a folder for
the db file's strategies). Real servers only: the session's PostgreSQL and Redis."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import pickle
import re
import subprocess
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sales import SERVERS
from typer.testing import CliRunner

from ticketsim.cli import app
from ticketsim.core.boards import HostRow, SaleCard
from ticketsim.core.events import Event, Step
from ticketsim.core.exits import ExitCode
from ticketsim.core.names import StoreKind
from ticketsim.core.result import Hosts
from ticketsim.core.settings import RunConfig
from ticketsim.engine import hosts as engine_hosts
from ticketsim.engine.hosts import Place, open_sale
from ticketsim.errors import ServerUnavailable, StoreError
from ticketsim.sale.boards import board_for
from ticketsim.sale.boards.base import Board, HostChannel, UnreadableBoard
from ticketsim.sale.boards.postgres import PostgresBoard
from ticketsim.sale.stores import postgres as pgstore
from ticketsim.sale.stores import redis as redisstore
from ticketsim.sale.stores.database import ProcessConnection

if TYPE_CHECKING:
    from collections.abc import Iterator
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier
    from pathlib import Path

#: Each board's store, and a strategy that sells from it.
STRATEGIES = {
    StoreKind.POSTGRES: "pg-update",
    StoreKind.REDIS: "redis-lua",
    StoreKind.FILE: "filelock",
}
KINDS = pytest.mark.parametrize("kind", list(STRATEGIES), ids=lambda kind: kind.value)
SERVER_KINDS = pytest.mark.parametrize(
    "kind", [StoreKind.POSTGRES, StoreKind.REDIS], ids=lambda kind: kind.value
)
#: How far a local server's clock may be from this machine's.
NEAR_S = 5.0


def _place(kind: StoreKind, tmp_path: Path) -> Place:
    return Place(kind, str(tmp_path) if kind is StoreKind.FILE else SERVERS[kind])


def _open(at: Place, tickets: int = 5) -> SaleCard:
    return open_sale(
        at, STRATEGIES[at.kind], tickets, delay=0.0, seed=1, timeout=10.0, replace=True
    )


@pytest.fixture
def place(kind: StoreKind, tmp_path: Path) -> Place:
    return _place(kind, tmp_path)


@pytest.fixture
def card(place: Place) -> SaleCard:
    """A sale just opened at ``place``."""
    return _open(place)


@pytest.fixture
def board(place: Place, card: SaleCard) -> Iterator[Board]:
    """The board of the sale ``card``, closed after the test."""
    del card
    made = place.board()
    yield made
    made.close()


def _events(host: str, first: int = 1) -> list[Event]:
    """Events as a host records them: every field a board must keep, set somewhere."""
    return [
        Event(first, Step.READY, t=0.0, pid=11, host=host, host_t=123.0),
        Event(first, Step.CHECK, t=0.0, pid=11, value=5, host=host, host_t=123.5),
        Event(first, Step.READ, t=0.0, pid=11, value=5, host=host, host_t=124.0),
        Event(first, Step.WRITE, t=0.0, pid=11, value=4, seat=1, host=host, host_t=124.25),
        Event(first, Step.OK, t=0.0, pid=11, seat=1, note="sold", host=host, host_t=125.0),
        Event(
            first + 1,
            Step.ERROR,
            t=0.0,
            pid=12,
            note="gave up: the lock",
            error="GuardTimeout",
            host=host,
            host_t=126.0,
        ),
    ]


def _unstamped(event: Event) -> Event:
    return dataclasses.replace(event, t=0.0)


# 1. The card.


@KINDS
def test_card_is_the_sale_opened_and_a_new_sale_replaces_it(place: Place) -> None:
    card = _open(place, tickets=5)
    board = place.board()
    try:
        got = board.card()
        assert got == card
        assert got is not None
        assert (got.id, got.strategy) == (card.id, STRATEGIES[place.kind])
        assert got.initial == card.initial
        assert got.initial.remaining == 5
        assert (got.delay, got.seed, got.timeout) == (0.0, 1, 10.0)
        board.join("a", 2)
        board.start()
        board.record(_events("a")[:2])

        again = _open(place, tickets=3)
        assert again.id != card.id
        got = board.card()
        assert got == again
        assert got is not None
        assert got.initial.remaining == 3
        assert board.hosts() == ()
        assert board.history() == []
        assert board.started() is None
        assert board.join("b", 1) == 1  # numbering starts again
    finally:
        board.close()


# 2. Hosts.


@KINDS
def test_join_numbers_buyers_without_overlap_and_update_is_read_back(board: Board) -> None:
    assert board.hosts() == ()
    assert board.join("a", 3) == 1
    assert board.join("b", 2) == 4
    assert board.hosts() == (HostRow("a", 1, 3), HostRow("b", 4, 2))
    assert [list(row.buyers) for row in board.hosts()] == [[1, 2, 3], [4, 5]]

    board.update(HostRow("a", 1, 3, ready=3, done=True))
    assert board.hosts() == (HostRow("a", 1, 3, ready=3, done=True), HostRow("b", 4, 2))
    board.update(HostRow("b", 4, 2, ready=1))
    assert board.hosts() == (HostRow("a", 1, 3, 3, True), HostRow("b", 4, 2, 1, False))


# 3. The gate.


@KINDS
def test_start_is_idempotent(board: Board, kind: StoreKind) -> None:
    assert board.started() is None
    first = board.start()
    assert board.started() == first
    time.sleep(0.01)
    assert board.start() == first
    assert board.started() == first
    assert abs(first - time.time()) < NEAR_S, (kind, first)


# 4. The history.


@KINDS
def test_history_is_in_the_order_recorded_stamped_by_the_stores_clock(board: Board) -> None:
    events = _events("h1") + _events("h2", first=3)
    before = time.time()
    board.record(events[:1])
    board.record(events[1:2])
    board.record(events[2:7])  # a batch
    board.record(events[7:8])
    board.record(events[8:])  # another
    after = time.time()

    history = board.history()
    assert [_unstamped(e) for e in history] == events
    stamps = [e.t for e in history]
    assert stamps == sorted(stamps)
    assert all(before - NEAR_S < t < after + NEAR_S for t in stamps), (before, stamps)
    assert board.history() == history  # reading it leaves it as it is


@KINDS
def test_an_empty_batch_records_nothing(board: Board) -> None:
    board.record([])
    assert board.history() == []


# 5. Hosts that join at once.


def _join_at_gate(
    kind: str, where: str, hosts: list[tuple[str, int]], gate: Barrier, out: Queue[Any]
) -> None:
    """A process of its own, with its own board and connection: joins each of ``hosts``
    once every process is at the gate, round after round."""
    board = board_for(kind, where)
    try:
        board.card()  # connected before the gate: the joins race, not the connects
        for host, count in hosts:
            gate.wait(30)
            out.put((host, board.join(host, count)))
    except BaseException as exc:
        out.put(("error", repr(exc)))
        raise
    finally:
        board.close()


#: Processes that join at once, and how many rounds each joins in.
PROCESSES, ROUNDS = 4, 5


@KINDS
def test_hosts_that_join_at_once_get_ranges_that_never_overlap(board: Board, place: Place) -> None:
    ctx = multiprocessing.get_context("spawn")
    plan = [[(f"p{p}-r{r}", 1 + (p * 3 + r) % 7) for r in range(ROUNDS)] for p in range(PROCESSES)]
    counts = {host: count for hosts in plan for host, count in hosts}
    gate, out = ctx.Barrier(PROCESSES), ctx.Queue()
    processes = [
        ctx.Process(target=_join_at_gate, args=(place.kind.value, place.where, hosts, gate, out))
        for hosts in plan
    ]
    for process in processes:
        process.start()
    try:
        firsts: dict[str, Any] = {}
        while len(firsts) < len(counts) and "error" not in firsts:
            host, first = out.get(timeout=60)
            firsts[host] = first
    finally:
        for process in processes:
            process.join(30)
            if process.exitcode is None:
                process.kill()
    assert [process.exitcode for process in processes] == [0] * PROCESSES, firsts

    assert all(isinstance(first, int) for first in firsts.values()), firsts
    numbers = sorted(
        n for host, first in firsts.items() for n in range(first, first + counts[host])
    )
    assert numbers == list(range(1, sum(counts.values()) + 1))
    rows = board.hosts()
    assert {row.name: (row.first, row.count) for row in rows} == {
        host: (firsts[host], count) for host, count in counts.items()
    }
    assert [row.first for row in rows] == sorted(firsts.values())  # in the order they joined


# 6. A store with no sale.


def _with_dbname(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


@pytest.fixture
def empty_pg() -> Iterator[str]:
    """A database of its own on the session's PostgreSQL, with no ``ticketsim`` schema."""
    admin = pgstore.connect(SERVERS[StoreKind.POSTGRES])
    with contextlib.closing(admin):
        admin.execute("DROP DATABASE IF EXISTS boards_empty WITH (FORCE)")
        admin.execute("CREATE DATABASE boards_empty")
        yield _with_dbname(SERVERS[StoreKind.POSTGRES], "boards_empty")
        admin.execute("DROP DATABASE IF EXISTS boards_empty WITH (FORCE)")


@pytest.fixture
def empty_redis() -> Iterator[str]:
    """Redis db number 5 of the session's server, emptied before and after."""
    url = SERVERS[StoreKind.REDIS] + "?db=5"
    client = redisstore.connect(url)
    try:
        client.flushdb()
        yield url
        client.flushdb()
    finally:
        client.close()


def test_a_postgres_board_with_no_sale_says_so(empty_pg: str) -> None:
    board = board_for(StoreKind.POSTGRES.value, empty_pg)
    try:
        for call in (board.card, board.hosts, board.started, board.history):
            with pytest.raises(StoreError, match="holds no sale"):
                call()
        # The connection is still good after the error: the next statement runs.
        with pytest.raises(StoreError, match="holds no sale"):
            board.card()
    finally:
        board.close()


def test_a_redis_board_with_no_sale_has_no_card(empty_redis: str) -> None:
    board = board_for(StoreKind.REDIS.value, empty_redis)
    try:
        assert board.card() is None
        assert board.hosts() == ()
        assert board.started() is None
        assert board.history() == []
    finally:
        board.close()


def test_a_folder_board_with_no_sale_has_no_card(tmp_path: Path) -> None:
    board = board_for(StoreKind.FILE.value, str(tmp_path))
    assert board.card() is None
    assert board.hosts() == ()
    assert board.started() is None
    assert board.history() == []


# 7. A server that is gone.

GONE = {
    StoreKind.POSTGRES: "postgresql://ticketsim@127.0.0.1:1/postgres",
    StoreKind.REDIS: "redis://127.0.0.1:1/0",
}


@SERVER_KINDS
def test_a_board_whose_server_is_gone_raises_server_unavailable(kind: StoreKind) -> None:
    board = board_for(kind.value, GONE[kind])
    event = Event(1, Step.READY, t=0.0, pid=1, host="h", host_t=1.0)
    calls = {
        "card": board.card,
        "join": lambda: board.join("h", 1),
        "update": lambda: board.update(HostRow("h", 1, 1)),
        "hosts": board.hosts,
        "start": board.start,
        "started": board.started,
        "record one": lambda: board.record([event]),
        "record many": lambda: board.record([event, event]),
        "history": board.history,
    }
    try:
        for name, call in calls.items():
            with pytest.raises(ServerUnavailable, match=re.escape("127.0.0.1:1")) as caught:
                call()
            assert isinstance(caught.value, OSError), name
            # Why (libpq's first line), and no tab or line of its second.
            assert "refused" in str(caught.value).lower(), caught.value
            assert not set(str(caught.value)) & {"\t", "\n"}, caught.value
            assert caught.value.__cause__ is None or isinstance(caught.value.__cause__, OSError)
    finally:
        board.close()


@pytest.mark.parametrize("batch", [1, 3], ids=["one", "many"])
def test_a_postgres_board_whose_connection_the_server_ended_raises_server_unavailable(
    batch: int, tmp_path: Path
) -> None:
    """A host cut off mid-sale: the server ended its session. Recording raises
    ``ServerUnavailable`` (one event, or a batch as a host reports late), and the next
    call connects again."""
    place = _place(StoreKind.POSTGRES, tmp_path)
    _open(place)
    board = place.board()
    assert isinstance(board, PostgresBoard)
    admin = pgstore.connect(place.where)
    try:
        board.card()
        pid = board.db.info.backend_pid
        ended = admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,)).fetchone()
        assert ended == (True,)
        events = _events("h")[:batch]
        with pytest.raises(ServerUnavailable):
            board.record(events)
        board.record(events)  # a new connection
        assert [_unstamped(e) for e in board.history()][-batch:] == events
    finally:
        board.close()
        admin.close()


# 8. The host's channel.


class _Local:
    """A host's pipe to its own ``ticketsim buyers``: what it was given."""

    def __init__(self) -> None:
        self.got: list[Event] = []

    def put(self, event: Event) -> None:
        self.got.append(event)


@KINDS
def test_host_channel_sends_the_event_on_and_records_it_with_the_hosts_clock(
    board: Board,
) -> None:
    local = _Local()
    channel = HostChannel(local, board, "h", skew=2.0)
    event = Event(7, Step.READ, t=42.5, pid=99, value=3)
    channel.put(event)
    now = time.time()

    assert local.got == [event]
    assert local.got[0] is event  # unchanged: the host's own view keeps its own time
    (recorded,) = board.history()
    assert recorded.host == "h"
    assert recorded.host_t is not None
    assert abs(recorded.host_t - (now + 2.0)) < 1.0
    assert dataclasses.replace(recorded, t=event.t, host=None, host_t=None) == event

    HostChannel(local, board, "g").put(dataclasses.replace(event, step=Step.WRITE))
    last = board.history()[-1]
    assert last.host == "g"
    assert last.host_t is not None
    assert abs(last.host_t - time.time()) < 1.0


# 9. Pickling.


@KINDS
def test_a_board_pickles_and_its_connection_is_not_shared(
    board: Board, card: SaleCard, kind: StoreKind
) -> None:
    assert board.card() == card  # the original has connected (a server's board)
    clone = pickle.loads(pickle.dumps(board))
    assert clone == board
    assert clone is not board

    connection = getattr(board, "_connection", None)
    if kind is StoreKind.FILE:
        assert connection is None
    else:
        theirs = getattr(clone, "_connection", None)
        assert isinstance(connection, ProcessConnection)
        assert isinstance(theirs, ProcessConnection)
        assert theirs is not connection
        assert theirs.drop() is None  # arrived empty
        assert connection.get(lambda: pytest.fail("the original has one")) is not None

    try:
        assert clone.card() == card
        assert clone.join("a", 2) == 1
        clone.record(_events("a")[:1])
        assert board.hosts() == (HostRow("a", 1, 2),)
        assert [_unstamped(e) for e in board.history()] == _events("a")[:1]
        if kind is not StoreKind.FILE:
            mine = getattr(board, "_connection", None)
            theirs = getattr(clone, "_connection", None)
            assert isinstance(mine, ProcessConnection)
            assert isinstance(theirs, ProcessConnection)
            assert theirs.get(lambda: None) is not mine.get(lambda: None)
        clone.close()
        assert board.card() == card  # closing the clone leaves the original's connection
    finally:
        clone.close()


# 9. What ticketsim did not write, where it keeps a sale.


def _spoil(place: Place, what: str) -> None:
    """Put into the store's sale something no ticketsim writes: ``what`` names where."""
    if place.kind is StoreKind.POSTGRES:
        sql = {
            "card": "UPDATE ticketsim.board SET card = 'nope'",
            "host": "INSERT INTO ticketsim.hosts (name, row)"
            " VALUES ('h', '[1, 1000000000, 0, true]')",
            "history": "INSERT INTO ticketsim.history (event) VALUES ('{}')",
            "gate": "UPDATE ticketsim.board SET started = 'NaN'",
        }[what]
        with contextlib.closing(pgstore.connect(place.where)) as db:
            db.execute(sql)
        return
    b, h, history = redisstore.BOARD, redisstore.HOSTS, redisstore.HISTORY
    spoiled: dict[str, list[tuple[str, ...]]] = {
        "card": [("HSET", b, "card", "[1, 2]")],
        "host": [("HSET", h, "h", "xx")],
        "history": [("XADD", history, "*", "e", "[]")],
        "gate": [("HSET", b, "started", "soon")],
        "gate-inf": [("HSET", b, "started", "inf")],
        "history-type": [("DEL", history), ("SET", history, "hello")],
    }
    client = redisstore.connect(place.where)
    try:
        for command in spoiled[what]:
            client.execute_command(*command)
    finally:
        client.close()


@pytest.mark.parametrize(
    ("kind", "what", "read"),
    [
        (StoreKind.POSTGRES, "card", "card"),
        (StoreKind.POSTGRES, "host", "hosts"),
        (StoreKind.POSTGRES, "history", "history"),
        (StoreKind.POSTGRES, "gate", "started"),
        (StoreKind.REDIS, "card", "card"),
        (StoreKind.REDIS, "host", "hosts"),
        (StoreKind.REDIS, "history", "history"),
        (StoreKind.REDIS, "gate", "started"),
        (StoreKind.REDIS, "gate", "start"),
        (StoreKind.REDIS, "gate-inf", "started"),
        (StoreKind.REDIS, "history-type", "history"),
    ],
    ids=lambda value: getattr(value, "value", value),
)
def test_what_ticketsim_did_not_write_on_a_board_is_refused_in_one_line(
    place: Place, card: SaleCard, what: str, read: str
) -> None:
    """It was an internal error (exit 70) for every command that read it; a host row
    that numbered a billion buyers had ``sale check`` compute for minutes; a gate time of
    nan or inf was taken for one; a history of another type was the server's fault (4);
    and a plain 'sale open' replaced a history or gate time it could not read."""
    _spoil(place, what)
    board = place.board()
    try:
        with pytest.raises(UnreadableBoard, match="ticketsim") as caught:
            getattr(board, read)()
        assert "sale open --replace" in str(caught.value)
        assert "\n" not in str(caught.value)
    finally:
        board.close()
    result = CliRunner().invoke(
        app, ["sale", "check", "--wait", "0", "--store", place.where], prog_name="ticketsim"
    )
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "sale open --replace" in result.stderr
    # What 'sale open' cannot read is not taken for no sale: only '--replace' replaces
    # a sale whose hosts may not have reported, or what ticketsim did not write.
    result = CliRunner().invoke(
        app, ["sale", "open", "--store", place.where, "--strategy", STRATEGIES[place.kind]]
    )
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    result = CliRunner().invoke(
        app,
        ["sale", "open", "--store", place.where, "--strategy", STRATEGIES[place.kind], "--replace"],
    )
    assert result.exit_code == ExitCode.OK, result.output


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("strategy", "zzz", "strategy='zzz'"),
        ("timeout", -1, "timeout=-1"),
        ("id", "x", "id='x'"),
        ("initial", 5, "5 is not text"),
        ("delay", 10**400, "is not a finite number"),
    ],
    ids=["strategy", "timeout", "id", "initial", "delay"],
)
@SERVER_KINDS
def test_a_card_with_values_no_sale_can_have_is_refused(
    place: Place, card: SaleCard, field: str, value: object, said: str
) -> None:
    raw = json.loads(card.to_text())
    raw[field] = value
    text = json.dumps(raw)
    if place.kind is StoreKind.POSTGRES:
        with contextlib.closing(pgstore.connect(place.where)) as db:
            db.execute("UPDATE ticketsim.board SET card = %s", (text,))
    else:
        client = redisstore.connect(place.where)
        try:
            client.hset(redisstore.BOARD, "card", text)
        finally:
            client.close()
    for command in (["sale", "start"], ["sale", "check", "--wait", "0"]):
        result = CliRunner().invoke(app, [*command, "--store", place.where])
        assert result.exit_code == ExitCode.BAD_INPUT, result.output
        assert said in result.stderr, result.stderr
        assert "did not write" in result.stderr


@SERVER_KINDS
def test_a_sale_no_host_joined_has_no_verdict_and_no_invented_buyer(
    place: Place, card: SaleCard
) -> None:
    result = CliRunner().invoke(app, ["sale", "check", "--wait", "0", "--store", place.where])
    assert result.exit_code == ExitCode.STALLED, result.output
    assert result.stdout == ""  # no report, no buyer-1 that never was
    said = result.stderr.strip().splitlines()
    assert len(said) == 1, result.stderr
    assert f"sale {card.id}: no host joined it" in said[0]
    assert "ticketsim buyers" in said[0]


@SERVER_KINDS
def test_the_host_blamed_for_a_gate_never_opened_is_the_one_not_ready(
    place: Place, card: SaleCard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run --hosts`` named host-1 whenever every host had joined, even when host-1's
    buyers were all at the gate and host-2's were not."""
    del card
    board = place.board()
    try:
        for name in ("host-1", "host-2"):
            first = board.join(name, 2)
            board.update(HostRow(name, first, 2, ready=2 if name == "host-1" else 1))
    finally:
        board.close()
    monkeypatch.setattr(engine_hosts, "START_TIMEOUT_S", 0.0)
    agents = {n: subprocess.Popen(["sleep", "30"]) for n in (1, 2)}
    try:
        said = engine_hosts.open_gate(place, agents, RunConfig(timeout=1.0), str(tmp_path))
    finally:
        for agent in agents.values():
            agent.kill()
            agent.wait(10)
    assert said == "host-2 was not ready in time before the sale opened"


@SERVER_KINDS
def test_a_run_whose_sale_another_opened_over_says_so_not_give_sale(
    place: Place, card: SaleCard
) -> None:
    """``run --hosts`` has no ``--sale`` to give: its advice is a store of its own."""
    ours = Hosts(kind="process groups", count=2)
    with pytest.raises(StoreError, match="another program opened a sale there") as caught:
        engine_hosts.check_sale(place, "s-00000000", wait=0.0, hosts=ours)
    assert card.id in str(caught.value)
    assert "--sale" not in str(caught.value)
    with pytest.raises(StoreError, match="give --sale"):
        engine_hosts.check_sale(place, "s-00000000", wait=0.0)


@SERVER_KINDS
def test_a_run_whose_hosts_never_joined_keeps_its_own_reason(place: Place, card: SaleCard) -> None:
    """``run --hosts`` knows why no host joined (its host's program ended, say): the
    check must not replace that with "join it with ticketsim buyers"."""
    ours = Hosts(kind="process groups", count=2)
    result = engine_hosts.check_sale(place, card.id, wait=0.0, hosts=ours)
    assert list(result.history) == []


@SERVER_KINDS
@pytest.mark.parametrize("forged", ["event", "row"])
def test_rows_and_events_no_sale_leaves_together_are_refused(
    place: Place, board: Board, forged: str
) -> None:
    """Each well formed, but no sale leaves them together: an ok of a buyer no host
    numbered made 'sale check' say OVERSOLD (exit 1); a host's row past the buyers
    that joined, that 6 of 5 buyers had no outcome."""
    first = board.join("ha", 2)
    hb = board.join("hb", 3)
    board.start()
    board.record(_events("ha", first))
    board.update(HostRow("ha", first, 2, ready=2, done=True))
    board.update(HostRow("hb", hb, 3, ready=3, done=True))
    if forged == "event":
        board.record([Event(999, Step.OK, t=0.0, pid=1, seat=1, host="ha", host_t=125.0)])
        said = "buyer-999's, from host 'ha', which numbered no such buyer"
    else:
        board.update(HostRow("hb", hb + 47, 3, ready=3, done=True))
        said = "host hb's buyers begin at 50, not 3"
    result = CliRunner().invoke(app, ["sale", "check", "--wait", "0", "--store", place.where])
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert said in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
