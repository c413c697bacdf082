"""One table of exit codes: each command's ``--help``, README.md and the codes the
commands really return all come from :mod:`ticketsim.core.exits`."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
from sales import sale
from typer.main import get_command
from typer.testing import CliRunner

from ticketsim.analysis.report import build_report
from ticketsim.cli import app
from ticketsim.core.exits import BY_COMMAND, MEANING, OWN_MEANING, ExitCode, meaning
from ticketsim.search import compare as comparing

ROOT = Path(__file__).parents[2]


def _leaves(group: Any, prefix: str = "") -> list[str]:
    """Every command a user can run, a group's as ``"sale open"``."""
    names = []
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            names += _leaves(command, f"{prefix}{name} ")
        else:
            names.append(prefix + name)
    return names


COMMANDS = sorted(_leaves(get_command(app)))


def _help_table(command: str) -> dict[int, str]:
    """The codes and words of the "Exit codes" paragraph of ``command --help``."""
    result = CliRunner().invoke(app, [*command.split(), "--help"], prog_name="ticketsim")
    assert result.exit_code == 0, result.output
    paragraph = result.stdout.split("Exit codes:\n", 1)[1]
    table: dict[int, str] = {}
    for line in paragraph.splitlines():
        row = re.match(r"\s+(\d+)  (.*)", line)
        if row is not None:
            code = int(row.group(1))
            table[code] = row.group(2)
        elif line.strip():
            table[code] += " " + line.strip()
    return table


def test_every_command_has_its_codes_and_nothing_else_does() -> None:
    assert sorted(BY_COMMAND) == COMMANDS
    used = {code for codes in BY_COMMAND.values() for code in codes}
    assert used == set(ExitCode) == set(MEANING), "a code no command returns, or one unsaid"
    for command, own in OWN_MEANING.items():
        assert set(own) <= set(BY_COMMAND[command]), command


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_every_code_the_command_can_return(command: str) -> None:
    table = _help_table(command)
    assert list(table) == [int(code) for code in BY_COMMAND[command]]
    for code, words in table.items():
        assert words == meaning(command, ExitCode(code)), (command, code)


def _readme_table(header: str) -> list[list[str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert header in readme, f"README.md has no table {header!r}"
    rows = []
    for line in readme[readme.index(header) :].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def _commands_cell(code: ExitCode) -> str:
    returning = [name for name in BY_COMMAND if code in BY_COMMAND[name]]
    if len(returning) == len(BY_COMMAND):
        return "every command"
    return ", ".join(f"`{name}`" for name in returning)


def test_readme_exit_table_is_the_one_the_commands_use() -> None:
    rows = _readme_table("| code | meaning | returned by |")
    expected = [[str(int(code)), text, _commands_cell(code)] for code, text in MEANING.items()]
    assert rows == expected
    own = _readme_table("| command | code | meaning there |")
    assert own == [
        [f"`{command}`", str(int(code)), text]
        for command, codes in OWN_MEANING.items()
        for code, text in codes.items()
    ]


# -- compare: the unsafe strategies' violations are its point, nothing else is -------


def _row(strategy: str, *, safe: bool, code: ExitCode) -> comparing.Row:
    return comparing.Row(
        strategy=strategy, safe=safe, sold=1, oversold=0, double_booked=0, lost_sales=0,
        torn_reads=0, elapsed_s=0.1, throughput=10.0, verdict="OK", ok=code is ExitCode.OK,
        exit_code=int(code),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ([(False, ExitCode.VIOLATED), (True, ExitCode.OK)], ExitCode.OK),
        ([(True, ExitCode.VIOLATED), (False, ExitCode.VIOLATED)], ExitCode.VIOLATED),
        ([(True, ExitCode.STALLED), (True, ExitCode.OK)], ExitCode.STALLED),
        ([(False, ExitCode.STALLED), (False, ExitCode.VIOLATED)], ExitCode.STALLED),
        ([(True, ExitCode.IO_ERROR), (True, ExitCode.STALLED)], ExitCode.IO_ERROR),
        ([(True, ExitCode.STALLED), (True, ExitCode.VIOLATED)], ExitCode.VIOLATED),
        ([], ExitCode.OK),
    ],
)
def test_compare_exit_code_takes_the_worst_that_is_not_expected(
    codes: list[tuple[bool, ExitCode]], expected: ExitCode
) -> None:
    rows = [_row(f"s{i}", safe=safe, code=code) for i, (safe, code) in enumerate(codes)]
    assert comparing.exit_code(rows) is expected


def test_a_comparison_with_a_stalled_sale_is_not_ok(db_path: Path) -> None:
    """A real stalled sale (a killed lock holder) makes its row, and the comparison, 3."""
    stalled = build_report(sale(db_path, strategy="lock", buyers=3, tickets=1,
                                kill_holder=True, timeout=1.0, start_method="fork"))  # fmt: skip
    assert stalled.exit_code is ExitCode.STALLED
    ok = build_report(sale(db_path, strategy="lock", buyers=3, tickets=1, start_method="fork"))
    rows = [comparing.Row.from_report(ok), comparing.Row.from_report(stalled)]
    assert rows[1].exit_code == ExitCode.STALLED
    assert comparing.exit_code(rows) is ExitCode.STALLED
    assert comparing.exit_code(rows[:1]) is ExitCode.OK


def test_the_unsafe_strategys_forced_oversale_leaves_a_comparison_ok(db_path: Path) -> None:
    race = build_report(sale(db_path, strategy="none", buyers=3, tickets=1, lockstep=True,
                             start_method="fork"))  # fmt: skip
    assert race.exit_code is ExitCode.VIOLATED
    ok = build_report(sale(db_path, strategy="lock", buyers=3, tickets=1, start_method="fork"))
    rows = [comparing.Row.from_report(race), comparing.Row.from_report(ok)]
    assert comparing.exit_code(rows) is ExitCode.OK
    broken = dataclasses.replace(rows[0], safe=True)  # as if a safe strategy had oversold
    assert comparing.exit_code([broken, rows[1]]) is ExitCode.VIOLATED


def test_compare_exits_with_its_rows_code(db_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["compare", "--strategy", "lock", "--buyers", "3", "--tickets", "1", "--delay", "0",
         "--db", str(db_path), "--json"],
        prog_name="ticketsim",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '"exit_code": 0' in result.stdout
