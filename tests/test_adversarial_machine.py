"""Issue 14, classes 3, 4 and the first item of 5: the machine refusing, ticketsim
killed, and Ctrl-C at any moment. Every test runs the real program in a subprocess
(the environment is passed through, so ``PYTHONPATH`` chooses the code under test).

* class 3: the process limit (``RLIMIT_NPROC``, enforced only for a real uid other
  than root: the child runs with another real uid and no capabilities, effective uid 0
  so that it can still read the interpreter) and the open-file limit, at several
  values so that the refusal lands at different moments; a closed, broken or full
  stdout; a terminal one column wide.
* class 4: ticketsim SIGKILLed, SIGHUPed or SIGTERMed mid-sale; every process of its
  tree is gone within 2 s.
* class 5: SIGINT at many moments of a short sale.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import multiprocessing
import os
import pty
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sales import descendants

from ticketsim.analysis.checker import check_db
from ticketsim.core import db as dbfile
from ticketsim.sale import _scratch, _signals
from ticketsim.sale.buyer import PauseHolder

if TYPE_CHECKING:
    from collections.abc import Iterator

PYTHON = sys.executable
FAST = ["--delay", "0", "--timeout", "5"]
SETPRIV = shutil.which("setpriv")


def _ticketsim(*args: str) -> list[str]:
    return [PYTHON, "-m", "ticketsim", *args]


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# --- class 3: the process limit and the open-file limit ---------------------------------


def _run_limited(
    tmp: Path, kind: int, limit: int, args: list[str]
) -> tuple[subprocess.CompletedProcess[str], int]:
    """``ticketsim run`` under ``limit`` of ``kind``; its result and the real uid used.

    As root it runs with a group of its own too, which every file it makes belongs to:
    none it made may be left in /dev/shm (multiprocessing's semaphores), wherever the
    limit refused it.
    """
    uid = 40000 + (os.getpid() * 31 + limit) % 20000  # a uid of its own: NPROC counts per uid
    prefix: list[str] = []
    if SETPRIV is not None and os.geteuid() == 0:
        prefix = [SETPRIV, f"--egid={uid}", "--keep-groups"]
    if kind == resource.RLIMIT_NPROC:
        assert prefix
        prefix += [f"--ruid={uid}", "--euid=0", "--bounding-set=-all", "--inh-caps=-all"]
    before = _shm_of(uid)

    def limit_it() -> None:
        os.umask(0)  # os.access asks as the real uid
        resource.setrlimit(kind, (limit, limit))

    tmp.chmod(0o777)
    result = subprocess.run(
        [*prefix, *_ticketsim("run", "--db", str(tmp / "t.json"), *args)],
        preexec_fn=limit_it,  # the limit, between fork and exec
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp,
        # Under a file size limit the interpreter itself, before ticketsim's code runs,
        # would leave cut-short bytecode in the suite's shared cache.
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        if kind == resource.RLIMIT_FSIZE
        else os.environ,
        check=False,
    )
    if prefix:
        assert sorted(_shm_of(uid) - before) == [], (limit, result.stderr)
    return result, uid


def _shm_of(group: int) -> set[str]:
    """The files in /dev/shm that belong to ``group``."""
    found = set()
    for path in Path("/dev/shm").iterdir():
        with contextlib.suppress(FileNotFoundError):  # another test's, gone meanwhile
            if path.lstat().st_gid == group:
                found.add(path.name)
    return found


def _open_folder(tmp_path: Path) -> Path:
    """A folder another real uid can reach (``os.access`` asks as the real uid, and
    pytest's own folders are 0700): in /tmp, removed with ``tmp_path``'s test."""
    folder = Path(tempfile.mkdtemp(dir="/tmp", prefix="ticketsim-limits-"))
    with (tmp_path / "folders").open("a") as listed:
        listed.write(f"{folder}\n")
    return folder


@pytest.fixture(autouse=True)
def _remove_open_folders(tmp_path: Path) -> Iterator[None]:
    yield
    listed = tmp_path / "folders"
    if listed.exists():
        for line in listed.read_text().split():
            shutil.rmtree(line, ignore_errors=True)


def _left_of(uid: int) -> list[str]:
    out = subprocess.run(
        ["ps", "-o", "pid=,stat=,args=", "-u", str(uid)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return [line for line in out.splitlines() if line.split()[1][0] != "Z"]


def _assert_refused_or_ran(result: subprocess.CompletedProcess[str], db: Path, uid: int) -> None:
    assert result.returncode in (0, 4), result.stderr
    if result.returncode == 4:
        line = _one_line(result.stderr)
        assert line.startswith("ticketsim: error: ")
        assert "limit" in line
        assert "raise the limit" in line
    assert _left_of(uid) == []
    if db.exists():
        assert check_db(dbfile.load(db)) == []


needs_setpriv = pytest.mark.skipif(
    SETPRIV is None or os.geteuid() != 0, reason="needs root and setpriv"
)


@needs_setpriv
@pytest.mark.parametrize(
    ("strategy", "method", "limits"),
    [
        ("lock", "fork", (1, 3, 5)),
        ("lock", "spawn", (1, 3)),
        ("lock", "forkserver", (3, 5)),
        ("manager", "fork", (2, 4, 10)),
        ("manager", "spawn", (4,)),
        ("manager", "forkserver", (3, 5)),
        ("office", "fork", (1, 2, 4)),
        ("office", "forkserver", (3,)),
    ],
)
def test_the_process_limit_is_exit_4_naming_it_and_leaves_nothing_running(
    tmp_path: Path, strategy: str, method: str, limits: tuple[int, ...]
) -> None:
    for limit in limits:
        folder = _open_folder(tmp_path)
        args = ["--buyers", "6", "--strategy", strategy, "--start-method", method, *FAST]
        result, uid = _run_limited(folder, resource.RLIMIT_NPROC, limit, args)
        assert result.returncode == 4, (limit, result.stderr)
        _assert_refused_or_ran(result, folder / "t.json", uid)


@needs_setpriv
@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_the_process_limit_with_a_pool_is_exit_4(tmp_path: Path, method: str) -> None:
    for limit in (2, 3, 5):
        folder = _open_folder(tmp_path)
        args = ["--buyers", "6", "--lock", "--pool", "2", "--start-method", method, *FAST]
        result, uid = _run_limited(folder, resource.RLIMIT_NPROC, limit, args)
        assert result.returncode == 4, (limit, result.stderr)
        _assert_refused_or_ran(result, folder / "t.json", uid)


@pytest.mark.parametrize("strategy", ["lock", "manager", "office", "sqlite-update"])
def test_the_open_file_limit_is_never_an_internal_error(tmp_path: Path, strategy: str) -> None:
    for limit in (30, 40, 60):
        folder = _open_folder(tmp_path)
        args = ["--buyers", "30", "--strategy", strategy, "--start-method", "fork", *FAST]
        result, _ = _run_limited(folder, resource.RLIMIT_NOFILE, limit, args)
        assert result.returncode in (0, 1, 2, 3, 4), result.stderr
        assert "internal error" not in result.stderr
        assert "Traceback" not in result.stderr
        if result.returncode == 4:
            assert "limit" in _one_line(result.stderr)


def test_the_file_size_limit_under_a_sqlite_store_is_exit_4_naming_it(tmp_path: Path) -> None:
    """SQLite says "disk I/O error" when the file-size limit refuses its write: the
    machine's refusal (exit 4), not an internal error."""
    folder = _open_folder(tmp_path)
    args = ["--buyers", "5", "--tickets", "100", "--strategy", "sqlite-update", *FAST]
    result, _ = _run_limited(folder, resource.RLIMIT_FSIZE, 8 * 1024, args)
    assert result.returncode == 4, result.stderr
    assert "ulimit -f" in _one_line(result.stderr)


def test_a_run_under_a_file_size_limit_leaves_no_cut_short_bytecode(tmp_path: Path) -> None:
    """Python ignores SIGXFSZ and writes a module's .pyc without checking the count: a
    run under ``ulimit -f`` that compiled a module first left its .pyc cut short in the
    cache, and every later run ended in "marshal data too short" (exit 70). The suite's
    own runs met it, sharing one cache."""
    cache = tmp_path / "pycache"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    args = ["--buyers", "3", "--strategy", "sqlite-update", *FAST]

    def run(limited: bool) -> subprocess.CompletedProcess[str]:
        def limit_it() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (8 * 1024, 8 * 1024))

        return subprocess.run(
            _ticketsim("run", "--db", str(tmp_path / "t.json"), *args),
            preexec_fn=limit_it if limited else None, capture_output=True, text=True,
            timeout=60, cwd=tmp_path, env=env, check=False,
        )  # fmt: skip

    # As an installed Python has them: what the interpreter imports before any of
    # ticketsim's code runs is compiled already (ticketsim can do nothing for those).
    subprocess.run([PYTHON, "-c", "import runpy"], env=env, check=True, timeout=60)
    limited = run(limited=True)
    assert "internal error" not in limited.stderr, limited.stderr
    after = run(limited=False)
    assert after.returncode == 0, after.stderr  # (Python itself could not start: 1)


# --- class 3: stdout closed, broken or full; a terminal one column wide ------------------

OUTPUTS = [
    ["run", "--buyers", "3", *FAST],
    ["run", "--buyers", "3", "--json", *FAST],
    ["show"],
    ["strategies"],
    [],  # no command: the help, on stdout
    ["--help"],
]


def _db_args(args: list[str], db: Path) -> list[str]:
    return args if not args or args[0] in ("strategies", "--help") else [*args, "--db", str(db)]


def _output_id(args: list[str]) -> str:
    return " ".join(args[:2]) or "(no command)"


@pytest.mark.parametrize("args", OUTPUTS, ids=_output_id)
@pytest.mark.parametrize("how", ["broken-pipe", "closed"])
def test_a_closed_stdout_ends_quietly_with_141(tmp_path: Path, args: list[str], how: str) -> None:
    db = tmp_path / "t.json"
    subprocess.run(_ticketsim("reset", "--db", str(db)), capture_output=True, check=True)
    command = _ticketsim(*_db_args(args, db))
    if how == "broken-pipe":
        reader, writer = os.pipe()
        os.close(reader)  # the reader is gone before anything is written, like head -c0
        program = subprocess.run(
            command, stdout=writer, stderr=subprocess.PIPE, text=True, check=False
        )
        os.close(writer)
    else:
        program = subprocess.run(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
            preexec_fn=lambda: os.close(1),  # the shell's >&-
        )  # fmt: skip
    assert program.returncode == 141, program.stderr
    assert program.stderr == ""


@pytest.mark.parametrize("args", OUTPUTS, ids=_output_id)
def test_a_full_stdout_is_exit_4_with_one_line(tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "t.json"
    subprocess.run(_ticketsim("reset", "--db", str(db)), capture_output=True, check=True)
    with open("/dev/full", "w") as full:
        program = subprocess.run(
            _ticketsim(*_db_args(args, db)),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert program.returncode == 4, program.stderr
    assert "No space left on device" in _one_line(program.stderr)


NARROW = [
    ["run", "--buyers", "3", *FAST],
    ["run", "--buyers", "3", "--show-timeline", *FAST],
    ["show"],
    ["strategies"],
    ["explore", "--buyers", "2", "--timeout", "5"],
    ["compare", "--buyers", "3", "--strategy", "lock", "--strategy", "none", *FAST],
]


@pytest.mark.parametrize("args", NARROW, ids=lambda a: " ".join(a[:2]))
def test_a_terminal_one_column_wide_still_gets_the_report(tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "t.json"
    subprocess.run(_ticketsim("reset", "--db", str(db)), capture_output=True, check=True)
    program = subprocess.run(
        _ticketsim(*_db_args(args, db)),
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "1"},
        check=False,
    )
    assert program.returncode in (0, 1), program.stderr
    assert "Traceback" not in program.stderr
    assert program.stdout.strip()


def test_a_real_pty_one_column_wide(tmp_path: Path) -> None:
    db = tmp_path / "t.json"
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 1, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    program = subprocess.Popen(
        _ticketsim("run", "--buyers", "3", "--db", str(db), *FAST),
        stdin=follower, stdout=follower, stderr=follower, env=env,
    )  # fmt: skip
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the program has exited and closed the pty
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert program.wait(timeout=60) in (0, 1), output
    assert b"Traceback" not in output
    assert b"internal error" not in output


# --- class 4: no process outlives ticketsim ----------------------------------------------


def _tree_of(program: subprocess.Popen[str], at_least: int) -> list[int]:
    """The processes of ``program``'s sale, once at least ``at_least`` of them are up
    and every one of them has settled (see :func:`_settled`)."""
    deadline = time.monotonic() + 30
    while True:
        tree = descendants(program.pid)
        starting = [pid for pid in tree if not _settled(pid)]
        if len(tree) >= at_least and not starting:
            return tree
        assert program.poll() is None, program.communicate()
        assert time.monotonic() < deadline, (
            f"the sale's processes never came up: {len(tree)} of {at_least}, these still "
            f"starting: {[_command_of(pid) for pid in starting]}"
        )
        time.sleep(0.02)


def _command_of(pid: int) -> str:
    try:
        return f"{pid} " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"{pid} (gone)"


def _settled(pid: int) -> bool:
    """Whether process ``pid`` is past its start: it ignores SIGINT, which a buyer, a
    crew's worker and the manager do once they asked to die with ticketsim, and the
    resource tracker and the forkserver from their first line. A spawned process
    still starting is a new interpreter, with Python's own SIGINT handler; one that
    is killed with ticketsim then ends once it gets as far as asking, which on a busy
    machine took longer than the bound below."""
    try:
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
    except OSError:
        return True  # gone already
    if status["State"].split()[0] == "Z":
        return True  # ended, and waits to be reaped
    return bool(int(status["SigIgn"], 16) & (1 << (signal.SIGINT - 1)))


def _assert_all_gone(pids: list[int], within: float) -> None:
    deadline = time.monotonic() + within
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if _running(p)]
    assert alive == [], [Path(f"/proc/{p}/cmdline").read_bytes() for p in alive if _running(p)]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


CREWS = {
    "buyers": ["--lock"],
    "manager": ["--strategy", "manager"],
    "office": ["--strategy", "office"],
    "pool": ["--lock", "--pool", "2"],
}


def _start(
    tmp_path: Path, crew: str, method: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    args = ["run", "--buyers", "4", "--tickets", "4", "--delay", "2", "--timeout", "30"]
    return subprocess.Popen(
        _ticketsim(*args, *CREWS[crew], "--start-method", method, "--db", str(tmp_path / "t.json")),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env=env,
    )  # fmt: skip


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("crew", list(CREWS))
def test_a_sigkilled_ticketsim_takes_every_process_with_it(
    tmp_path: Path, crew: str, method: str
) -> None:
    _sigkill_a_sale(tmp_path, crew, method)


def _sigkill_a_sale(
    tmp_path: Path, crew: str, method: str, env: dict[str, str] | None = None
) -> None:
    """Start a sale, SIGKILL ticketsim once its processes are up, and check that every
    one of them is gone within 2 s."""
    program = _start(tmp_path, crew, method, env)
    try:
        pids = _tree_of(program, 2 if crew == "pool" else 4)
        program.kill()
        program.wait(10)
        _assert_all_gone(pids, within=2.0)
    finally:
        program.kill()
        _, said = program.communicate(timeout=30)
    # Nor does any of them write on the terminal after ticketsim is gone (the resource
    # tracker warned of the semaphores it then removed, after the shell's prompt).
    assert said == "", said


_HANGING_SHOP = """
import time


def setup():
    return "shop"


def buy(handle, buyer):
    time.sleep(300)  # no mark: nothing of ticketsim's runs in this buyer again
"""


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_sigkilled_ticketsim_takes_your_own_hanging_buyers_with_it(
    tmp_path: Path, method: str
) -> None:
    """Under forkserver the kernel tied a buyer to the forkserver, which outlived
    ticketsim while its children held its pipe: buyer, forkserver and tracker lived on."""
    (tmp_path / "hanging_shop.py").write_text(_HANGING_SHOP, encoding="utf-8")
    program = subprocess.Popen(
        _ticketsim("run", "--buyer", "hanging_shop:buy", "--setup", "hanging_shop:setup",
                   "--buyers", "2", "--timeout", "60", "--start-method", method),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )  # fmt: skip
    try:
        pids = _tree_of(program, 2)
        time.sleep(0.5)  # the buyers are in their sleep by now
        program.kill()
        program.wait(10)
        _assert_all_gone(pids, within=2.0)
    finally:
        program.kill()
        program.communicate(timeout=30)


@pytest.mark.parametrize(("crew", "method"), [("manager", "spawn"), ("buyers", "forkserver")])
def test_a_sigkilled_ticketsims_sockets_are_removed_by_the_next_sale(
    tmp_path: Path, crew: str, method: str
) -> None:
    """multiprocessing's folder of sockets (the Manager's, the forkserver's) is made by
    ticketsim, so it is never a ``pymp-*`` nobody may remove, and the next sale removes
    the one a SIGKILLed ticketsim left; a sale that ends leaves none."""
    # A short temp folder of the test's own: a socket's name must fit in 107 bytes.
    scratch = Path(tempfile.mkdtemp(prefix="ts-", dir="/tmp"))
    try:
        env = {**os.environ, "TMPDIR": str(scratch)}
        _sigkill_a_sale(tmp_path, crew, method, env)
        left = sorted(p.name for p in scratch.iterdir())
        assert left, "the killed sale had a folder of sockets"
        assert all(name.startswith("ticketsim-mp.") for name in left), left
        next_sale = _quick_sale(tmp_path, method, env)
        assert next_sale.returncode == 0, next_sale.stderr
        assert list(scratch.iterdir()) == []
    finally:
        shutil.rmtree(scratch)


def _quick_sale(
    tmp_path: Path, method: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _ticketsim("run", "--buyers", "2", "--strategy", "manager", "--delay", "0",
                   "--start-method", method, "--db", str(tmp_path / "next.json")),
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


def _ours_in_tmp() -> set[str]:
    return {name for name in os.listdir("/tmp") if name.startswith("ticketsim-mp.")}


def test_a_temp_folder_too_deep_for_a_socket_still_works_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    """The Manager's socket is named inside the temp folder, and a name past 107 bytes
    cannot be bound: ticketsim then uses /tmp, and removes what it made there."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    sale = subprocess.Popen(
        _ticketsim("run", "--buyers", "2", "--strategy", "manager", "--delay", "0",
                   "--start-method", "spawn", "--db", str(tmp_path / "next.json")),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TMPDIR": str(deep)},
    )  # fmt: skip
    _, err = sale.communicate(timeout=60)
    assert sale.returncode == 0, err
    assert list(deep.iterdir()) == []
    # Its folder is named for it (other programs, other tests' too, make theirs in /tmp).
    assert [name for name in _ours_in_tmp() if name.startswith(f"ticketsim-mp.{sale.pid}.")] == []


@pytest.mark.parametrize(
    ("crew", "signum", "code"),
    [
        ("buyers", signal.SIGHUP, 129),
        ("office", signal.SIGHUP, 129),
        ("manager", signal.SIGHUP, 129),
        ("pool", signal.SIGHUP, 129),
        ("office", signal.SIGTERM, 143),
    ],
)
def test_sighup_and_sigterm_end_every_process_with_one_line(
    tmp_path: Path, crew: str, signum: int, code: int
) -> None:
    program = _start(tmp_path, crew, "fork")
    try:
        pids = _tree_of(program, 2 if crew == "pool" else 4)
        program.send_signal(signum)
        _, err = program.communicate(timeout=30)
        assert program.returncode == code, err
        assert "every buyer process was ended" in _one_line(err)
        _assert_all_gone(pids, within=2.0)
    finally:
        program.kill()
        program.communicate()
    assert check_db(dbfile.load(tmp_path / "t.json")) == []


# --- class 5: Ctrl-C at any moment -----------------------------------------------------


def test_sigint_at_any_moment_is_130_with_one_line_or_the_report(tmp_path: Path) -> None:
    """SIGINT (to the whole group, as a terminal sends it) at moments spread over the
    whole life of a short sale: start-up, imports, buyers starting, the sale, its end,
    the report and the history being written."""
    db, history = tmp_path / "t.json", tmp_path / "h.jsonl"
    args = _ticketsim("run", "--buyers", "4", "--lock", "--db", str(db), "--history", str(history))
    start = time.monotonic()
    whole = subprocess.run([*args, *FAST, "--json"], capture_output=True, text=True, check=False)
    span = time.monotonic() - start
    assert whole.returncode == 0, whole.stderr
    steps = 24
    # From the moment the first buyer exists (a gate, not a guess): before that the
    # interrupt can land in the interpreter's own start-up or in the import of the
    # package, before any code of ticketsim runs (see the report of issue 14).
    for step in range(steps):
        program = subprocess.Popen(
            [*args, *FAST, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,
        )  # fmt: skip
        while not descendants(program.pid) and program.poll() is None:
            time.sleep(0.002)
        time.sleep(span * step / steps)
        if program.poll() is None:
            os.killpg(program.pid, signal.SIGINT)
        out, err = program.communicate(timeout=60)
        assert "Traceback" not in err, (step, err)
        assert "Exception ignored" not in err, (step, err)
        # -SIGINT: the interrupt came before Python ran any of ticketsim (interpreter
        # start-up); the shell reports that as 130 too, and nothing is printed.
        assert program.returncode in (0, 1, 130, -signal.SIGINT), (step, program.returncode, err)
        if program.returncode == -signal.SIGINT:
            assert err == ""
            continue
        if program.returncode == 130:
            # One line, after the announcement of a file written whole before the
            # interrupt came (it may come between the two).
            *announced, last = [line for line in err.splitlines() if line.strip()]
            assert "interrupted" in last, (step, err)
            assert len(announced) <= 1, (step, err)
            if announced:
                assert announced[0].startswith("history: "), (step, err)
                assert Path(announced[0].removeprefix("history: ")).samefile(history)
        else:
            assert json.loads(out)["sold"] >= 0, (step, out)


WATCHED = """
import multiprocessing, sys, time
from ticketsim.sale import _scratch, _signals

def child():
    _signals.tie_to_owner(kernel=False)
    time.sleep(60)

if __name__ == "__main__":
    folder = _scratch.provide()  # as a sale does: a folder the next one can remove
    process = multiprocessing.get_context(sys.argv[1]).Process(target=child)
    process.start()
    print(process.pid, folder, flush=True)
    time.sleep(60)
"""


def _paused_holder(pauser: PauseHolder) -> None:
    _signals.as_child()
    pauser.after_read(1, 60.0)  # forks its resumer, then stops itself


def test_the_resumer_of_a_paused_holder_dies_with_the_holder() -> None:
    """``--pause-holder``'s resumer is forked by the paused buyer, not by ticketsim:
    when ticketsim ends that buyer (a stall, Ctrl-C, its own end), the resumer goes
    too, instead of living on for as long as its wait (up to twice --timeout) with
    ticketsim's stdout open, which kept a pipeline waiting after ticketsim had exited."""
    ctx = multiprocessing.get_context("fork")
    pauser = PauseHolder(
        paused=ctx.Value("i", 0), resumed=ctx.Value("i", 0),
        finished_count=ctx.Value("i", 0), changed=ctx.Condition(), buyers=2,
    )  # fmt: skip
    holder = ctx.Process(target=_paused_holder, args=(pauser,))
    holder.start()
    try:
        deadline = time.monotonic() + 30
        children: list[int] = []
        while time.monotonic() < deadline:
            stat = Path(f"/proc/{holder.pid}/stat").read_text().rpartition(")")[2].split()
            listed = Path(f"/proc/{holder.pid}/task/{holder.pid}/children").read_text()
            children = [int(pid) for pid in listed.split()]
            if stat[0] == "T" and children:  # stopped, its resumer forked
                break
            time.sleep(0.01)
        assert children, "the holder never paused"
        assert all(_running(pid) for pid in children)
        holder.kill()
        _assert_all_gone(children, within=5.0)
    finally:
        holder.kill()
        holder.join(10)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_the_watch_thread_ends_a_process_whose_owner_was_killed(
    tmp_path: Path, method: str
) -> None:
    """Where the kernel cannot end a child with its parent (every system but Linux),
    a thread watches the owner; forced here on Linux. The owner is not reaped before
    the check: a zombie owner is dead too."""
    script = tmp_path / "watched.py"
    script.write_text(WATCHED)
    owner = subprocess.Popen([PYTHON, str(script), method], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        pid, folder = owner.stdout.readline().split()
        child = int(pid)
        time.sleep(0.3)  # the child's watch is running by now
        assert _running(child)
        owner.send_signal(signal.SIGKILL)
        _assert_all_gone([child], within=2.0)
    finally:
        owner.kill()
        owner.communicate()
    # What the owner's multiprocessing kept is in a folder the next sale removes.
    deadline = time.monotonic() + 5.0
    while Path(folder).exists() and time.monotonic() < deadline:
        _scratch.sweep(str(Path(folder).parent))
        time.sleep(0.05)
    assert not Path(folder).exists()
