"""Every command that writes a file says where: one line, ``what: /absolute/path``.

On stdout beside a table, on stderr beside data (``--json``, ``--csv``), which must
still parse whole. The paths are given relative, so the line must make them absolute.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from typing import TYPE_CHECKING

import pytest
from sales import script
from typer.testing import CliRunner

from ticketsim.cli import app
from ticketsim.core.exits import ExitCode

if TYPE_CHECKING:
    from pathlib import Path

    from typer.testing import Result

runner = CliRunner()
FAST = ["--delay", "0", "--timeout", "20", "--start-method", "fork"]
SALE = ["--buyers", "3", "--tickets", "1", "--lockstep", "--db", "t.json", *FAST]


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), catch_exceptions=False, prog_name="ticketsim")


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _said(stream: str, what: str, path: Path) -> bool:
    return f"{what}: {path}" in stream.splitlines()


def test_run_says_where_its_history_and_timeline_went(tmp_path: Path) -> None:
    done = invoke("run", *SALE, "--history", "h.jsonl", "--timeline", "race.html")
    assert done.exit_code == ExitCode.VIOLATED, done.output
    assert (tmp_path / "h.jsonl").is_file()
    assert (tmp_path / "race.html").is_file()
    assert _said(done.stdout, "history", tmp_path / "h.jsonl")
    assert _said(done.stdout, "timeline", tmp_path / "race.html")
    assert "h.jsonl" not in done.stderr


def test_run_json_says_it_on_stderr_and_keeps_its_json_whole(tmp_path: Path) -> None:
    done = invoke("run", *SALE, "--json", "--history", "h.jsonl", "--timeline", "race.html")
    assert done.exit_code == ExitCode.VIOLATED, done.output
    assert json.loads(done.stdout)["oversold"] == 2
    assert _said(done.stderr, "history", tmp_path / "h.jsonl")
    assert _said(done.stderr, "timeline", tmp_path / "race.html")


def test_nothing_written_nothing_said(tmp_path: Path) -> None:
    done = invoke("run", *SALE)
    assert done.exit_code == ExitCode.VIOLATED, done.output
    assert "history:" not in done.output
    assert "timeline:" not in done.output


def test_replay_says_where_its_timeline_went(tmp_path: Path) -> None:
    done = invoke(
        "replay", "--schedule", "1r 2r 1w 2w", "--db", "t.json", "--timeline", "r.html",
        "--history", "r.jsonl",
    )  # fmt: skip
    assert done.exit_code == ExitCode.VIOLATED, done.output
    assert _said(done.stdout, "timeline", tmp_path / "r.html")
    assert _said(done.stdout, "history", tmp_path / "r.jsonl")


COMPARE = ["compare", "--strategy", "lock", "--strategy", "none", "--buyers", "3"]
COMPARE += ["--tickets", "1", "--delay", "0", "--start-method", "fork", "--db", "t.json"]


@pytest.mark.parametrize("data", ["", "--json", "--csv"])
def test_compare_says_where_its_plot_went(tmp_path: Path, data: str) -> None:
    done = invoke(*COMPARE, *([data] if data else []), "--plot", "chart.svg")
    assert done.exit_code == ExitCode.OK, done.output
    assert (tmp_path / "chart.svg").is_file()
    stream = done.stderr if data else done.stdout
    assert _said(stream, "plot", tmp_path / "chart.svg")
    if data == "--json":
        assert [row["strategy"] for row in json.loads(done.stdout)["rows"]] == ["lock", "none"]
    elif data == "--csv":
        rows = list(csv.reader(io.StringIO(done.stdout)))
        assert [row[0] for row in rows] == ["strategy", "lock", "none"]
        assert len({len(row) for row in rows}) == 1


def test_your_own_buyer_says_where_its_history_went(tmp_path: Path) -> None:
    shop = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "shop")
    done = subprocess.run(
        [script(), "run", "--buyer", "shop:buy_fixed", "--setup", "shop:open_shop", "--sold",
         "shop:sales", "--buyers", "2", "--tickets", "1", "--history", str(tmp_path / "y.jsonl")],
        cwd=shop, env={**os.environ, "TMPDIR": str(tmp_path)}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    assert _said(done.stdout, "history", tmp_path / "y.jsonl")
