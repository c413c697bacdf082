"""README.md and CI must agree: the two opening commands, and the test command."""

from __future__ import annotations

import re
from pathlib import Path

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
    """The README's copy of ``ticketsim strategies``, which tests/test_claims.py backs."""
    from ticketsim.strategies import CLAIM_TITLES, STRATEGIES

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
    assert list(rows) == [name.value for name in STRATEGIES]
    for name, strategy in STRATEGIES.items():
        flags = [strategy.safe, *(getattr(strategy.claims, key) for key in CLAIM_TITLES)]
        assert rows[name.value] == ["yes" if flag else "no" for flag in flags], name.value
