"""The installed program, run for real in a subprocess."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("typer", "rich", "hypothesis", "pytest", "click", "pydantic")


def script() -> str:
    found = shutil.which("ticketsim", path=str(Path(sys.executable).parent)) or shutil.which(
        "ticketsim"
    )
    if found is None:
        pytest.fail("the ticketsim console script is not installed; pip install -e '.[test]'")
    return found


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_installed_ticketsim_runs_a_safe_sale(db_path: Path, method: str) -> None:
    done = subprocess.run(
        [
            script(),
            "run",
            "--buyers",
            "6",
            "--tickets",
            "4",
            "--lock",
            "--json",
            "--delay",
            "0",
            "--start-method",
            method,
            "--db",
            str(db_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    report = json.loads(done.stdout)
    assert (report["sold"], report["remaining"], report["ok"]) == (4, 0, True)
    assert report["start_method"] == method


def test_python_dash_m_and_bad_input(db_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ticketsim", "run", "--buyers", "nope", "--db", str(db_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "--buyers='nope'" in done.stderr
    assert not db_path.exists()


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a fresh interpreter, importing this checkout's ticketsim."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )


def test_what_a_buyer_process_imports_is_light() -> None:
    """A spawned buyer imports the package, the buyer and the parent's main module.

    The console script's main module is ``ticketsim._entry``; none of these may pull
    in the command line's libraries.
    """
    code = (
        "import sys, ticketsim, ticketsim.sale.buyer, ticketsim._entry, ticketsim.__main__\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    done = _python(code)
    assert done.stdout.strip() == "[]"


#: What a buyer of the file, shared-memory and office strategies runs, as it unpickles it.
_BUYER_SIDE = (
    "ticketsim._entry", "ticketsim.sale.buyer", "ticketsim.sale.guards", "ticketsim.sale.office",
    "ticketsim.sale.stores.file", "ticketsim.sale.stores.shared", "ticketsim.sale.gate",
)  # fmt: skip


def test_a_buyer_process_builds_its_classes_without_dataclasses() -> None:
    """Under ``spawn`` each buyer builds every class it imports: ``dataclasses`` (and the
    ``inspect`` it imports) and six methods compiled for each class were more than half
    of what a buyer spent importing ticketsim (``ticketsim.core.frozen``)."""
    code = (
        f"import sys, {', '.join(_BUYER_SIDE)}\n"
        "print(sorted({'dataclasses', 'inspect'} & set(sys.modules)))"
    )
    assert _python(code).stdout.strip() == "[]"


def test_help_starts_without_rich_or_the_library() -> None:
    """``ticketsim --help`` imports typer and little else, so that it starts about as fast
    (benchmarks/startup.py times it); the commands import what they use."""
    code = (
        "import contextlib, io, sys\n"
        "from ticketsim.cli import main\n"
        "sys.argv = ['ticketsim', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('rich', 'pydantic', 'markdown_it', 'hypothesis', 'multiprocessing')"
        " or m in ('ticketsim.engine.runner', 'ticketsim.engine.strategies',"
        " 'ticketsim.analysis.report')))"
    )
    done = _python(code)
    assert done.stdout.strip() == "[]"


def test_a_sale_of_processes_forks_its_buyers_from_a_light_parent(db_path: Path) -> None:
    """Every module the parent holds when it forks is copied into each buyer's fork: a
    sale of processes does not import the worlds of threads and tasks (asyncio, ssl,
    logging) nor the report's drawing (rich) before its buyers are started."""
    code = (
        "import contextlib, sys, multiprocessing.process as mp\n"
        "from ticketsim.cli import main\n"
        "seen = []\n"
        "start = mp.BaseProcess.start\n"
        "def first(self):\n"
        "    seen.append(seen or sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('asyncio', 'ssl', 'logging', 'concurrent', 'rich')"
        " or m in ('ticketsim.engine.worlds', 'ticketsim.views.render',"
        " 'ticketsim.analysis.report', 'multiprocessing.pool')))\n"
        "    start(self)\n"
        "mp.BaseProcess.start = first\n"
        f"sys.argv = ['ticketsim', 'run', '--buyers', '3', '--lock', '--db', {str(db_path)!r}]\n"
        "with contextlib.suppress(SystemExit):\n"
        "    main()\n"
        "print(seen[0], file=sys.stderr)"
    )
    done = _python(code)
    assert "OK: sold" in done.stdout
    assert done.stderr.strip() == "[]"


def test_the_package_exports_resolve() -> None:
    """``ticketsim`` imports its public names on first use; each of them must resolve."""
    code = (
        "import ticketsim, ticketsim.engine.runner\n"
        "from ticketsim import *\n"
        "print(sorted(set(ticketsim.__all__) - set(globals())),"
        " run_sale is ticketsim.engine.runner.run_sale)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[] True"

    def complete(words: str, index: int) -> list[str]:
        env = {
            **os.environ,
            "_TICKETSIM_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(index),
        }
        done = subprocess.run(
            [script()], capture_output=True, text=True, env=env, timeout=60, check=False
        )
        return done.stdout.split()

    assert complete("ticketsim re", 1) == ["reset", "replay"]
    assert set(complete("ticketsim run --strategy val", 3)) == {"value", "value-unlocked"}


def _on_terminals(command: list[str], timeout: float) -> tuple[int, str, str]:
    """Run ``command`` with stdout and stderr on two pseudo-terminals of their own: its
    exit code, and every byte it wrote on each, escape codes included."""
    ends = [pty.openpty() for _ in range(2)]
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(command, stdout=ends[0][1], stderr=ends[1][1], env=env)
    for _, side in ends:
        os.close(side)
    output: dict[int, list[bytes]] = {main: [] for main, _ in ends}
    open_ends = set(output)
    try:
        while open_ends:  # drain as it runs: a full terminal buffer would block it
            ready, _, _ = select.select(sorted(open_ends), [], [], timeout)
            if not ready:
                pytest.fail(f"no output for {timeout} s from {command}")
            for main in ready:
                try:
                    chunk = os.read(main, 1 << 16)
                except OSError:  # EIO: the program has closed its end
                    chunk = b""
                if chunk:
                    output[main].append(chunk)
                else:
                    open_ends.discard(main)
        code = process.wait(timeout)
        out, err = (b"".join(output[main]).decode("utf-8", "replace") for main, _ in ends)
        return code, out, err
    finally:
        for main, _ in ends:
            os.close(main)
        if process.poll() is None:
            process.kill()
            process.wait(10)


#: What rich writes to erase a line (``transient=True``: the bar is gone when done).
ERASE_LINE = "\x1b[2K"


def test_a_sale_on_a_terminal_shows_a_progress_bar_then_only_the_report(db_path: Path) -> None:
    """On a terminal the sale draws a progress bar on stderr and erases it when done;
    the report goes to stdout. (Off a terminal there is no bar: see test_cli.)"""
    # 200 sales of 5 ms under the lock: a second, ten frames of the bar at least
    sale = ["--buyers", "300", "--tickets", "200", "--lock", "--delay", "0.005"]
    code, out, err = _on_terminals([script(), "run", *sale, "--db", str(db_path)], timeout=60)
    assert code == 0, out + err
    assert "selling" in err
    assert "300/300" in err  # the last frame: every buyer done
    assert "buyers done" not in out
    assert "OK: sold 200 of 200 ticket(s) to 300 buyer(s)" in out
    assert "OK: sold" not in err
    # The last frame is erased: nothing is written after it but cursor moves and erases.
    last = err.rindex("buyers done") + len("buyers done")
    assert ERASE_LINE in err[last:]
    assert not any(ch.isalnum() for ch in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err[last:]))


def test_the_console_script_catches_ctrl_c_from_its_first_import() -> None:
    """A Ctrl-C in the script's first 20 ms was a traceback: importing typing (9 ms) and
    signal's enums (6 ms) came before anything caught it. Now only Python's own start
    comes before the guard, and the command line takes Ctrl-C back once it runs."""
    code = (
        "import sys\n"
        "import ticketsim._entry as entry\n"
        "before_guard = sorted({'typing', 'enum'} & set(sys.modules))\n"
        "import signal\n"
        "print(before_guard, signal.getsignal(signal.SIGINT) is entry._interrupted)\n"
    )
    assert _python(code).stdout.strip() == "[] True"
