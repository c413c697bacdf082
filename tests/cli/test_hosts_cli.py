"""The command line of a sale over hosts: every way to ask for it wrong ends in one line
that names the value and says what to do (exit 2), before any host or process starts."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ticketsim.cli import app
from ticketsim.core.exits import ExitCode
from ticketsim.core.settings import RunConfig


def _refused(args: list[str], *words: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert "Traceback" not in result.output
    said = result.stderr.strip().splitlines()
    assert len(said) == 1, result.stderr
    for word in words:
        assert word in said[0], said[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--strategy", "lock"], ["--hosts=2", "multiprocessing.Lock", "pg- or redis-"]),
        (["--strategy", "value"], ["--hosts=2", "another host"]),
        (["--strategy", "sqlite-naive"], ["SQLite file", "pg- or redis-"]),
        (["--strategy", "pg-naive", "--partition", "host-3@1s"], ["'host-3'", "host-1, host-2"]),
        (["--strategy", "pg-naive", "--partition", "host-2"], ["HOST@TIME"]),
        (["--strategy", "pg-naive", "--partition", "host-2@soon"], ["'soon'", "50ms"]),
        (["--strategy", "pg-naive", "--slow-link", "host-1=-5ms"], ["'-5ms'"]),
        (["--strategy", "pg-naive", "--slow-link", "host-1"], ["HOST=TIME"]),
        (
            ["--strategy", "pg-naive", "--slow-link", "host-1=5ms", "--slow-link", "host-1=6ms"],
            ["given twice"],
        ),
        (
            ["--strategy", "pg-naive", "--partition", "host-1@1s", "--partition", "host-2@1s"],
            ["--partition is given 2 times", "host-1@1s, host-2@1s", "give it once"],
        ),
        (
            ["--strategy", "pg-update", "--slow-link", "host-2=1s"],
            ["--slow-link='host-2=1s'", "host-2's buyers", "about 42 s", "--timeout to 42"],
        ),
        (
            ["--strategy", "pg-update", "--slow-link", "host-2=1s", "--timeout", "41"],
            ["--timeout to 42"],
        ),
        (
            ["--strategy", "filelock", "--slow-link", "host-2=1s"],
            ["filelock's hosts reach no store"],
        ),
        (["--strategy", "pg-naive", "--clock-skew", "host-2=2 days"], ["'2 days'", "+2s"]),
        (["--strategy", "pg-naive", "--slow-link", "host-2=\uff15ms"], ["not a duration"]),
        (["--strategy", "pg-naive", "--clock-skew", "host-2=+61s"], ["at most 60"]),
        (["--strategy", "pg-naive", "--buyers", "1"], ["--buyers 2"]),
        (["--strategy", "pg-naive", "--buyers", "121"], ["--buyers=121", "at most 120"]),
        (["--strategy", "pg-naive", "--kill", "1"], ["--kill", "drop --hosts"]),
        (["--strategy", "pg-naive", "--lockstep"], ["--lockstep"]),
        (["--strategy", "pg-naive", "--keep"], ["--keep"]),
        (["--strategy", "pg-naive", "--host-mode", "vm"], ["'vm'", "process-group"]),
        (["--strategy", "pg-naive", "--live"], ["--live"]),
        (["--strategy", "redis-lua", "--store", "postgresql"], ["redis-lua", "pg-naive"]),
    ],
)
def test_run_over_hosts_refuses(args: list[str], words: list[str]) -> None:
    _refused(["run", "--hosts", "2", *args], *words)


@pytest.mark.parametrize("fault", ["--partition=host-1@1s", "--slow-link=host-1=1ms"])
def test_faults_between_hosts_need_hosts(fault: str) -> None:
    _refused(["run", "--strategy", "pg-naive", fault], "add --hosts")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["buyers"], ["--store", "URL"]),
        (["buyers", "--store", "sqlite:///x.sqlite"], ["one machine", "postgresql://"]),
        (["buyers", "--store", "redis://127.0.0.1:1/0", "--host", "a/b"], ["'a/b'"]),
        (
            ["buyers", "--store", "redis://127.0.0.1:1/0", "--host", ".abc"],
            ["'.abc'", "start with a letter or digit"],
        ),
        (["buyers", "--store", "redis://127.0.0.1:1/0", "--clock-skew", "2 s"], ["'2 s'"]),
        (["buyers", "--store", "redis://127.0.0.1:1/0", "--count", "0"], ["--count"]),
        (["sale", "open", "--store", "mysql://x/y"], ["mysql://x/y"]),
        (
            ["sale", "open", "--store", "redis://x/0", "--strategy", "pg-update"],
            ["--strategy='pg-update'", "redis-lua"],
        ),
        (["sale", "open", "--store", "redis://x/0", "--strategy", "lock"], ["--strategy='lock'"]),
        (["sale", "check", "--store", "redis://x/0", "--wait", "-1"], ["--wait"]),
    ],
)
def test_sale_commands_refuse(args: list[str], words: list[str]) -> None:
    _refused(args, *words)


def test_a_slow_link_is_taken_with_the_time_its_buyers_need() -> None:
    config = RunConfig(
        hosts=2, strategy="pg-update", buyers=2, slow_link=("host-2=1s",), timeout=42.0
    )
    assert config.faults_between_hosts()[1] == {"host-2": 1.0}


def test_the_most_buyers_a_host_may_start_is_the_most_a_host_row_may_hold() -> None:
    """``buyers --count`` and the host rows the board reads back share one bound."""
    from typing import get_args

    from ticketsim.cli import hosts as cli_hosts
    from ticketsim.core import boards

    _, count = get_args(cli_hosts.Count)
    assert count.max == boards.MAX_HOST_BUYERS
