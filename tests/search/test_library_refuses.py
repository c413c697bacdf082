"""The library refuses what the command line refuses, with the same words.

Each case calls :func:`explore`, :func:`hunt` or :func:`run_sale` directly, then runs
the command line with the same value: both must refuse it before anything runs, and
the command line's one error line must be the library's :class:`ConfigError`, with
the setting named as an option.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from ticketsim.cli import app
from ticketsim.core.exits import ExitCode
from ticketsim.core.settings import MAX_EXPLORE_BUYERS, MAX_RUNS, MAX_SEED, RunConfig
from ticketsim.engine.runner import run_sale
from ticketsim.errors import ConfigError
from ticketsim.search.explore import Scenario, explore, hunt

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

#: A library call given the db to use, and the command line given the same value.
Case = tuple["Callable[[Path], object]", list[str]]

CASES: dict[str, Case] = {
    "explore-too-many-buyers": (
        lambda db: explore(Scenario(buyers=MAX_EXPLORE_BUYERS + 1, db_path=db)),
        ["explore", "--buyers", str(MAX_EXPLORE_BUYERS + 1)],
    ),
    "explore-no-buyers": (
        lambda db: explore(Scenario(buyers=0, db_path=db)),
        ["explore", "--buyers", "0"],
    ),
    "explore-max-schedules-0": (
        lambda db: explore(Scenario(db_path=db), max_schedules=0),
        ["explore", "--max-schedules", "0"],
    ),
    "explore-max-schedules-huge": (
        lambda db: explore(Scenario(db_path=db), max_schedules=10**12),
        ["explore", "--max-schedules", str(10**12)],
    ),
    "explore-negative-preemption-bound": (
        lambda db: explore(Scenario(db_path=db), preemption_bound=-1),
        ["explore", "--preemption-bound", "-1"],
    ),
    "explore-negative-replays": (
        lambda db: explore(Scenario(db_path=db), replays=-1),
        ["explore", "--replays", "-1"],
    ),
    "explore-timeout-too-short": (
        lambda db: explore(Scenario(timeout=0.001, db_path=db)),
        ["explore", "--timeout", "0.001"],
    ),
    "explore-negative-tickets": (
        lambda db: explore(Scenario(tickets=-1, db_path=db)),
        ["explore", "--tickets", "-1"],
    ),
    "hunt-negative-seed": (
        lambda db: hunt(Scenario(db_path=db), seed=-1),
        ["hunt", "--seed", "-1"],
    ),
    "hunt-seed-too-big": (
        lambda db: hunt(Scenario(db_path=db), seed=MAX_SEED + 1),
        ["hunt", "--seed", str(MAX_SEED + 1)],
    ),
    "hunt-depth-0": (
        lambda db: hunt(Scenario(db_path=db), depth=0),
        ["hunt", "--depth", "0"],
    ),
    "hunt-depth-too-deep": (
        lambda db: hunt(Scenario(db_path=db), depth=MAX_RUNS + 1),
        ["hunt", "--depth", str(MAX_RUNS + 1)],
    ),
    "hunt-max-examples-huge": (
        lambda db: hunt(Scenario(db_path=db), max_examples=MAX_RUNS + 1),
        ["hunt", "--max-examples", str(MAX_RUNS + 1)],
    ),
    "hunt-no-buyers": (
        lambda db: hunt(Scenario(buyers=0, db_path=db)),
        ["hunt", "--buyers", "0"],
    ),
    "hunt-more-buyers-than-run-at-once": (
        lambda db: hunt(Scenario(buyers=201, db_path=db)),
        ["hunt", "--buyers", "201"],
    ),
    "hunt-timeout-too-short": (
        lambda db: hunt(Scenario(timeout=0.001, db_path=db)),
        ["hunt", "--timeout", "0.001"],
    ),
    "run-timeout-too-short": (
        lambda db: run_sale(RunConfig(timeout=0.001, db_path=db)),
        ["run", "--timeout", "0.001"],
    ),
    "run-no-buyers": (
        lambda db: run_sale(RunConfig(buyers=0, db_path=db)),
        ["run", "--buyers", "0"],
    ),
}


def as_the_command_line_says(error: ConfigError) -> str:
    """The one line the command line prints for ``error``: the setting as its option."""
    return f"ticketsim: error: --{error.name.replace('_', '-')}={error.value!r}: {error.advice}"


@pytest.mark.parametrize("case", list(CASES))
def test_the_library_refuses_what_the_command_line_refuses(case: str, tmp_path: Path) -> None:
    call, args = CASES[case]
    db = tmp_path / "t.json"
    started = time.monotonic()
    with pytest.raises(ConfigError) as refused:
        call(db)
    assert time.monotonic() - started < 5  # refused before any schedule ran
    assert str(refused.value).startswith(f"{refused.value.name}=")
    result = CliRunner().invoke(
        app, [*args, "--db", str(db)], catch_exceptions=False, prog_name="ticketsim"
    )
    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert result.stderr.splitlines() == [as_the_command_line_says(refused.value)]
    assert not db.exists()


def test_explore_refuses_a_scenario_whose_classes_it_could_not_run() -> None:
    """Eleven unlocked buyers make 11! classes of orders: refused at once."""
    with pytest.raises(ConfigError, match=r"^buyers=11: choose from 1 to 10 buyers"):
        explore(Scenario(buyers=11))


@pytest.mark.parametrize(
    ("settings", "same_as"),
    [
        ({"buyers": "2"}, {"buyers": "2"}),
        ({"buyers": True}, {"buyers": True}),
        ({"tickets": 1.5}, {"tickets": 1.5}),
        ({"timeout": "10"}, {"timeout": "10"}),
        ({"strategy": "optimism"}, {"strategy": "optimism"}),
        ({"start_method": "teleport"}, {"start_method": "teleport"}),
    ],
    ids=["buyers-text", "buyers-bool", "tickets-float", "timeout-text", "strategy", "start"],
)
def test_a_scenario_refuses_a_value_of_the_wrong_kind_as_a_run_does(
    settings: dict[str, object], same_as: dict[str, object]
) -> None:
    with pytest.raises(ConfigError) as scenario:
        Scenario(**settings)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as run:
        RunConfig(**same_as)  # type: ignore[arg-type]
    assert str(scenario.value) == str(run.value)


def test_a_scenario_refuses_more_buyers_than_a_controlled_sale_runs_at_once() -> None:
    scenario = Scenario(buyers=201)
    with pytest.raises(ConfigError) as replaying:
        scenario.config("1r 1w")
    assert str(replaying.value).startswith("buyers=201: a controlled sale runs every buyer")
