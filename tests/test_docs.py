"""README.md and CI must agree: the two opening commands, and the test command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def opening_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", readme, re.DOTALL)
    assert block is not None, "README.md must open with a sh block of two commands"
    assert readme.index(block.group(0)) < readme.index("\n## "), "the commands come first"
    return block.group(1).strip().splitlines()


def test_readme_opens_with_the_two_commands() -> None:
    run, test = opening_commands()
    assert "pip install -e ." in run
    assert run.endswith("ticketsim run --buyers 50 --lock")
    assert "pip install -e '.[test]'" in test


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = opening_commands()[1].rsplit("&&", 1)[1].strip()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == test_command


def test_readme_strategies_table_says_what_the_strategies_claim() -> None:
    """The README's copy of ``ticketsim strategies``, which tests/engine/test_claims.py backs."""
    from ticketsim.core.catalog import CATALOG, CLAIM_TITLES

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    header = "| strategy | safe | " + " | ".join(CLAIM_TITLES.values()) + " |"
    assert header in readme
    lines = readme[readme.index(header) :].splitlines()[2:]
    rows = {}
    for line in lines:
        if not line.startswith("|"):
            break
        name, *cells = (cell.strip().strip("`*") for cell in line.strip("|").split("|"))
        rows[name] = cells
    assert list(rows) == [name.value for name in CATALOG]
    for name, strategy in CATALOG.items():
        flags = [strategy.safe, *(getattr(strategy.claims, key) for key in CLAIM_TITLES)]
        assert rows[name.value] == ["yes" if flag else "no" for flag in flags], name.value


def _keys(value: object) -> set[str]:
    """Every key of a JSON document, at any depth."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--buyers", "3", "--tickets", "1", "--lock", "--delay", "0"],
        ["run", "--buyers", "3", "--tickets", "1", "--lockstep", "--delay", "0"],
        ["explore", "--buyers", "2", "--tickets", "1"],
        ["hunt", "--buyers", "2", "--tickets", "1", "--max-examples", "2", "--pct-runs", "1"],
    ],
    ids=["run", "run-violated", "explore", "hunt"],
)
def test_readme_names_every_json_key(args: list[str], tmp_path: Path) -> None:
    """A key added to a ``--json`` document and not documented fails here."""
    from typer.testing import CliRunner

    from ticketsim.cli import app

    result = CliRunner().invoke(
        app, [*args, "--json", "--start-method", "fork", "--db", str(tmp_path / "t.json")]
    )
    assert result.exit_code in (0, 1), result.output
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = sorted(k for k in _keys(json.loads(result.stdout)) if f"`{k}`" not in readme)
    assert not missing, f"README.md does not name these {args[0]} --json keys: {missing}"


def test_every_promise_of_the_never_section_names_a_test_that_exists() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### What ticketsim never does", 1)[1].split("\n## ", 1)[0]
    promises = section.split("\n- ")[1:]
    assert len(promises) >= 4
    for promise in promises:
        named = re.findall(r"`(tests/\w+\.py)::(\w+)`", promise)
        assert named, f"a promise with no test: {promise[:60]!r}"
        for path, name in named:
            source = (ROOT / path).read_text(encoding="utf-8")
            assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} is gone"
