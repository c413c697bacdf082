"""``--store``: the user's own database as the record of a sale, and every way it can
be given wrong. Real servers only: the session's PostgreSQL and Redis, each in a
database (or Redis db number) of its own, and real SQLite files."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import pytest
from sales import SERVERS, script

from ticketsim.core.names import StoreKind
from ticketsim.sale.stores import postgres as pgstore
from ticketsim.sale.stores import redis as redisstore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


def ticketsim(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script(), *args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )


def _one_line_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr


def _sqlite(path: Path) -> str:
    """``sqlite:///`` and an absolute path: four slashes, as the URL form says."""
    return "sqlite:///" + str(path)


def _with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@pytest.fixture(scope="module")
def pg_url() -> str:
    """A database of its own on the session's PostgreSQL: the user's."""
    admin = pgstore.connect(SERVERS[StoreKind.POSTGRES])
    with contextlib.closing(admin):
        admin.execute("DROP DATABASE IF EXISTS users_own")
        admin.execute("CREATE DATABASE users_own")
    return _with_dbname(SERVERS[StoreKind.POSTGRES], "users_own")


@pytest.fixture
def redis_url() -> Iterator[str]:
    """Redis db number 5 of the session's server, emptied before and after."""
    url = SERVERS[StoreKind.REDIS] + "?db=5"
    client = redisstore.connect(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def test_a_sale_on_the_users_sqlite_file_is_kept_there(tmp_path: Path) -> None:
    store = _sqlite(tmp_path / "mine.sqlite")
    done = ticketsim("reset", "--store", store, "--tickets", "3", "--json")
    assert done.returncode == 0, done.stderr
    done = ticketsim(
        "run", "--store", store, "--strategy", "sqlite-immediate", "--buyers", "5",
        "--tickets", "3", "--delay", "0", "--json", "--history", str(tmp_path / "h.jsonl"),
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert (done.returncode, report["sold"], report["remaining"]) == (0, 3, 0)
    assert not (tmp_path / "db").exists()  # the db file was not used
    shown = ticketsim("show", "--store", store, "--json")
    assert json.loads(shown.stdout)["remaining"] == 0
    checked = ticketsim("check", "--history", str(tmp_path / "h.jsonl"), "--store", store)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_naive_strategy_is_the_default_on_a_store_and_oversells(pg_url: str) -> None:
    done = ticketsim(
        "run", "--store", pg_url, "--buyers", "3", "--tickets", "1", "--lockstep",
        "--delay", "0", "--json",
    )  # fmt: skip
    report = json.loads(done.stdout)
    assert (done.returncode, report["strategy"], report["oversold"]) == (1, "pg-naive", 2)
    shown = json.loads(ticketsim("show", "--store", pg_url, "--json").stdout)
    assert len(shown["ledger"]) == 3  # the store holds all three sales of seat 1
    assert shown["problems"]


def test_compare_runs_every_strategy_of_the_store(redis_url: str) -> None:
    done = ticketsim(
        "compare", "--store", redis_url, "--buyers", "4", "--tickets", "2", "--json",
        "--delay", "0",
    )  # fmt: skip
    rows = json.loads(done.stdout)["rows"]
    assert [r["strategy"] for r in rows] == [
        "redis-naive", "redis-decr", "redis-watch", "redis-lua", "redis-lock", "redis-fenced",
    ]  # fmt: skip
    assert all(r["ok"] for r in rows if r["strategy"] != "redis-naive")


def test_a_postgres_store_counts_as_each_strategy_does(pg_url: str) -> None:
    """The ledger's and the seats' strategies keep no count in the sale's row: loaded
    for the naive one, the user's store read its stale count after their sale."""
    safe = ["pg-update", "pg-unique", "pg-skip-locked", "pg-ledger-serializable"]
    done = ticketsim(
        "compare", "--store", pg_url, *(f"--strategy={name}" for name in safe),
        "--buyers", "3", "--tickets", "2", "--delay", "0", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(done.stdout)["rows"]
    assert [(r["strategy"], r["ok"], r["sold"]) for r in rows] == [(n, True, 2) for n in safe]
    # A sale reset with no strategy, then kept for one that counts the ledger.
    assert ticketsim("reset", "--store", pg_url, "--tickets", "3").returncode == 0
    for sold in (2, 1):
        kept = ticketsim(
            "run", "--store", pg_url, "--strategy", "pg-unique", "--keep", "--buyers",
            "2", "--delay", "0", "--json",
        )  # fmt: skip
        assert kept.returncode == 0, kept.stdout + kept.stderr
        assert json.loads(kept.stdout)["sold"] == sold
    shown = ticketsim("show", "--store", pg_url, "--json")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert (json.loads(shown.stdout)["remaining"], json.loads(shown.stdout)["problems"]) == (0, [])


def test_someone_elses_postgres_schema_is_refused_and_left_as_it_was(pg_url: str) -> None:
    other = _with_dbname(pg_url, "theirs")
    admin = pgstore.connect(pg_url)
    with contextlib.closing(admin):
        admin.execute("DROP DATABASE IF EXISTS theirs")
        admin.execute("CREATE DATABASE theirs")
    theirs = pgstore.connect(other)
    with contextlib.closing(theirs):
        theirs.execute("CREATE SCHEMA ticketsim")
        theirs.execute("CREATE TABLE ticketsim.orders (id int)")
        theirs.execute("INSERT INTO ticketsim.orders VALUES (42)")
    for args in (("reset", "--store", other), ("run", "--store", other, "--buyers", "2")):
        _one_line_error(ticketsim(*args), 2, "orders", "ticketsim did not make")
    theirs = pgstore.connect(other)
    with contextlib.closing(theirs):
        assert theirs.execute("SELECT id FROM ticketsim.orders").fetchall() == [(42,)]
        tables = theirs.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'ticketsim'"
        ).fetchall()
        assert tables == [("orders",)]


def test_someone_elses_redis_keys_are_refused_and_left_as_they_were(redis_url: str) -> None:
    client = redisstore.connect(redis_url)
    client.set("ticketsim:session", "theirs")
    _one_line_error(ticketsim("reset", "--store", redis_url), 2, "ticketsim:session")
    assert client.get("ticketsim:session") == b"theirs"
    assert client.dbsize() == 1
    client.close()


@pytest.mark.parametrize("content", [b"my notes\n", b""], ids=["text", "empty"])
def test_a_file_that_is_not_tickets_sqlite_is_refused_byte_for_byte(
    tmp_path: Path, content: bytes
) -> None:
    notes = tmp_path / "notes.sqlite"
    notes.write_bytes(content)
    done = ticketsim("run", "--store", _sqlite(notes))
    _one_line_error(done, 2, "--store=")
    assert notes.read_bytes() == content


def test_a_sqlite_db_with_the_users_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE users (name TEXT)")
        db.commit()
    before = path.read_bytes()
    _one_line_error(ticketsim("reset", "--store", _sqlite(path)), 2, "users")
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mysql://x/y", "is not a store URL"),
        ("sqlite://", "names no file"),
        ("sqlite:///", "names no file"),
        ("sqlite:///:memory:", "in-memory database"),
        ("postgresql://h:notaport/x", "malformed"),
        ("redis://h/notanumber", "give a number"),
        ("postgresql://127.0.0.1:1/x?sslmode=bogus", "invalid sslmode value"),
        ("postgresql://127.0.0.1:1/x?port=notaport", "invalid integer value"),
    ],
)
def test_a_malformed_url_is_one_line_and_exit_2(url: str, words: str) -> None:
    _one_line_error(ticketsim("run", "--store", url), 2, "--store=", words)


def test_a_strategy_of_another_store_is_refused(redis_url: str) -> None:
    done = ticketsim("run", "--store", redis_url, "--strategy", "pg-update")
    _one_line_error(done, 2, "--strategy='pg-update'", "redis-naive")


def test_a_server_that_is_not_there_is_exit_4(tmp_path: Path) -> None:
    down = f"postgresql://ticketsim@/postgres?host={tmp_path}&port=1"
    _one_line_error(ticketsim("show", "--store", down), 4, "start it")
    _one_line_error(ticketsim("reset", "--store", "redis://127.0.0.1:1/0"), 4, "start it")


def test_a_role_the_server_does_not_know_is_one_line(pg_url: str) -> None:
    parts = urlsplit(pg_url)
    wrong = urlunsplit(parts._replace(netloc="nobody_here@"))
    _one_line_error(ticketsim("show", "--store", wrong), 4, "nobody_here")


def test_a_password_is_never_printed() -> None:
    for url in ("postgresql://me:s3cret@127.0.0.1:1/x", "redis://me:s3cret@127.0.0.1:1/0"):
        done = ticketsim("show", "--store", url)
        _one_line_error(done, 4, "me:***@")
        assert "s3cret" not in done.stderr + done.stdout
    # Where libpq and redis-py take it as a query option too.
    for url in (
        "postgresql://127.0.0.1:1/x?user=me&password=s3cret",
        "redis://127.0.0.1:1/0?password=s3cret",
    ):
        done = ticketsim("show", "--store", url)
        _one_line_error(done, 4, "assword=***")
        assert "s3cret" not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("client", "store", "extra"),
    [
        ("psycopg", "postgresql://127.0.0.1:1/x", "ticketsim[postgres]"),
        ("redis", "redis://127.0.0.1:1/0", "ticketsim[redis]"),
    ],
)
def test_a_missing_client_says_which_extra_to_install(client: str, store: str, extra: str) -> None:
    """As if the extra were not installed: the import fails, and the line says what to do."""
    program = (
        f"import sys; sys.modules[{client!r}] = None; sys.argv = ['ticketsim', 'show', "
        f"'--store', {store!r}]; from ticketsim._entry import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    _one_line_error(done, 2, f"pip install '{extra}'")


def test_replay_and_hunt_force_their_schedules_between_statements(tmp_path: Path) -> None:
    db = str(tmp_path / "tickets.json")
    replayed = ticketsim(
        "replay", "--strategy", "redis-naive", "--schedule", "1r 2r 1w 2w", "--repeat", "3",
        "--json", "--db", db,
    )  # fmt: skip
    report = json.loads(replayed.stdout)
    assert (replayed.returncode, report["oversold"], report["reproduced"]) == (1, 1, 3)
    hunted = ticketsim(
        "hunt", "--strategy", "sqlite-naive", "--buyers", "2", "--tickets", "1",
        "--max-examples", "3", "--pct-runs", "2", "--json", "--db", db,
    )  # fmt: skip
    assert hunted.returncode == 1, hunted.stderr
    assert json.loads(hunted.stdout)["counterexample"]["schedule"]


@pytest.mark.parametrize("other", [["--lockstep"], ["--kill", "1"], ["--pool", "2"]])
def test_pause_holder_is_given_alone(tmp_path: Path, other: list[str]) -> None:
    db = tmp_path / "tickets.json"
    done = ticketsim("run", "--pause-holder", *other, "--db", str(db))
    _one_line_error(done, 2, "--pause-holder=True")
    assert not db.exists()


@pytest.mark.parametrize("command", [["show"], ["reset"], ["run", "--buyers", "2"]])
def test_a_sqlite_store_that_is_a_fifo_is_refused_without_waiting(
    tmp_path: Path, command: list[str]
) -> None:
    fifo = tmp_path / "pipe.sqlite"
    os.mkfifo(fifo)
    _one_line_error(ticketsim(*command, "--store", _sqlite(fifo)), 2, "FIFO")


@pytest.mark.parametrize(
    "args",
    [
        ["--strategy", "sqlite-naive", "--history", "db/tickets.sqlite"],
        ["--store", "sqlite:///mine.sqlite", "--timeline", "mine.sqlite"],
    ],
    ids=["the-copy-beside-the-db", "the-users-file"],
)
def test_no_output_may_be_the_sqlite_file(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "db").mkdir()
    done = ticketsim("run", "--buyers", "2", *args, cwd=tmp_path)
    _one_line_error(done, 2, "is the same file as")
    assert [p.name for p in tmp_path.rglob("*")] == ["db"]  # nothing written


@pytest.mark.parametrize("command", ["reset", "run"])
def test_a_sqlite_file_another_program_keeps_locked_is_exit_4_and_left_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """Another program's write transaction outlasts ticketsim's wait: the machine's
    refusal, in one line, not an internal error (it was exit 70). (Reading is not
    refused: the file is in WAL mode, where readers never wait.)"""
    from typer.testing import CliRunner

    from ticketsim.cli import app
    from ticketsim.sale.stores import sqlite as sqlitestore

    store = _sqlite(tmp_path / "mine.sqlite")
    assert ticketsim("reset", "--store", store, "--tickets", "3").returncode == 0
    before = (tmp_path / "mine.sqlite").read_bytes()
    monkeypatch.setattr(sqlitestore, "ADMIN_WAIT_S", 0.2)
    other = sqlite3.connect(tmp_path / "mine.sqlite", isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")  # readers wait too
        extra = ["--strategy", "sqlite-immediate", "--buyers", "2"] if command == "run" else []
        args = [command, "--store", store, *extra]
        done = CliRunner().invoke(app, args, catch_exceptions=False, prog_name="ticketsim")
    finally:
        other.close()
    assert done.exit_code == 4, done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "stayed locked by another program for 0.2 s" in lines[0]
    assert (tmp_path / "mine.sqlite").read_bytes() == before


def test_a_buyer_whose_name_holds_spaces_sells_on_redis(tmp_path: Path) -> None:
    """A Redis ledger entry is the seat, the buyer, the pid and the time, spaces apart:
    a name of the db's with a space in it split into five, an internal error (70)."""
    db = tmp_path / "tickets.json"
    sale = {"buyer": "Ann Lee", "seat": 1, "pid": 4242, "time": 1795000000.25}
    db.write_text(json.dumps({"event": "Concert", "tickets": 3, "remaining": 2, "ledger": [sale]}))
    done = ticketsim(
        "run", "--db", str(db), "--strategy", "redis-decr", "--keep", "--buyers", "2",
        "--delay", "0", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    after = json.loads(db.read_text())
    assert after["ledger"][0]["buyer"] == "Ann Lee"
    assert after["remaining"] == 0


def _damaged(kind: str, url: str, damage: Callable[[], None]) -> None:
    """``damage`` a fresh sale of ticketsim's in ``url``: show, run --keep and check each
    refuse it in one line (exit 2), and leave it as it is."""
    assert ticketsim("reset", "--store", url, "--tickets", "3").returncode == 0
    damage()
    strategy = {"sqlite": "sqlite-immediate", "pg": "pg-update", "redis": "redis-decr"}[kind]
    for args in (
        ("show", "--store", url),
        ("run", "--store", url, "--keep", "--strategy", strategy, "--buyers", "2"),
    ):
        _one_line_error(ticketsim(*args), 2, "holds a sale ticketsim cannot read", "reset it")


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM sale",
        "UPDATE sale SET remaining = 'x'",
        "UPDATE ledger SET seat = 'x'",
        "UPDATE ledger SET buyer = ''",
        "DROP TABLE ledger",
    ],
)
def test_a_damaged_sqlite_store_is_refused_in_one_line(tmp_path: Path, statement: str) -> None:
    path = tmp_path / "mine.sqlite"
    url = _sqlite(path)

    def damage() -> None:
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
            db.execute("INSERT INTO ledger (seat, buyer, pid, at) VALUES (1, 'ann', 1, 1.5)")
            db.execute(statement)

    _damaged("sqlite", url, damage)
    if statement == "UPDATE ledger SET seat = 'x'":
        with contextlib.closing(sqlite3.connect(path)) as db:
            assert db.execute("SELECT seat FROM ledger").fetchall() == [("x",)]


@pytest.mark.parametrize(
    "statement", ["DROP TABLE ticketsim.ledger", "UPDATE ticketsim.sale SET model = 'mine'"]
)
def test_a_damaged_postgres_store_is_refused_in_one_line(pg_url: str, statement: str) -> None:
    def damage() -> None:
        with contextlib.closing(pgstore.connect(pg_url)) as db:
            db.execute(statement)

    _damaged("pg", pg_url, damage)


@pytest.mark.parametrize(
    "commands",
    [
        [["DEL", "ticketsim:tickets", "ticketsim:remaining", "ticketsim:event"]],
        [["SET", "ticketsim:remaining", "x"]],
        [["DEL", "ticketsim:ledger"], ["SET", "ticketsim:ledger", "x"]],
        [["RPUSH", "ticketsim:ledger", "1 a"]],
    ],
    ids=["keys-gone", "count-no-number", "ledger-a-string", "entry-cut-short"],
)
def test_a_damaged_redis_store_is_refused_in_one_line(
    redis_url: str, commands: list[list[str]]
) -> None:
    def damage() -> None:
        with contextlib.closing(redisstore.connect(redis_url)) as db:
            for command in commands:
                db.execute_command(*command)

    _damaged("redis", redis_url, damage)


def test_a_ticketsim_schema_someone_else_made_with_no_table_is_refused(pg_url: str) -> None:
    other = _with_dbname(pg_url, "their_schema")
    with contextlib.closing(pgstore.connect(pg_url)) as admin:
        admin.execute("DROP DATABASE IF EXISTS their_schema")
        admin.execute("CREATE DATABASE their_schema")
    with contextlib.closing(pgstore.connect(other)) as theirs:
        theirs.execute("CREATE SCHEMA ticketsim")
        theirs.execute(
            "CREATE FUNCTION ticketsim.precious() RETURNS int LANGUAGE sql AS 'SELECT 42'"
        )
        theirs.execute("CREATE SEQUENCE ticketsim.mine")
    done = ticketsim("reset", "--store", other, "--tickets", "3")
    _one_line_error(done, 2, "function precious", "relation mine", "ticketsim did not make")
    with contextlib.closing(pgstore.connect(other)) as theirs:
        names = theirs.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'ticketsim'"
        ).fetchall()
        assert names == [("mine",)]
        assert theirs.execute("SELECT ticketsim.precious()").fetchone() == (42,)


def test_what_a_users_postgres_refuses_is_exit_4_in_one_line(pg_url: str) -> None:
    """A role with no right to make the schema, or a read-only one: the server says no,
    which is the machine's word (exit 4), not ticketsim's bug (it was exit 70)."""
    lowly = _with_dbname(pg_url, "lowly_db")
    parts = urlsplit(lowly)
    as_lowly = urlunsplit(parts._replace(netloc="lowly:pw@" + parts.netloc.split("@")[-1]))
    with contextlib.closing(pgstore.connect(pg_url)) as admin:
        admin.execute("DROP DATABASE IF EXISTS lowly_db")
        admin.execute("DROP ROLE IF EXISTS lowly")
        admin.execute("CREATE ROLE lowly LOGIN PASSWORD 'pw'")
        admin.execute("CREATE DATABASE lowly_db")
    with contextlib.closing(pgstore.connect(lowly)) as db:
        db.execute("REVOKE CREATE ON DATABASE lowly_db FROM PUBLIC")
    for args in (("reset", "--store", as_lowly), ("run", "--store", as_lowly, "--buyers", "2")):
        _one_line_error(ticketsim(*args), 4, "permission denied", "rights")


def test_what_a_users_redis_refuses_is_exit_4_and_keeps_the_sale_there() -> None:
    """A user its ACL keeps from SCAN, a server out of memory: exit 4 in one line (it was
    exit 70), and a reset the full server refuses leaves the sale that was there (it
    deleted it, then failed to write the new one)."""
    from ticketsim.engine.databases import PrivateServers

    with PrivateServers() as servers:
        url = servers[StoreKind.REDIS]
        assert ticketsim("reset", "--store", url, "--tickets", "2").returncode == 0
        with contextlib.closing(redisstore.connect(url)) as admin:
            before = {key: admin.dump(key) for key in admin.scan_iter()}
            admin.execute_command(
                "ACL", "SETUSER", "lowly", "on", ">pw", "~ticketsim:*", "+get", "+set",
                "+ping", "+hello", "+client", "+select",
            )  # fmt: skip
            parts = urlsplit(url)
            lowly = urlunsplit(parts._replace(netloc="lowly:pw@" + parts.netloc.split("@")[-1]))
            _one_line_error(ticketsim("show", "--store", lowly), 4, "scan", "rights")
            admin.config_set("maxmemory", 1)
            admin.config_set("maxmemory-policy", "noeviction")
            done = ticketsim("reset", "--store", url, "--tickets", "5")
            admin.config_set("maxmemory", 0)
            _one_line_error(done, 4, "maxmemory", "free its memory")
            assert {key: admin.dump(key) for key in admin.scan_iter()} == before


@pytest.mark.parametrize(
    ("query", "words"), [("?foo=bar", "fix the URL"), ("?db=99", "no database of that number")]
)
def test_a_redis_url_the_client_or_server_cannot_take_is_exit_2(
    redis_url: str, query: str, words: str
) -> None:
    url = redis_url.split("?", maxsplit=1)[0] + query
    _one_line_error(ticketsim("show", "--store", url), 2, words)
