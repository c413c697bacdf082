"""The one mapping from an exception to an exit code and one line (ticketsim/cli/errors.py):
every type in it, a fault of the machine, and anything else, which is a bug."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from ticketsim.analysis.history import HistoryError
from ticketsim.cli import app, errors
from ticketsim.core.exits import BY_COMMAND, ExitCode
from ticketsim.errors import (
    ConfigError,
    DbError,
    DbWriteError,
    NoVerdict,
    PathError,
    ServerUnavailable,
    StoreError,
    SystemRefused,
)

if TYPE_CHECKING:
    from pathlib import Path

    from typer.testing import Result

#: One real instance of each type in the mapping, the exit code documented for it
#: (core/exits.py's MEANING), and the line the command line ends with.
CASES: dict[type[Exception], tuple[Exception, ExitCode, str]] = {
    errors.BadInput: (
        errors.BadInput("--json and --csv both print the table; give one of them"),
        ExitCode.BAD_INPUT,
        "--json and --csv both print the table; give one of them",
    ),
    ConfigError: (
        ConfigError("start_method", "thread", "choose one of fork, spawn, forkserver"),
        ExitCode.BAD_INPUT,
        "--start-method='thread': choose one of fork, spawn, forkserver",
    ),
    DbError: (
        DbError("sales.json", "is not JSON", "fix it, or reset it"),
        ExitCode.BAD_INPUT,
        "--db=sales.json: is not JSON; fix it, or reset it",
    ),
    HistoryError: (
        HistoryError("run.jsonl", 3, "must be a JSON object"),
        ExitCode.BAD_INPUT,
        "--history=run.jsonl: line 3: must be a JSON object",
    ),
    PathError: (
        PathError("--timeline", "out", "is a directory", "give the path of a file"),
        ExitCode.BAD_INPUT,
        "--timeline=out: is a directory; give the path of a file",
    ),
    DbWriteError: (
        DbWriteError("sales.json", "No space left on device"),
        ExitCode.IO_ERROR,
        "could not write the db sales.json: No space left on device; it keeps its last good state",
    ),
    SystemRefused: (
        SystemRefused("--plot=chart.svg: could not be written", "Read-only file system"),
        ExitCode.IO_ERROR,
        "--plot=chart.svg: could not be written: Read-only file system",
    ),
    StoreError: (
        StoreError("sqlite:///notes.sqlite", "is not a SQLite database", "give another path"),
        ExitCode.BAD_INPUT,
        "--store=sqlite:///notes.sqlite: is not a SQLite database; give another path",
    ),
    ServerUnavailable: (
        ServerUnavailable("postgresql://localhost/x", "connection refused", "start it"),
        ExitCode.IO_ERROR,
        "postgresql://localhost/x: connection refused; start it",
    ),
    NoVerdict: (
        NoVerdict("sale s-0000000a", "no host joined it", "join it"),
        ExitCode.STALLED,
        "sale s-0000000a: no host joined it; join it",
    ),
}

BUG = (
    "internal error: RuntimeError: boom; this is a bug in ticketsim, "
    "run again with --debug for the traceback"
)


def test_every_type_in_the_mapping_has_a_case() -> None:
    assert set(errors.refusals()) == set(CASES)


@pytest.mark.parametrize("kind", list(CASES), ids=lambda kind: kind.__name__)
def test_each_type_ends_with_its_documented_code_and_one_line(kind: type[Exception]) -> None:
    exc, code, line = CASES[kind]
    assert errors.outcome(exc) == (line, code)
    assert "\n" not in line


def test_a_fault_of_the_machine_is_exit_4_and_names_the_file() -> None:
    full = OSError(errno.ENOSPC, "No space left on device", "sales.json")
    line, code = errors.outcome(full)
    assert code == ExitCode.IO_ERROR
    assert line == (
        "sales.json: No space left on device (ENOSPC); free some space, or write it elsewhere"
    )


def test_anything_else_is_a_bug_exit_70() -> None:
    assert errors.outcome(RuntimeError("boom")) == (BUG, ExitCode.INTERNAL_ERROR)
    assert int(ExitCode.INTERNAL_ERROR) == 70


def _show_raising(
    exc: BaseException, monkeypatch: pytest.MonkeyPatch, db_path: Path, *first: str
) -> Result:
    """``ticketsim show`` whose first call into the library raises ``exc``."""
    from ticketsim.core import paths

    def vet(*uses: object) -> None:
        raise exc

    monkeypatch.setattr(paths, "vet", vet)
    return CliRunner().invoke(app, [*first, "show", "--db", str(db_path)], prog_name="ticketsim")


@pytest.mark.parametrize("kind", list(CASES), ids=lambda kind: kind.__name__)
def test_a_command_lets_the_error_go_up_to_the_mapping(
    kind: type[Exception], monkeypatch: pytest.MonkeyPatch, db_path: Path
) -> None:
    exc, code, line = CASES[kind]
    result = _show_raising(exc, monkeypatch, db_path)
    assert result.exit_code == code
    assert result.stderr == f"ticketsim: error: {line}\n"
    assert result.stdout == ""
    # Some command documents the code (show does not stall: NoVerdict is sale check's).
    assert code in BY_COMMAND["show" if kind is not NoVerdict else "sale check"]
    # --debug shows the traceback of a bug only: a refusal is the same one line.
    assert _show_raising(exc, monkeypatch, db_path, "--debug").stderr == result.stderr


def test_an_unknown_error_in_a_command_is_exit_70(
    monkeypatch: pytest.MonkeyPatch, db_path: Path
) -> None:
    result = _show_raising(RuntimeError("boom"), monkeypatch, db_path)
    assert result.exit_code == ExitCode.INTERNAL_ERROR
    assert result.stderr == f"ticketsim: error: {BUG}\n"
    debug = _show_raising(RuntimeError("boom"), monkeypatch, db_path, "--debug")
    assert isinstance(debug.exception, RuntimeError)


def test_click_finds_a_bad_value_and_the_line_names_it(db_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "--buyers", "many", "--db", str(db_path)], prog_name="ticketsim"
    )
    assert result.exit_code == ExitCode.BAD_INPUT
    assert result.stderr == (
        "ticketsim: error: --buyers='many': 'many' is not a valid int. "
        "(see 'ticketsim run --help')\n"
    )
    assert not db_path.exists()
