"""Faults and bad input, in one place: every case of the table is a test with an id.

* bad dbs and bad arguments: one line on stderr naming the value, exit 2, no
  traceback, and the db byte for byte as it was;
* faults: killed lock holders, buyers killed at random points, a writer killed
  mid-write 200 times, failed writes, Ctrl-C and SIGTERM, stale lock files,
  symlinked, permission-restricted and read-only dbs.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sales import SERVERS, descendants, sale, script
from typer.testing import CliRunner

from ticketsim.analysis.checker import check_db
from ticketsim.analysis.report import build_report
from ticketsim.cli import app
from ticketsim.core import _files
from ticketsim.core import db as dbfile
from ticketsim.core._files import sweep_temp_files
from ticketsim.core.catalog import CATALOG
from ticketsim.core.events import Step
from ticketsim.core.exits import ExitCode
from ticketsim.core.names import StoreKind
from ticketsim.core.settings import RunConfig
from ticketsim.engine.runner import run_sale
from ticketsim.engine.strategies import STRATEGIES
from ticketsim.errors import ConfigError
from ticketsim.sale.steps import Pacer

if TYPE_CHECKING:
    from collections.abc import Callable

    from typer.testing import Result

#: The stall guard in tests that kill buyers: long enough that a loaded 2-core machine
#: never looks stalled when it is only slow, short enough to keep the suite quick.
STALL_S = 3.0

runner = CliRunner()
FAST = ["--delay", "0", "--timeout", "20"]
#: The safe strategies of the db file, and of each database a few that stand for its
#: ways of being safe (a lock, a retry, an atomic step): each kill costs a second sale
#: of a server, and every database strategy is killed in tests/engine/test_claims.py.
SAFE = [name.value for name, s in CATALOG.items() if s.safe and s.store is StoreKind.FILE] + [
    "sqlite-deferred",
    "pg-for-update",
    "pg-serializable",
    "redis-lock",
    "redis-decr",
]


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), catch_exceptions=False, prog_name="ticketsim")


def assert_one_line_error(result: Result, code: int, message: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ticketsim: error: ")
    assert message in lines[0]
    assert "Traceback" not in result.output


# --- bad dbs (with --keep, the db is sold from as it is, so it must be sound) ------------

GOOD = dbfile.dumps(dbfile.TicketDB.fresh(3))
SOLD = dbfile.TicketDB.fresh(3).sell(dbfile.Sale("buyer-1", 1, 7, 1.0))


def _db(**changes: Any) -> str:
    raw = {**json.loads(dbfile.dumps(SOLD)), **changes}
    return json.dumps(raw)


BAD_DBS: list[tuple[str, str | bytes | None, str]] = [
    ("missing", None, "no such file"),
    ("empty", "", "the file is empty"),
    ("not-json", "tickets: 3", "not valid JSON"),
    ("truncated", GOOD[:30], "not valid JSON"),
    ("utf8-bom", "\ufeff" + GOOD, "byte-order mark"),
    ("trailing-garbage", GOOD + "}}", "not valid JSON (Extra data"),
    ("top-level-list", "[" + GOOD + "]", "the top level must be a JSON object, got list"),
    ("deeply-nested", "[" * 100_000, "nested too deeply"),
    ("not-utf8", b"\xff\xfe{}", "is not UTF-8 text"),
    ("tickets-a-string", _db(tickets="3"), 'tickets must be a whole number, got "3"'),
    ("remaining-true", _db(remaining=True), "remaining must be a whole number, got true"),
    ("tickets-a-float", _db(tickets=3.0), "tickets must be a whole number, got 3.0"),
    ("remaining-nan", _db().replace('"remaining": 2', '"remaining": NaN'), "NaN is not a number"),
    ("negative-remaining", _db(remaining=-1), "remaining=-1 is below zero"),
    ("negative-tickets", _db(tickets=-1, remaining=0, ledger=[]), "tickets=-1 is below zero"),
    ("remaining-above-tickets", _db(remaining=9), "remaining=9 is more than the 3 tickets"),
    ("ledger-not-a-list", _db(ledger={"seat": 1}), "ledger must be a list, got dict"),
    ("ledger-disagrees", _db(remaining=3), "plus 1 sale(s) in the ledger is not the 3 tickets"),
    (
        "seat-sold-twice",
        _db(remaining=1, ledger=[json.loads(dbfile.dumps(SOLD))["ledger"][0]] * 2),
        "sells seat 1 2 times",
    ),
    ("missing-keys", '{"tickets": 3}', "lacks the key(s) event, ledger, remaining"),
    (
        # A --keep run wrote the sale back without it: lost without a word.
        "a-sale-key-not-kept",
        _db(ledger=[{**json.loads(dbfile.dumps(SOLD))["ledger"][0], "email": "a@b"}]),
        'ledger[0] has "email", which ticketsim does not keep in a sale',
    ),
    (
        "too-many-tickets",
        _db(tickets=10**30, remaining=10**30 - 1),
        f"tickets={10**30} is more than ticketsim sells (1000000)",
    ),
]


@pytest.mark.parametrize(
    ("content", "message"), [c[1:] for c in BAD_DBS], ids=[c[0] for c in BAD_DBS]
)
def test_a_bad_db_is_refused_and_left_as_it_was(
    db_path: Path, content: str | bytes | None, message: str
) -> None:
    if isinstance(content, str):
        db_path.write_text(content, encoding="utf-8")
    elif isinstance(content, bytes):
        db_path.write_bytes(content)
    before = db_path.read_bytes() if db_path.exists() else None
    result = invoke("run", "--keep", "--lock", "--db", str(db_path), *FAST)
    assert_one_line_error(result, ExitCode.BAD_INPUT, message)
    assert f"--db={db_path}" in result.stderr
    # One piece of advice, the error's own or --keep's, never both.
    assert result.stderr.count("; ") == 1, result.stderr
    assert result.stderr.count("--keep") <= 1, result.stderr
    assert (db_path.read_bytes() if db_path.exists() else None) == before


def test_a_sale_key_ticketsim_does_not_keep_is_only_refused_where_it_would_be_lost(
    db_path: Path,
) -> None:
    """Reading such a db loses nothing ('show', 'check'); a --keep run would."""
    sale = {**json.loads(dbfile.dumps(SOLD))["ledger"][0], "email": "a@b"}
    db_path.write_text(_db(ledger=[sale]))
    assert invoke("show", "--db", str(db_path)).exit_code == 0
    refused = invoke("run", "--keep", "--lock", "--db", str(db_path), *FAST)
    assert refused.exit_code == ExitCode.BAD_INPUT


def test_a_db_too_large_to_be_one(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db_path.write_text(GOOD)
    monkeypatch.setattr(dbfile, "MAX_DB_BYTES", 64)
    result = invoke("run", "--keep", "--lock", "--db", str(db_path), *FAST)
    assert_one_line_error(result, ExitCode.BAD_INPUT, "larger than 64 bytes, the most a db")
    assert db_path.read_text() == GOOD


def test_a_db_path_that_is_a_folder(tmp_path: Path) -> None:
    result = invoke("run", "--lock", "--db", str(tmp_path), *FAST)
    assert_one_line_error(result, ExitCode.BAD_INPUT, "is a directory")


BAD_ARGS = [
    (["--kill", "-1"], "--kill=-1"),
    (["--kill", "9", "--buyers", "3"], "--kill=9: choose from 0 to 3"),
    (["--kill-holder", "--pool", "2"], "--kill-holder=True: a killed pool worker"),
    (["--kill", "1", "--lockstep"], "--kill=1: a forced interleaving waits"),
    (["--timeout", "inf"], "--timeout=inf: must be a number of seconds"),
    (["--delay", "nan"], "--delay=nan: must be a number of seconds"),
    (["--seed", "-5"], "--seed=-5"),
    (["--buyers", "200000"], "--buyers=200000: choose from 1 to 100000 buyers"),
    (["--buyers", "300", "--kill", "1"], "which ticketsim runs up to 200 buyers; lower --buyers"),
    (["--pool", "1001", "--buyers", "5000"], "--pool=1001"),
]


@pytest.mark.parametrize(("args", "message"), BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_bad_arguments_are_refused_before_anything_runs(
    db_path: Path, args: list[str], message: str
) -> None:
    db_path.write_text(GOOD)
    result = invoke("run", "--db", str(db_path), *args)
    assert_one_line_error(result, ExitCode.BAD_INPUT, message)
    assert db_path.read_text() == GOOD


# --- killed buyers -------------------------------------------------------------------------


#: The command line's path is the same for every strategy of a store; the library's
#: is checked on every strategy (tests/engine/test_claims.py). Each database strategy
#: here starts its private server, as a user's run does.
ON_THE_COMMAND_LINE = [n.value for n in STRATEGIES if CATALOG[n].store is StoreKind.FILE] + [
    "sqlite-immediate",
    "pg-skip-locked",
    "redis-decr",
    "redis-lock",
]


@pytest.mark.parametrize("strategy", ON_THE_COMMAND_LINE)
def test_kill_holder_from_the_command_line(db_path: Path, strategy: str) -> None:
    history = db_path.parent / "run.jsonl"
    result = invoke(
        "run",
        "--kill-holder",
        "--strategy",
        strategy,
        "--buyers",
        "4",
        "--tickets",
        "3",
        "--timeout",
        str(STALL_S),
        "--delay",
        "0",
        "--json",
        "--start-method",
        "fork",
        "--db",
        str(db_path),
        "--history",
        str(history),
    )
    report = json.loads(result.stdout)
    survives = CATALOG[strategy].claims.killed_holder  # type: ignore[index]
    assert len(report["faults"]) == 1
    victim = report["faults"][0].split()[0]
    if not survives:
        assert result.exit_code == ExitCode.STALLED
        assert report["verdict"].endswith("; 3 buyer(s) never got to buy")
        assert CATALOG[strategy].holding in report["faults"][0]  # type: ignore[index]
    elif CATALOG[strategy].safe and CATALOG[strategy].claims.crash_consistent:  # type: ignore[index]
        assert result.exit_code == ExitCode.OK, report["verdict"]
    elif CATALOG[strategy].safe:  # type: ignore[index]
        # The victim's count went, its sale never came: a ticket nobody holds, which
        # nobody else can buy either.
        kinds = {v["kind"] for v in report["violations"]}
        assert "count-mismatch" in kinds
        assert kinds <= {"count-mismatch", "undersold"}
    else:  # unprotected: whether the others also race is up to the scheduler
        assert result.exit_code in (ExitCode.OK, ExitCode.VIOLATED)
    rows = [json.loads(line) for line in history.read_text().splitlines()[1:]]
    mine = [r for r in rows if f"buyer-{r['buyer']}" == victim]
    assert mine[-1]["type"] == "info"  # an unknown outcome, not a sale
    assert mine[-1]["step"] == "lost"
    assert not any(r["type"] == "ok" for r in mine)


@pytest.mark.parametrize("strategy", SAFE)
@settings(max_examples=4)
@given(kill=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), tickets=st.integers(1, 5))
def test_killing_buyers_at_random_points_breaks_no_invariant_of_a_safe_strategy(
    strategy: str, kill: int, seed: int, tickets: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        result = run_sale(
            RunConfig(
                db_path=Path(folder) / "t.json",
                strategy=strategy,
                buyers=5,
                tickets=tickets,
                kill=kill,
                seed=seed,
                delay=0.0,
                timeout=STALL_S,
                start_method="fork",
            ),
            servers=SERVERS,
        )
    report = build_report(result)
    assert result.final is not None  # the db always parses
    assert len(result.faults) <= kill
    if result.stalled is None and not CATALOG[strategy].claims.crash_consistent:  # type: ignore[index]
        # Only a ticket nobody holds, never one sold twice or a told sale missing.
        kinds = {v.kind.value for v in report.violations}
        assert kinds <= {"count-mismatch", "undersold"}, report.verdict
    elif result.stalled is None:
        assert report.ok, report.verdict  # every acknowledged sale is in the ledger, once
        assert check_db(result.final) == []
    else:
        # Only a lock with no owner stalls, and only when a victim died holding it.
        assert not CATALOG[strategy].claims.killed_holder  # type: ignore[index]
        assert any("its critical section" in f for f in result.faults)
    assert multiprocessing.active_children() == []


def _write_forever(path: str, acks: Any) -> None:
    """A writer that sells a seat, writes the db atomically, then acknowledges it."""
    while True:
        db = dbfile.load(path)
        seat = db.next_seat()
        dbfile.write_atomic(path, db.sell(dbfile.Sale(f"buyer-{seat}", seat, os.getpid(), 1.0)))
        acks.send(seat)


def test_a_writer_killed_at_random_instants_200_times_never_loses_an_acknowledged_sale(
    db_path: Path,
) -> None:
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(2026)
    dbfile.write_atomic(db_path, dbfile.TicketDB.fresh(10**6))
    acknowledged: set[int] = set()
    for _ in range(200):
        reader, writer = ctx.Pipe(duplex=False)
        process = ctx.Process(target=_write_forever, args=(str(db_path), writer), daemon=True)
        process.start()
        writer.close()
        time.sleep(rng.uniform(0, 0.004))
        process.kill()
        process.join(5)
        while reader.poll():
            try:
                acknowledged.add(reader.recv())
            except EOFError:
                break
        reader.close()
        db = dbfile.load(db_path)  # parses, every time
        assert check_db(db) == []
        assert acknowledged <= {s.seat for s in db.ledger}
    assert len(acknowledged) > 0
    # A writer killed between creating its temp file and renaming it leaves the file;
    # the next run sweeps those of dead writers away.
    leftovers = {p.name for p in db_path.parent.iterdir()} - {db_path.name}
    assert all(_files.temp_owner(n, str(db_path)) for n in leftovers)
    assert sorted(sweep_temp_files(db_path)) == sorted(leftovers)
    assert [p.name for p in db_path.parent.iterdir()] == [db_path.name]


def test_the_sweep_leaves_a_live_writers_temp_file(db_path: Path) -> None:
    db_path.write_text(GOOD)
    live = db_path.parent / f"{_files.temp_prefix(str(db_path))}0.tmp"
    live.write_text("half")
    dead = db_path.parent / live.name.replace(f".{os.getpid()}.", ".999999999.")
    dead.write_text("half")
    other_db = str(db_path.parent / "other.json")
    other_name = f"{_files.temp_prefix(other_db)}0.tmp"
    other = db_path.parent / other_name.replace(f".{os.getpid()}.", ".999999999.")
    other.write_text("not ours")
    assert sweep_temp_files(db_path) == [dead.name]
    assert live.exists()
    assert other.exists()


# --- failed writes ---------------------------------------------------------------------------


def _fail_nth_replace(monkeypatch: pytest.MonkeyPatch, nth: int) -> None:
    """Make the nth commit of an atomic write (``ticketsim.core._files.commit``) fail: disk full.

    The count lives in shared memory, so forked buyers count together with the parent.
    """
    count = multiprocessing.get_context("fork").Value("i", 0)
    real = _files.commit

    def commit(temp: str, target: str) -> bool:
        with count.get_lock():
            count.value += 1
            failing = count.value == nth
        if failing:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(temp, target)

    monkeypatch.setattr(_files, "commit", commit)  # every atomic write commits through it


@pytest.mark.parametrize("strategy", ["lock", "filelock", "office"])
def test_a_write_that_fails_mid_sale_keeps_the_db_and_exits_4(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, strategy: str
) -> None:
    _fail_nth_replace(monkeypatch, 3)  # 1: the reset; 2: the first sale; 3: the second
    result = invoke(
        "run",
        "--strategy",
        strategy,
        "--buyers",
        "4",
        "--tickets",
        "4",
        "--json",
        "--start-method",
        "fork",
        "--db",
        str(db_path),
        *FAST,
    )
    monkeypatch.undo()
    assert result.exit_code == ExitCode.IO_ERROR
    report = json.loads(result.stdout)
    reason = "the ticket office could not write it" if strategy == "office" else "No space"
    assert report["io_error"].startswith(reason)
    assert result.stderr.count(str(db_path)) == 1  # named once, not twice
    assert "could not write the db" in result.stderr
    assert "Traceback" not in result.output
    db = dbfile.load(db_path)
    assert check_db(db) == []
    assert len(db.ledger) == report["sold"] == 3  # the others went on; the failed one is not told
    left = {p.name for p in db_path.parent.iterdir()} - {f"{db_path.name}.lock"}
    assert left == {db_path.name}  # no temp file behind (filelock's lock file stays)


def test_a_reset_that_cannot_be_written_exits_4_and_changes_nothing(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db_path.write_text(GOOD)
    _fail_nth_replace(monkeypatch, 1)
    result = invoke("run", "--lock", "--db", str(db_path), *FAST)
    monkeypatch.undo()
    assert_one_line_error(result, ExitCode.IO_ERROR, "No space left on device")
    assert db_path.read_text() == GOOD
    assert [p.name for p in db_path.parent.iterdir()] == [db_path.name]


# --- Ctrl-C and SIGTERM -----------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize(
    ("strategy", "how", "code"),
    [
        ("lock", "ctrl-c", 130),
        ("value", "sigterm", 143),
        ("office", "ctrl-c", 130),
        ("manager", "sigterm", 143),
        ("manager", "group-sigterm", 143),  # the manager's process gets it too
        ("filelock", "sigterm", 143),
    ],
)
def test_an_interrupted_sale_ends_every_process_and_keeps_every_sale(
    db_path: Path, strategy: str, how: str, code: int
) -> None:
    program = subprocess.Popen(
        [
            script(),
            "run",
            "--buyers",
            "20",
            "--tickets",
            "10",
            "--strategy",
            strategy,
            "--delay",
            "0.2",
            "--start-method",
            "fork",
            "--db",
            str(db_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while len(descendants(program.pid)) < 20:  # every buyer is up
        assert program.poll() is None
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.5)  # well into the sale
    processes = descendants(program.pid)
    sent = time.monotonic()
    if how == "ctrl-c":
        os.killpg(program.pid, signal.SIGINT)  # what the terminal does
    elif how == "group-sigterm":
        os.killpg(program.pid, signal.SIGTERM)
    else:
        os.kill(program.pid, signal.SIGTERM)
    _, err = program.communicate(timeout=30)
    assert program.returncode == code
    assert "every buyer process was ended and the db keeps every sale made" in err
    assert "Traceback" not in err
    assert time.monotonic() - sent < 2.0
    assert [p for p in processes if Path(f"/proc/{p}").exists()] == []
    db = dbfile.load(db_path)
    assert check_db(db) == []  # valid, and consistent with its ledger


@pytest.mark.parametrize("pool", [None, 2])
def test_an_interrupt_while_buyers_start_leaves_no_buyer_behind(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, pool: int | None
) -> None:
    """Ctrl-C lands right after a buyer's fork, before the parent has it on its list."""
    started: list[multiprocessing.process.BaseProcess] = []
    real_start = multiprocessing.process.BaseProcess.start

    def start(process: multiprocessing.process.BaseProcess) -> None:
        real_start(process)
        started.append(process)
        if len(started) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # the worst moment: forked, not yet listed

    monkeypatch.setattr(multiprocessing.process.BaseProcess, "start", start)
    try:
        with pytest.raises(KeyboardInterrupt):
            sale(db_path, strategy="lock", buyers=4, tickets=2, pool=pool, start_method="fork")
        left = [p for p in started if p.is_alive()]
        assert left == []
    finally:
        for process in started:
            process.kill()
            process.join(5)
    assert check_db(dbfile.load(db_path)) == []


# --- lock files, links, modes -----------------------------------------------------------------


def test_a_stale_lock_file_does_not_block_the_next_run(db_path: Path) -> None:
    Path(str(db_path) + ".lock").write_text("left behind by a program that died\n")
    result = invoke(
        "run",
        "--strategy",
        "filelock",
        "--buyers",
        "3",
        "--tickets",
        "2",
        "--json",
        "--db",
        str(db_path),
        *FAST,
    )
    assert result.exit_code == ExitCode.OK
    assert json.loads(result.stdout)["sold"] == 2


def test_a_lock_held_by_a_killed_program_does_not_block_the_next_run(db_path: Path) -> None:
    from ticketsim.engine.strategies import lock_file

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, filelock; l = filelock.FileLock(sys.argv[1]); l.acquire(); "
            "print('held', flush=True); time.sleep(60)",
            lock_file(str(db_path)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait(10)
    holder.stdout.close()
    result = invoke(
        "run",
        "--strategy",
        "filelock",
        "--buyers",
        "3",
        "--tickets",
        "2",
        "--json",
        "--db",
        str(db_path),
        "--delay",
        "0",
        "--timeout",
        "5",
    )
    assert result.exit_code == ExitCode.OK
    assert json.loads(result.stdout)["sold"] == 2


@pytest.mark.parametrize("strategy", ["lock", "none", "value"])
def test_a_symlinked_db_is_written_through_and_stays_a_link(tmp_path: Path, strategy: str) -> None:
    target = tmp_path / "real.json"
    target.write_text(GOOD)
    link = tmp_path / "tickets.json"
    link.symlink_to(target)
    # Unprotected writes that overlap can interleave their bytes: --lockstep takes the
    # writes in turn, so that the db left behind parses whatever the timing.
    forced = ["--lockstep"] if strategy == "none" else []
    result = invoke(
        "run",
        "--strategy",
        strategy,
        "--buyers",
        "2",
        "--tickets",
        "5",
        "--db",
        str(link),
        *forced,
        *FAST,
    )
    assert result.exit_code in (ExitCode.OK, ExitCode.VIOLATED)
    assert link.is_symlink()
    assert os.readlink(link) == str(target)
    assert dbfile.load(target).remaining < 5


def test_the_db_keeps_its_permission_bits(db_path: Path) -> None:
    db_path.write_text(GOOD)
    db_path.chmod(0o640)
    result = invoke("run", "--lock", "--buyers", "2", "--db", str(db_path), *FAST)
    assert result.exit_code == ExitCode.OK
    assert db_path.stat().st_mode & 0o777 == 0o640


def _as_nobody(action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``action`` as an unprivileged user (root ignores file modes), in a fork of this
    process: the interpreter there cannot be started by another user."""
    if os.geteuid() != 0:
        return action()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.setgid(65534)
            os.setuid(65534)
            out = json.dumps(action())
        except BaseException as exc:
            out = json.dumps({"crash": repr(exc)})
        os.write(writer, out.encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        data: dict[str, Any] = json.loads(pipe.read())
    os.waitpid(pid, 0)
    return data


@pytest.mark.parametrize("what", ["folder", "file"])
def test_a_read_only_db_or_folder_is_refused_with_a_clear_message(what: str) -> None:
    folder = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        db = folder / "tickets.json"
        db.write_text(GOOD)
        db.chmod(0o444 if what == "file" else 0o644)
        folder.chmod(0o555 if what == "folder" else 0o777)

        def attempt() -> dict[str, Any]:
            result = invoke("run", "--lock", "--buyers", "2", "--db", str(db), *FAST)
            return {"code": result.exit_code, "stderr": result.stderr, "out": result.output}

        seen = _as_nobody(attempt)
        assert "crash" not in seen, seen
        assert seen["code"] == ExitCode.BAD_INPUT
        assert seen["stderr"].count("\n") == 1
        assert ("the folder" if what == "folder" else "the file is read-only") in seen["stderr"]
        assert "Traceback" not in seen["out"]
        assert db.read_text() == GOOD
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


@pytest.mark.parametrize("what", ["folder", "file"])
def test_a_read_only_db_or_folder_is_refused_even_to_root(tmp_path: Path, what: str) -> None:
    """Root may write anything: a file or folder with no write bit was rewritten when
    ticketsim ran as root (the tests do), where its owner had said keep it."""
    folder = tmp_path / "kept"
    folder.mkdir()
    db = folder / "tickets.json"
    db.write_text(GOOD)
    try:
        db.chmod(0o444 if what == "file" else 0o644)
        folder.chmod(0o555 if what == "folder" else 0o755)
        result = invoke("run", "--keep", "--lock", "--buyers", "2", "--db", str(db), *FAST)
        assert result.exit_code == ExitCode.BAD_INPUT, result.output
        assert result.stderr.count("\n") == 1
        assert ("the folder" if what == "folder" else "the file is read-only") in result.stderr
        assert db.read_text() == GOOD
        assert sorted(p.name for p in folder.iterdir()) == ["tickets.json"]
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("strategy", ["value", "array", "manager", "filelock", "office", "lock"])
def test_a_buyer_killed_after_its_write_still_made_its_sale(db_path: Path, strategy: str) -> None:
    """The soak found this one: a Value's count went down, but the buyer died before
    being told, and the ledger (then built from acknowledged sales) missed the sale."""
    from ticketsim.sale.buyer import Killer

    def after_write(ctx: Any, config: RunConfig) -> Killer:
        plan = (0, 3) + (0,) * (config.buyers - 1)  # buyer 1, after its write
        return Killer(plan, ctx.Array("i", config.buyers + 1))

    config = RunConfig(
        db_path=db_path,
        strategy=strategy,
        buyers=3,
        tickets=5,
        delay=0.0,
        timeout=STALL_S,
        start_method="fork",
    )
    result = run_sale(config, pacer=after_write)
    report = build_report(result)
    if CATALOG[strategy].claims.killed_holder:  # type: ignore[index]
        assert result.stalled is None, report.verdict
    # (A lock with no owner stalls whoever still waits for it; if buyer 1 happened to
    # come last, nobody does.)
    if result.stalled is None:
        assert report.ok, report.verdict
    assert result.final is not None
    assert check_db(result.final) == []  # count and ledger agree, whatever happened
    assert any(e.buyer == 1 and e.step is Step.WRITE for e in result.history)
    assert 1 in {int(s.buyer.split("-")[1]) for s in result.final.ledger}  # its sale stands
    # It died before it removed the old db its write swapped out: the run did.
    assert not [p.name for p in db_path.parent.iterdir() if p.name.endswith(".tmp")]


class _HangAfterWrite(Pacer):
    """Buyer 1 hangs once it has written its sale, before it is told the outcome."""

    def done(self, number: int) -> None:
        if number == 1:
            time.sleep(60)  # the stall guard ends it long before


def test_a_stalled_buyer_that_wrote_its_sale_is_not_said_never_to_have_bought(
    db_path: Path,
) -> None:
    result = sale(
        db_path, strategy="lock", buyers=1, tickets=1, timeout=1.0,
        pacer=lambda ctx, config: _HangAfterWrite(),
    )  # fmt: skip
    report = build_report(result)
    assert result.stalled is not None
    assert report.verdict.endswith(
        "; 0 buyer(s) never got to buy, 1 got as far as their write and were never told more"
    ), report.verdict
    assert report.wrote_unanswered == ("buyer-1",)


def test_lockstep_task_no_await_buyers_whose_windows_outlast_the_timeout_are_refused() -> None:
    """Their windows block the loop one after another, and none is told its outcome
    before all have had theirs: the sale could only stall, said as no progress."""
    with pytest.raises(ConfigError, match=r"^timeout=1\.0: with --lockstep, task-no-await"):
        RunConfig(strategy="task-no-await", worker_kind="asyncio", lockstep=True,
                  buyers=15, tickets=15, delay=0.1, timeout=1.0)  # fmt: skip
    RunConfig(strategy="task-no-await", worker_kind="asyncio", lockstep=True,
              buyers=15, tickets=15, delay=0.1, timeout=3.0)  # fmt: skip
