"""Issue 14, class 1 (nothing ticketsim writes may destroy what is not a ticketsim file)
and the up-front path checks of class 3: every command, every path option.

Special files, reads that could block, aliases, odd leftovers in the db folder, names
at the system's limits, folders that cannot take a file, full and read-only file
systems, and what belongs to the user (owner, group, unknown keys, duplicate keys).
Reads that could block run in a subprocess or a thread with a timeout, so that a
regression fails instead of hanging.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from ticketsim import errors
from ticketsim.analysis import history
from ticketsim.analysis.report import build_report
from ticketsim.cli import app
from ticketsim.core import _files
from ticketsim.core import db as dbfile
from ticketsim.core._files import sweep_temp_files
from ticketsim.core.settings import RunConfig
from ticketsim.engine.runner import run_sale
from ticketsim.errors import DbError, StoreError
from ticketsim.sale.stores import _ledger
from ticketsim.sale.stores.sqlite import SqliteStore
from ticketsim.search.compare import compare
from ticketsim.views.compare import write_plot
from ticketsim.views.timeline import write_timeline

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from typer.testing import Result

runner = CliRunner()
SOLD = dbfile.dumps(dbfile.TicketDB.fresh(3).sell(dbfile.Sale("buyer-1", 1, 7, 1.0)))
ROOT = os.geteuid() == 0


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), catch_exceptions=False, prog_name="ticketsim")


def cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """``python -m ticketsim`` in a process of its own (the environment passed through,
    so that PYTHONPATH picks the code under test); a hang fails the test."""
    return subprocess.run(
        [sys.executable, "-m", "ticketsim", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=dict(os.environ),
    )


def assert_refused(code: int, stderr: str, option: str, words: str, exit_code: int = 2) -> None:
    assert code == exit_code, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"ticketsim: error: {option}="), lines[0]
    assert words in lines[0], lines[0]
    assert "Traceback" not in stderr


# --- every command and every path option ----------------------------------------------


def _args(command: str, paths: dict[str, str], strategy: str = "lock") -> list[str]:
    """A quick invocation of ``command`` with the paths given (defaults for the rest)."""
    base: dict[str, list[str]] = {
        "run": ["run", "--strategy", strategy, "--buyers", "2", "--tickets", "1", "--delay", "0"],
        "replay": ["replay", "--schedule", "1r 1w", "--timeout", "5"],
        "show": ["show"],
        "reset": ["reset"],
        "explore": ["explore", "--buyers", "1", "--timeout", "5"],
        "hunt": ["hunt", "--buyers", "1", "--max-examples", "1", "--pct-runs", "1"],
        "check": ["check"],
        "compare": ["compare", "--buyers", "2", "--tickets", "1", "--delay", "0"],
        "demo": ["demo", "--yes"],
    }
    args = list(base[command])
    if command == "compare":
        args += ["--strategy", "lock"]
    for option, path in paths.items():
        args += [option, path]
    return args


#: (command, option) for every path option of every command.
PATH_OPTIONS = [
    ("run", "--db"),
    ("run", "--history"),
    ("run", "--timeline"),
    ("replay", "--db"),
    ("replay", "--history"),
    ("replay", "--timeline"),
    ("show", "--db"),
    ("reset", "--db"),
    ("explore", "--db"),
    ("hunt", "--db"),
    ("check", "--history"),
    ("check", "--db"),
    ("compare", "--db"),
    ("compare", "--plot"),
    ("demo", "--db"),
]
IDS = [f"{c}{o}" for c, o in PATH_OPTIONS]


@pytest.fixture
def good(tmp_path: Path) -> dict[str, Path]:
    """A sound db and a history of a sale on it, in a folder of their own."""
    folder = tmp_path / "good"
    folder.mkdir()
    db = folder / "tickets.json"
    result = run_sale(RunConfig(buyers=2, tickets=2, strategy="lock", db_path=db, delay=0.0))
    history.save(folder / "sale.jsonl", result)
    return {"--db": db, "--history": folder / "sale.jsonl"}


def _paths_for(command: str, option: str, bad: str, good: dict[str, Path]) -> dict[str, str]:
    """The paths of an invocation: ``bad`` for ``option``, good ones for the rest."""
    paths = {"--db": str(good["--db"])}
    if command == "check":
        paths["--history"] = str(good["--history"])
    paths[option] = bad
    return paths


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _make_node(path: Path, kind: str) -> int:
    """Make a special file of ``kind`` at ``path``; its ``st_mode`` file type."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        here = os.getcwd()
        os.chdir(path.parent)  # a socket's path is limited to 108 bytes: bind a short one
        try:
            with socket.socket(socket.AF_UNIX) as server:
                server.bind(path.name)
        finally:
            os.chdir(here)
    elif kind == "directory":
        path.mkdir()
    elif kind in ("char", "block"):
        if not ROOT:
            pytest.skip("making a device node needs root")
        null = os.stat("/dev/null").st_rdev
        device = (stat.S_IFCHR, null) if kind == "char" else (stat.S_IFBLK, os.makedev(7, 0))
        os.mknod(path, device[0] | 0o600, device[1])
    return stat.S_IFMT(os.lstat(path).st_mode)


KINDS = {
    "fifo": "is a FIFO",
    "socket": "is a socket",
    "directory": "is a directory",
    "char": "is a character device",
    "block": "is a block device",
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize(("command", "option"), PATH_OPTIONS, ids=IDS)
def test_a_special_file_is_refused_by_every_option_and_left_as_it_was(
    tmp_path: Path, good: dict[str, Path], command: str, option: str, kind: str
) -> None:
    node = tmp_path / ("node.svg" if option == "--plot" else "node")
    file_type = _make_node(node, kind)
    before = _snapshot(good["--db"].parent)
    args = _args(command, _paths_for(command, option, str(node), good))
    if kind == "fifo":  # in a process of its own: on the old code, a FIFO blocked forever
        done = cli(*args)
        code, stderr = done.returncode, done.stderr
    else:
        result = invoke(*args)
        code, stderr = result.exit_code, result.stderr
    assert_refused(code, stderr, option, KINDS[kind])
    assert str(node) in stderr
    assert stat.S_IFMT(os.lstat(node).st_mode) == file_type  # still the node it was
    assert _snapshot(good["--db"].parent) == before


@pytest.mark.parametrize(
    ("link_to", "words"),
    [
        ("fifo", "is a FIFO"),
        ("directory", "is a directory"),
        ("nothing", "is a symlink to a file that does not exist"),
    ],
)
@pytest.mark.parametrize("command", ["run", "reset"])
def test_a_db_that_is_a_symlink_to_no_regular_file_is_refused(
    tmp_path: Path, command: str, link_to: str, words: str
) -> None:
    target = tmp_path / "target"
    if link_to != "nothing":
        _make_node(target, link_to)
    link = tmp_path / "tickets.json"
    link.symlink_to(target)
    result = invoke(*_args(command, {"--db": str(link)}))
    assert_refused(result.exit_code, result.stderr, "--db", words)
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    assert os.path.lexists(target) == (link_to != "nothing")  # nothing made behind the link
    if link_to == "fifo":
        assert stat.S_ISFIFO(os.stat(target).st_mode)


@pytest.mark.parametrize(("command", "option"), PATH_OPTIONS, ids=IDS)
def test_a_path_through_a_file_is_refused(good: dict[str, Path], command: str, option: str) -> None:
    """ENOTDIR: a folder on the way is a regular file (the db itself, here)."""
    bad = str(good["--db"] / ("x.svg" if option == "--plot" else "x"))
    before = _snapshot(good["--db"].parent)
    result = invoke(*_args(command, _paths_for(command, option, bad, good)))
    assert_refused(result.exit_code, result.stderr, option, "is not a folder")
    assert _snapshot(good["--db"].parent) == before


@pytest.mark.parametrize(
    ("spelling", "words"),
    [("", "the path is empty"), ("tickets.json/", "ends with a slash")],
    ids=["empty", "trailing-slash"],
)
@pytest.mark.parametrize("command", ["run", "reset", "show"])
def test_an_empty_path_or_one_ending_in_a_slash_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, spelling: str, words: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(*_args(command, {"--db": spelling}))
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"--db={spelling!r}" in result.stderr  # echoed, even empty
    assert "env var" not in result.stderr  # none was set: it is what was typed
    assert words in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing created


def test_the_db_from_the_environment_is_vetted_too(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "ticketsim", "show"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "TICKETSIM_DB": str(fifo)},
    )
    assert_refused(done.returncode, done.stderr, "--db", "is a FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


# --- reading never blocks ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["show", "--db", "{fifo}"], ["run", "--keep", "--lock", "--db", "{fifo}"]],
    ids=["show", "run-keep"],
)
@pytest.mark.parametrize("writer", [False, True], ids=["no-writer", "a-writer-holds-it-open"])
def test_a_fifo_as_the_db_never_blocks(tmp_path: Path, args: list[str], writer: bool) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    # A writer that holds the FIFO open: the open would not block then, a read would.
    held = os.open(fifo, os.O_RDWR) if writer else None
    try:
        done = cli(*(a.format(fifo=fifo) for a in args), timeout=20)
    finally:
        if held is not None:
            os.close(held)
    assert_refused(done.returncode, done.stderr, "--db", "is a FIFO")


def test_a_fifo_as_the_history_to_check_never_blocks(tmp_path: Path, good: dict[str, Path]) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    done = cli("check", "--history", str(fifo), "--db", str(good["--db"]), timeout=20)
    assert_refused(done.returncode, done.stderr, "--history", "is a FIFO")


def _returns_within(action: Callable[[], Any], fifo: Path, seconds: float = 10) -> Any:
    """What ``action`` returned or raised, run in a thread; fails if it blocks (and then
    unblocks it by opening the FIFO's other end, so the thread can end)."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(action())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5)
        pytest.fail(f"blocked for {seconds} s on a FIFO")
    return outcome[0]


def test_the_library_reads_of_a_fifo_never_block(tmp_path: Path, good: dict[str, Path]) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for read in (
        lambda: dbfile.load(fifo),
        lambda: _ledger.read_for_sale(fifo, _ledger.LedgerIndex()),
        lambda: _ledger.read_remaining(fifo),
    ):
        raised = _returns_within(read, fifo)
        assert isinstance(raised, DbError), raised
        assert "is a FIFO, not a regular file" in raised.problem
    raised = _returns_within(lambda: history.load(fifo, good["--db"]), fifo)
    assert isinstance(raised, history.HistoryError), raised
    assert "is a FIFO" in str(raised)


# --- aliases ---------------------------------------------------------------------------------


def _spell(tmp_path: Path, name: str, how: str) -> str:
    """Another spelling of ``tmp_path / name``."""
    path = tmp_path / name
    if how == "same":
        return str(path)
    if how == "dot":
        return f"{tmp_path}/./{name}"
    if how == "dotdot":
        (tmp_path / "sub").mkdir(exist_ok=True)
        return f"{tmp_path}/sub/../{name}"
    if how == "symlink":
        link = tmp_path / f"link-{name}"
        link.symlink_to(path)
        return str(link)
    # a hard link: another name, the same inode
    other = tmp_path / f"hard-{name}"
    os.link(path, other)
    return str(other)


ALIASES = [
    ("run", "--db", "--history"),
    ("run", "--db", "--timeline"),
    ("run", "--history", "--timeline"),
    ("replay", "--db", "--history"),
    ("replay", "--db", "--timeline"),
    ("replay", "--history", "--timeline"),
    ("check", "--history", "--db"),
    ("compare", "--db", "--plot"),
]


@pytest.mark.parametrize("how", ["same", "dot", "dotdot", "symlink", "hardlink"])
@pytest.mark.parametrize(
    ("command", "first", "second"), ALIASES, ids=[" ".join(a) for a in ALIASES]
)
def test_two_paths_naming_one_file_are_refused_before_anything_runs(
    tmp_path: Path, good: dict[str, Path], command: str, first: str, second: str, how: str
) -> None:
    name = "x.svg"
    source = good["--history"] if command == "check" else good["--db"]
    shutil.copy(source, tmp_path / name)  # an existing file, so every spelling works
    paths = _paths_for(command, first, str(tmp_path / name), good)
    paths[second] = _spell(tmp_path, name, how)
    before = (tmp_path / name).read_bytes()
    result = invoke(*_args(command, paths))
    assert_refused(result.exit_code, result.stderr, second, "is the same file as")
    assert f"{first}=" in result.stderr
    assert (tmp_path / name).read_bytes() == before


def test_two_outputs_that_do_not_exist_yet_but_name_one_file(tmp_path: Path) -> None:
    db = tmp_path / "tickets.json"
    (tmp_path / "sub").mkdir()
    for spelling in (f"{tmp_path}/./h.html", f"{tmp_path}/sub/../h.html"):
        paths = {"--db": str(db), "--history": str(tmp_path / "h.html"), "--timeline": spelling}
        result = invoke(*_args("run", paths))
        assert_refused(result.exit_code, result.stderr, "--timeline", "is the same file as")
        assert [p.name for p in tmp_path.iterdir()] == ["sub"]  # nothing ran or was written


@pytest.mark.parametrize("output", ["--history", "--timeline"])
def test_a_path_through_a_missing_folder_never_reaches_the_file_its_text_resolves_to(
    tmp_path: Path, output: str
) -> None:
    """``missing/../mine.json`` reaches no file for the system, but its text resolves to
    ``mine.json``: it is refused, and the user's file is left as it was."""
    mine = tmp_path / "mine.json"
    mine.write_bytes(b"the user's own")
    spelled = f"{tmp_path}/missing/../mine.json"
    result = invoke(*_args("run", {"--db": str(tmp_path / "tickets.json"), output: spelled}))
    assert_refused(result.exit_code, result.stderr, output, "missing/.. does not exist")
    assert mine.read_bytes() == b"the user's own"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.json"]


@pytest.mark.parametrize("output", ["--history", "--timeline"])
@pytest.mark.parametrize("derived", ["lock", "temp"])
def test_an_output_that_is_one_of_the_dbs_own_files_is_refused(
    good: dict[str, Path], output: str, derived: str
) -> None:
    db = good["--db"]
    lock, temp = f"{db.name}.lock", f"{_files.temp_prefix(str(db))}0.tmp"
    path = db.parent / (lock if derived == "lock" else temp)
    result = invoke(*_args("run", {"--db": str(db), output: str(path)}))
    assert_refused(result.exit_code, result.stderr, output, f"file of --db={db}")
    assert not path.exists() or derived == "lock"


UNUSABLE_BESIDE = {
    "junk-sqlite": ("sqlite-update", "tickets.sqlite", "is not a SQLite database"),
    "empty-sqlite": (
        "sqlite-deferred",
        "tickets.sqlite",
        "is an empty file ticketsim did not make",
    ),
    "lock-folder": ("filelock", "tickets.json.lock", "is a directory, not a regular file"),
    "lock-symlink": ("filelock", "tickets.json.lock", "is a symlink, not a regular file"),
}


@pytest.mark.parametrize("case", sorted(UNUSABLE_BESIDE))
@pytest.mark.parametrize("command", ["run", "compare", "explore"])
def test_a_file_beside_the_db_that_a_strategy_cannot_use_is_refused_before_the_db_is_reset(
    tmp_path: Path, good: dict[str, Path], case: str, command: str
) -> None:
    """A refusal (exit 2) means nothing ran: the user's db keeps its sales."""
    strategy, name, words = UNUSABLE_BESIDE[case]
    db = good["--db"]
    beside = db.parent / name
    if case == "junk-sqlite":
        beside.write_bytes(b"the user's notes")
    elif case == "empty-sqlite":
        beside.touch()
    elif case == "lock-folder":
        beside.mkdir()
    else:
        beside.symlink_to(tmp_path / "elsewhere")
    before = db.read_bytes()
    args = {
        "run": ["run", "--strategy", strategy, "--buyers", "2", "--delay", "0"],
        "compare": ["compare", "--strategy", "lock", "--strategy", strategy, "--buyers", "2"],
        "explore": ["explore", "--strategy", strategy, "--buyers", "2", "--timeout", "5"],
    }[command]
    result = invoke(*args, "--db", str(db))
    assert result.exit_code == 2, result.output
    assert words in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert db.read_bytes() == before
    assert beside.is_symlink() or beside.is_dir() or beside.stat().st_size < 20


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_a_file_with_the_name_of_a_sqlite_journal_is_neither_taken_nor_named_as_an_output(
    tmp_path: Path, suffix: str
) -> None:
    """SQLite takes a file named as its database's journal for its own, and removes it:
    a user's file of that name is refused, never handed to SQLite; an output named so
    is refused too; and a folder there is exit 2, not an internal error."""
    db = tmp_path / "tickets.json"
    journal = tmp_path / f"tickets.sqlite{suffix}"
    journal.write_bytes(b"the user's notes")
    sale = ["run", "--strategy", "sqlite-deferred", "--buyers", "2", "--delay", "0", "--db"]
    refused = invoke(*sale, str(db))
    assert_refused(refused.exit_code, refused.stderr, "--store", "which SQLite would take")
    assert journal.read_bytes() == b"the user's notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == [journal.name]
    journal.unlink()
    assert invoke(*sale, str(db)).exit_code == 0  # the store is now ticketsim's
    named = invoke(*sale, str(db), "--history", str(journal))
    assert_refused(named.exit_code, named.stderr, "--history", "a journal of the SQLite")
    # Beside a store of ticketsim's, SQLite's own journals are taken (a killed sale's),
    # and a file of the user's is not.
    journal.write_bytes(b"the user's notes")
    beside = invoke(*sale, str(db))
    assert_refused(beside.exit_code, beside.stderr, "--store", "is not one of SQLite's")
    assert journal.read_bytes() == b"the user's notes"
    journal.unlink()
    journal.mkdir()
    folder = invoke(*sale, str(db))
    assert_refused(folder.exit_code, folder.stderr, "--store", "is a directory")


def test_a_damaged_sqlite_store_is_the_users_to_fix_not_an_internal_error(
    tmp_path: Path,
) -> None:
    damaged = tmp_path / "damaged.sqlite"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\xff" * 200)
    before = damaged.read_bytes()
    for command in ("show", "reset", "run"):
        done = invoke(command, "--store", f"sqlite:///{damaged}")
        assert_refused(done.exit_code, done.stderr, "--store", "SQLite cannot read it")
    assert damaged.read_bytes() == before


def test_a_sqlite_store_another_program_makes_meanwhile_is_vetted_and_never_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the vetting of a missing store and its making, another program made it:
    it is vetted as any existing file, and the failed load removes nothing of it."""
    path = tmp_path / "shared.sqlite"
    real = SqliteStore._make

    def theirs_first(self: SqliteStore) -> tuple[int, int] | None:
        with contextlib.closing(sqlite3.connect(path)) as other:
            other.execute("CREATE TABLE orders (id INTEGER)")
            other.execute("INSERT INTO orders VALUES (42)")
            other.commit()
        return real(self)

    monkeypatch.setattr(SqliteStore, "_make", theirs_first)
    with pytest.raises(StoreError, match="holds tables ticketsim did not make"):
        SqliteStore(str(path)).load(dbfile.TicketDB.fresh(3))
    with contextlib.closing(sqlite3.connect(path)) as other:
        assert other.execute("SELECT id FROM orders").fetchall() == [(42,)]


WRITTEN_BY = {
    "--history": ["run", "--strategy", "lock", "--buyers", "2", "--delay", "0"],
    "--timeline": ["run", "--strategy", "lock", "--buyers", "2", "--delay", "0"],
    "--plot": ["compare", "--strategy", "lock", "--buyers", "2", "--delay", "0"],
}


@pytest.mark.parametrize("option", sorted(WRITTEN_BY))
def test_an_output_replaces_only_a_file_ticketsim_wrote_or_an_empty_one(
    tmp_path: Path, option: str
) -> None:
    """The user's own file at an output's path is refused and left byte for byte; one
    ticketsim wrote (a history, a timeline, a plot of an earlier run), or an empty one
    (``mktemp``'s), is replaced."""
    db, target = tmp_path / "tickets.json", tmp_path / "out.svg"
    args = [*WRITTEN_BY[option], "--db", str(db), option, str(target)]
    target.write_bytes(b"<svg>the user's own picture</svg>")
    refused = invoke(*args)
    assert_refused(refused.exit_code, refused.stderr, option, "is not a")
    assert "ticketsim wrote" in refused.stderr
    assert target.read_bytes() == b"<svg>the user's own picture</svg>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.svg"]  # nothing ran
    target.write_bytes(b"")
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    written = target.read_bytes()
    assert written
    again = invoke(*args)  # its own output of a run before
    assert again.exit_code == 0, again.output
    assert target.read_bytes() != b""


def test_a_history_another_program_wrote_is_not_replaced_and_an_older_ticketsims_is(
    tmp_path: Path,
) -> None:
    """A foreign history has the same format line as ticketsim's: only ticketsim's
    ``generator`` key, or (from before it) a strategy, which a foreign one cannot name,
    makes it ticketsim's. Timelines and plots from before their marks are ticketsim's too."""
    db, history = tmp_path / "tickets.json", tmp_path / "theirs.jsonl"
    foreign = Path(__file__).parent / "analysis" / "foreign" / "checkout.py"
    subprocess.run([sys.executable, str(foreign), str(history)], check=True, timeout=60)
    theirs = history.read_bytes()
    sale = ["run", "--lock", "--buyers", "2", "--delay", "0", "--db", str(db)]
    refused = invoke(*sale, "--history", str(history))
    assert_refused(refused.exit_code, refused.stderr, "--history", "not a history ticketsim")
    assert history.read_bytes() == theirs
    ours = tmp_path / "ours.jsonl"
    assert invoke(*sale, "--history", str(ours)).exit_code == 0
    head, _, rest = ours.read_text(encoding="utf-8").partition("\n")
    older = {k: v for k, v in json.loads(head).items() if k != "generator"}
    ours.write_text(json.dumps(older) + "\n" + rest, encoding="utf-8")
    docs = Path(__file__).parents[1] / "docs"
    (tmp_path / "old.html").write_bytes((docs / "race.html").read_bytes())
    (tmp_path / "old.svg").write_bytes((docs / "tradeoff.svg").read_bytes())
    for option, name, command in [
        ("--history", "ours.jsonl", sale),
        ("--timeline", "old.html", sale),
        ("--plot", "old.svg", ["compare", "--strategy", "lock", "--buyers", "2", "--db", str(db)]),
    ]:
        done = invoke(*command, option, str(tmp_path / name))
        assert done.exit_code == 0, (option, done.output)


def test_an_output_that_is_the_commands_own_stdout_is_refused(tmp_path: Path) -> None:
    """``--history /dev/stdout`` with stdout sent to a file would replace that file, and
    the report printed there with it."""
    db, out = tmp_path / "tickets.json", tmp_path / "out.txt"
    with out.open("w") as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "ticketsim", "run", "--lock", "--buyers", "2",
             "--delay", "0", "--db", str(db), "--history", "/dev/stdout"],
            stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert_refused(done.returncode, done.stderr, "--history", "this command's stdout")
    assert out.read_bytes() == b""
    assert not db.exists()


@pytest.mark.parametrize("command", [["show"], ["check", "--history", "h.jsonl"]])
def test_a_db_the_command_reads_that_is_its_own_stdout_is_refused(
    tmp_path: Path, command: list[str]
) -> None:
    """``ticketsim show --db X >> X`` printed its report into the db it read: the next
    command found no db there."""
    db = tmp_path / "tickets.json"
    assert invoke("run", "--lock", "--buyers", "2", "--delay", "0", "--db", str(db),
                  "--history", str(tmp_path / "h.jsonl")).exit_code == 0  # fmt: skip
    before = db.read_bytes()
    with db.open("a") as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "ticketsim", *command, "--db", str(db)],
            stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=60, check=False,
            cwd=tmp_path,
        )  # fmt: skip
    assert_refused(done.returncode, done.stderr, "--db", "this command's stdout")
    assert db.read_bytes() == before


# --- what ticketsim did not create, it never deletes -----------------------------------------


def _strays(folder: Path) -> list[bytes]:
    """Files in the db folder whose names are odd, or look like a temp file's."""
    names = [
        b".tickets.json.99999999999999999999.0.tmp",  # a pid too big for any process
        b".tickets.json.999999.0.tmp",  # the old temp name of a dead writer: not ours now
        b".tickets.json.\xff\xfe.tmp",  # not UTF-8
        b"\xff\xfe",
        b".tsim-00000000.99999999999.000000000000.0.tmp",  # our marker, a pid past pid_t
        b".tickets.json.-1.0.tmp",
        b"tickets.json.tmp",
    ]
    for name in names:
        with open(os.path.join(os.fsencode(folder), name), "wb") as stray:
            stray.write(b"someone else's")
    # A folder with a temp-like name, for this very db and a dead writer.
    fake = f"{_files.temp_prefix(str(folder / 'tickets.json'))}0.tmp".replace(
        f".{os.getpid()}.", ".999999."
    )
    (folder / fake).mkdir()
    return sorted([*names, os.fsencode(fake)])


@pytest.mark.parametrize("strategy", ["lock", "filelock", "value"])
def test_a_stray_file_of_any_name_neither_crashes_a_run_nor_is_removed(
    db_path: Path, strategy: str
) -> None:
    strays = _strays(db_path.parent)
    result = invoke(*_args("run", {"--db": str(db_path)}, strategy))
    assert result.exit_code == 0, result.output
    left = sorted(os.listdir(os.fsencode(db_path.parent)))
    mine = {b"tickets.json", b"tickets.json.lock"}
    assert [name for name in left if name not in mine] == strays


def test_the_sweep_still_removes_a_dead_writers_temp_file(db_path: Path) -> None:
    """Regression guard: the sweep's job holds (it held before the fix too)."""
    db_path.write_text(SOLD)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - a writer that dies between its temp file and the swap
        _files._create_temp(os.path.realpath(db_path))
        os._exit(0)
    os.waitpid(pid, 0)
    (temp,) = [p.name for p in db_path.parent.iterdir() if p.name != db_path.name]
    assert sweep_temp_files(db_path) == [temp]
    assert [p.name for p in db_path.parent.iterdir()] == [db_path.name]


@pytest.mark.parametrize("option", ["--timeline", "--history"])
def test_an_outputs_temp_file_a_killed_write_left_goes_with_the_next_write(
    db_path: Path, option: str
) -> None:
    """A SIGKILL between an output's temp file and its rename left the temp file for
    good: only the db's were ever swept."""
    out = db_path.parent / "out"
    out.mkdir()
    target = out / ("t.html" if option == "--timeline" else "h.jsonl")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - a writer killed between its temp file and the swap
        _files._create_temp(os.path.realpath(target))
        os._exit(0)
    os.waitpid(pid, 0)
    assert len(list(out.iterdir())) == 1  # the dead writer's temp file
    args = ["run", "--lock", "--buyers", "2", "--delay", "0", "--db", str(db_path)]
    result = invoke(*args, option, str(target))
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == [target.name]


def test_a_temp_name_is_short_and_tied_to_its_target() -> None:
    long_name = "t" * 255
    prefix = _files.temp_prefix(f"/tmp/{long_name}")
    assert len(prefix) < 64
    assert long_name not in prefix
    assert _files.temp_owner(f"{prefix}0.tmp", f"/tmp/{long_name}") == os.getpid()
    assert _files.temp_owner(f"{prefix}0.tmp", "/tmp/other.json") is None
    huge = prefix.replace(f".{os.getpid()}.", ".9999999999.")
    assert _files.temp_owner(f"{huge}0.tmp", f"/tmp/{long_name}") is None


# --- names within the system's limits ------------------------------------------------------------


@pytest.mark.parametrize("option", ["--db", "--history", "--timeline"])
def test_a_legal_255_byte_name_works(tmp_path: Path, option: str) -> None:
    paths = {"--db": str(tmp_path / "tickets.json"), option: str(tmp_path / ("n" * 255))}
    result = invoke(*_args("run", paths))
    assert result.exit_code == 0, result.output
    assert (tmp_path / ("n" * 255)).is_file()
    made = {"n" * 255} | ({"tickets.json"} if option != "--db" else set())
    assert {p.name for p in tmp_path.iterdir()} == made  # no temp file behind


def test_a_255_byte_db_with_a_file_lock_is_refused_up_front(tmp_path: Path) -> None:
    """Its lock file's name, ``<db>.lock``, would be 260 bytes."""
    db = tmp_path / ("n" * 255)
    result = invoke(*_args("run", {"--db": str(db)}, "filelock"))
    assert_refused(result.exit_code, result.stderr, "--db", "longer than the system allows")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fault", ["too-long", "loop"])
@pytest.mark.parametrize(("command", "option"), PATH_OPTIONS, ids=IDS)
def test_a_name_too_long_or_a_symlink_loop_is_refused_before_anything_runs(
    tmp_path: Path, good: dict[str, Path], command: str, option: str, fault: str
) -> None:
    if fault == "too-long":
        bad, words = str(tmp_path / ("n" * 252 + ".svg")), "longer than the system allows"
    else:
        (tmp_path / "a.svg").symlink_to(tmp_path / "b.svg")
        (tmp_path / "b.svg").symlink_to(tmp_path / "a.svg")
        bad, words = str(tmp_path / "a.svg"), "loop of symlinks"
    before = _snapshot(good["--db"].parent)
    result = invoke(*_args(command, _paths_for(command, option, bad, good)))
    assert_refused(result.exit_code, result.stderr, option, words)
    assert _snapshot(good["--db"].parent) == before


# --- output folders, up front; full and read-only file systems ----------------------------------


@contextlib.contextmanager
def mounted(folder: Path, options: str) -> Iterator[Path]:
    """A tmpfs at ``folder`` with ``options``, unmounted afterwards."""
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


OUTPUTS = [
    ("run", "--history", "h.jsonl"),
    ("run", "--timeline", "t.html"),
    ("replay", "--history", "h.jsonl"),
    ("replay", "--timeline", "t.html"),
    ("compare", "--plot", "p.svg"),
]
OUTPUT_IDS = [f"{c}{o}" for c, o, _ in OUTPUTS]


@pytest.mark.parametrize(("command", "option", "name"), OUTPUTS, ids=OUTPUT_IDS)
def test_an_output_on_a_read_only_file_system_is_refused_before_the_sale(
    tmp_path: Path, good: dict[str, Path], command: str, option: str, name: str
) -> None:
    before = good["--db"].read_bytes()
    with mounted(tmp_path / "ro", "ro,size=64k") as folder:
        result = invoke(*_args(command, {"--db": str(good["--db"]), option: str(folder / name)}))
        # The machine's refusal (exit 4), as when it comes mid-write, found before the sale.
        assert_refused(result.exit_code, result.stderr, option, "read-only file system", 4)
        assert result.stdout == ""  # refused before the sale, not after
    assert good["--db"].read_bytes() == before  # the sale never ran: the db not reset


@pytest.mark.parametrize("command", ["run", "reset"])
def test_a_db_on_a_read_only_file_system_is_refused(tmp_path: Path, command: str) -> None:
    with mounted(tmp_path / "ro", "ro,size=64k") as folder:
        result = invoke(*_args(command, {"--db": str(folder / "tickets.json")}))
        assert_refused(result.exit_code, result.stderr, "--db", "read-only file system", 4)


def test_show_of_a_missing_sqlite_store_on_a_read_only_file_system_says_it_is_missing(
    tmp_path: Path,
) -> None:
    """show only reads: that the folder could not take the file does not matter."""
    with mounted(tmp_path / "ro", "ro,size=64k") as folder:
        result = invoke("show", "--store", f"sqlite:///{folder}/nope.sqlite")
        assert_refused(result.exit_code, result.stderr, "--store", "no such file")


@pytest.mark.parametrize(("command", "option", "name"), OUTPUTS, ids=OUTPUT_IDS)
def test_an_output_in_a_missing_folder_is_refused_before_the_sale(
    tmp_path: Path, good: dict[str, Path], command: str, option: str, name: str
) -> None:
    """Refused before too, but without naming the missing folder: the message does now."""
    before = good["--db"].read_bytes()
    path = tmp_path / "missing" / name
    result = invoke(*_args(command, {"--db": str(good["--db"]), option: str(path)}))
    assert_refused(result.exit_code, result.stderr, option, "does not exist")
    assert good["--db"].read_bytes() == before


def _fill(folder: Path) -> None:
    """Fill the file system at ``folder`` to the last byte."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"x" * size)
    finally:
        os.close(fd)


@pytest.mark.parametrize(("command", "option", "name"), OUTPUTS, ids=OUTPUT_IDS)
def test_an_output_on_a_full_disk_is_exit_4_after_the_report_and_leaves_nothing(
    tmp_path: Path, good: dict[str, Path], command: str, option: str, name: str
) -> None:
    with mounted(tmp_path / "full", "size=64k") as folder:
        _fill(folder)
        args = [*_args(command, {"--db": str(good["--db"]), option: str(folder / name)}), "--json"]
        result = invoke(*args)
        assert_refused(result.exit_code, result.stderr, option, "No space left", exit_code=4)
        json.loads(result.stdout)  # the report was printed, whole
        assert sorted(p.name for p in folder.iterdir()) == ["filler"]  # no partial, no temp


def test_a_sqlite_store_on_a_full_disk_is_exit_4_and_leaves_no_file_it_made(
    tmp_path: Path,
) -> None:
    """Room for the db file, not for the SQLite store beside it: the machine's refusal
    (exit 4, one line), and no empty store left that the next run would refuse."""
    with mounted(tmp_path / "full", "size=64k") as folder:
        _fill(folder)
        filler = folder / "filler"
        os.truncate(filler, filler.stat().st_size - 8192)
        db = folder / "tickets.json"
        args = ["run", "--strategy", "sqlite-update", "--buyers", "3", "--delay", "0"]
        result = invoke(*args, "--db", str(db))
        assert_refused(result.exit_code, result.stderr, "--store", "disk is full", 4)
        assert sorted(p.name for p in folder.iterdir()) == ["filler", "tickets.json"]


def test_the_library_writers_refuse_special_files_and_a_full_disk(
    tmp_path: Path, good: dict[str, Path]
) -> None:
    result = run_sale(
        RunConfig(buyers=1, tickets=1, strategy="lock", db_path=good["--db"], delay=0.0)
    )
    report = build_report(result)
    rows = compare(RunConfig(buyers=1, tickets=1, db_path=good["--db"], delay=0.0), ["lock"])
    fifo = tmp_path / "fifo.svg"
    os.mkfifo(fifo)
    writers: list[Callable[[Path], None]] = [
        lambda p: history.save(p, result),
        lambda p: write_timeline(p, result, report),
        lambda p: write_plot(p, rows, "title"),
    ]
    for write in writers:
        with pytest.raises(errors.PathError, match="is a FIFO"):
            write(fifo)
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    with pytest.raises(DbError, match="is a FIFO"):
        run_sale(RunConfig(buyers=1, tickets=1, strategy="lock", db_path=fifo))
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    with mounted(tmp_path / "full", "size=64k") as folder:
        _fill(folder)
        for write in writers:
            with pytest.raises(errors.SystemRefused, match="No space left"):
                write(folder / "out.svg")
        assert sorted(p.name for p in folder.iterdir()) == ["filler"]


# --- what belongs to the user stays as it was --------------------------------------------


@pytest.mark.skipif(not ROOT, reason="giving a file away needs root")
@pytest.mark.parametrize(
    "args",
    [
        ["run", "--lock", "--buyers", "2", "--delay", "0"],
        ["run", "--strategy", "value", "--buyers", "2", "--delay", "0", "--keep"],
        ["run", "--strategy", "office", "--buyers", "2", "--delay", "0"],
        ["reset", "--tickets", "4"],
    ],
    ids=["run-lock", "run-value-keep", "run-office", "reset"],
)
def test_the_owner_and_group_of_the_db_survive(db_path: Path, args: list[str]) -> None:
    db_path.write_text(SOLD)
    os.chown(db_path, 12345, 23456)
    db_path.chmod(0o640)
    result = invoke(*args, "--db", str(db_path))
    assert result.exit_code == 0, result.output
    found = db_path.stat()
    assert (found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)) == (12345, 23456, 0o640)


EXTRA = {"venue": {"name": "Hall", "seats": [1, 2]}, "organiser": "mine"}


@pytest.mark.parametrize("strategy", ["lock", "filelock", "office", "value", "array", "manager"])
def test_unknown_top_level_keys_survive_a_kept_run(db_path: Path, strategy: str) -> None:
    raw = json.loads(SOLD)
    db_path.write_text(json.dumps({**raw, **EXTRA}))
    result = invoke(
        "run", "--keep", "--strategy", strategy, "--buyers", "2", "--delay", "0",
        "--db", str(db_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    after = json.loads(db_path.read_text())
    assert {key: after.get(key) for key in EXTRA} == EXTRA
    assert after["remaining"] == 0
    shown = json.loads(invoke("show", "--json", "--db", str(db_path)).stdout)
    assert {key: shown.get(key) for key in EXTRA} == EXTRA


DUPLICATES = {
    "top-level": SOLD.replace('"tickets": 3', '"tickets": 3, "tickets": 30'),
    "in-a-sale": SOLD.replace('"seat": 1', '"seat": 1, "seat": 2'),
    "in-a-sale-other-layout": json.dumps(json.loads(SOLD), indent=1).replace(
        '"seat": 1', '"seat": 1, "seat": 2'
    ),
}


@pytest.mark.parametrize("text", list(DUPLICATES.values()), ids=list(DUPLICATES))
@pytest.mark.parametrize("args", [["run", "--keep", "--lock"], ["show"]], ids=["run-keep", "show"])
def test_a_db_with_a_key_given_twice_is_refused_as_ambiguous(
    db_path: Path, text: str, args: list[str]
) -> None:
    db_path.write_text(text)
    done = invoke(*args, "--db", str(db_path), *(["--delay", "0"] if args[0] == "run" else []))
    assert_refused(done.exit_code, done.stderr, "--db", "appears twice in one object (ambiguous)")
    assert db_path.read_text() == text


def test_a_history_line_with_a_key_given_twice_is_refused(
    tmp_path: Path, good: dict[str, Path]
) -> None:
    lines = good["--history"].read_text().splitlines()
    lines[1] = lines[1].replace('"buyer": ', '"buyer": 1, "buyer": ', 1)
    doubled = tmp_path / "doubled.jsonl"
    doubled.write_text("\n".join(lines) + "\n")
    result = invoke("check", "--history", str(doubled), "--db", str(good["--db"]))
    assert_refused(result.exit_code, result.stderr, "--history", "line 2: the key")
    assert "twice" in result.stderr


def test_a_sqlite_store_the_machine_will_not_let_be_made_is_exit_4_not_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its folder was vetted: what refuses the file's making now is the machine (the
    open-file limit, a disk gone bad), which is exit 4."""

    def refused(path: str, flags: int, mode: int = 0o777) -> int:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    store = SqliteStore(str(tmp_path / "new.sqlite"))
    monkeypatch.setattr(os, "open", refused)
    made_not = r"could not be made \(Too many open files\); check the disk"
    with pytest.raises(errors.SystemRefused, match=made_not):
        store.load(dbfile.TicketDB.fresh(3))


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--delay", "0"],
        ["replay", "--schedule", "1r 1w"],
        ["explore", "--buyers", "1"],
        ["hunt", "--buyers", "1", "--max-examples", "1", "--pct-runs", "0"],
        ["compare", "--delay", "0"],
    ],
    ids=lambda c: c[0],
)
@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_the_sqlite_file_beside_the_db_is_the_one_named_when_it_cannot_be_used(
    tmp_path: Path, command: list[str], kind: str
) -> None:
    """A SQLite strategy sells from a file beside the db: when that is a FIFO or a
    folder, explore, hunt and compare named the db (which did not exist) instead."""
    db, beside = tmp_path / "tickets.json", tmp_path / "tickets.sqlite"
    if kind == "fifo":
        os.mkfifo(beside)
    else:
        beside.mkdir()
    result = invoke(*command, "--strategy", "sqlite-naive", "--db", str(db), "--timeout", "5")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"ticketsim: error: --store={beside}: is a ")
    assert len(result.stderr.splitlines()) == 1
    assert not db.exists()


@pytest.mark.parametrize("command", [["reset"], ["run", "--lock", "--buyers", "2", "--delay", "0"]])
@pytest.mark.parametrize(
    ("content", "replaced"),
    [
        (b"my thesis, chapter 1\n", False),
        (b'{"type": "sale", "format": "ticketsim-history/2", "generator": "ticketsim"}\n', False),
        (b'{"name": "not tickets"}', False),
        (b"", True),
        (b'{\n  "format": "ticketsim/1",\n  "ev', True),  # what open('w') of `none` left
        (b'{"event": "Mine", "tickets": 3, "remaining": 3, "ledger": []}', True),  # by hand
    ],
    ids=["notes", "history", "other-json", "empty", "torn", "made-by-hand"],
)
def test_a_db_that_is_no_ticket_db_is_never_replaced(
    tmp_path: Path, command: list[str], content: bytes, replaced: bool
) -> None:
    """'reset --db notes.txt' made the user's notes a ticket db; a history given as --db
    by mistake went the same way. A ticket db, or one a sale left torn, is reset."""
    db = tmp_path / "named.txt"
    db.write_bytes(content)
    done = invoke(*command, "--db", str(db))
    if replaced:
        assert done.exit_code in (0, 1), done.output
        assert dbfile.load(db).format == dbfile.FORMAT
    else:
        assert_refused(done.exit_code, done.stderr, "--db", "not a ticket db")
        assert db.read_bytes() == content
        assert sorted(p.name for p in tmp_path.iterdir()) == ["named.txt"]
