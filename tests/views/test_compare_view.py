"""``compare`` on an 80-column terminal: nothing cut, nothing past the edge."""

from __future__ import annotations

import re

import pytest
from rich.console import Console

from ticketsim.core.names import StrategyName
from ticketsim.search.compare import VERDICTS, Row
from ticketsim.views.compare import NARROW_LEGEND, table_view


def _rows() -> list[Row]:
    """Every strategy there is (the longest name included), every verdict a row can carry,
    and the figures of a sale of 10,000 buyers, the most one process per buyer takes."""
    return [
        Row(
            strategy=name.value, safe=False, sold=10_000, oversold=9_990, double_booked=999,
            lost_sales=None if n == 1 else 9_999, torn_reads=1_234, elapsed_s=12.345678,
            throughput=12_345.678, verdict=VERDICTS[n % len(VERDICTS)], ok=n % 2 == 0,
            exit_code=1,
        )
        for n, name in enumerate(StrategyName)
    ]  # fmt: skip


def _printed(width: int) -> list[str]:
    console = Console(record=True, width=width, color_system=None)
    console.print(table_view(_rows(), "50 buyers, 10 tickets, delay 0.1 s, seed 4294967295"))
    return console.export_text().splitlines()


@pytest.mark.parametrize("width", [80, 100])
def test_an_80_column_terminal_cuts_no_name_and_no_verdict(width: int) -> None:
    lines = _printed(width)
    assert max(len(line) for line in lines) <= width
    assert "…" not in "".join(lines)
    for row in _rows():
        (line,) = [line for line in lines if line.split()[:1] == [row.strategy]]
        assert line.rstrip().endswith(row.verdict), line
    # The short headings are said in full under the table.
    start = next(n for n, line in enumerate(lines) if line.startswith("over = "))
    legend = " ".join(line.strip() for line in lines[start:])
    assert legend == NARROW_LEGEND
    assert re.search(r"\bover\b.*\bdbl\b.*\bverdict\b", "\n".join(lines))


def test_a_wide_terminal_keeps_the_full_headings() -> None:
    lines = _printed(200)
    assert max(len(line) for line in lines) <= 200
    text = "\n".join(lines)
    for heading in ("oversold", "double-booked", "lost sales", "torn reads", "throughput"):
        assert heading in text
    assert NARROW_LEGEND.split(",")[0] not in text
