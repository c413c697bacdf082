"""Compare the strategies: the same sale under each one, side by side.

:func:`compare` runs one scenario (buyers, tickets, delay, seed, start method, db,
timeout) under every strategy, or the ones named, and returns a :class:`Row` each.
The rest turns rows into things to read: a rich table (:func:`table_view`), CSV
(:func:`to_csv`), JSON (:meth:`Row.to_json`) and an SVG bar chart of oversold
tickets against sales per second (:func:`svg_chart`, :func:`write_plot`): the
tutorial's trade-off, safety costs speed, at a glance.

Like the rest of the library, nothing here prints.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from rich.table import Table
from rich.text import Text

from ticketsim.analysis.report import build_report
from ticketsim.core.exits import ExitCode
from ticketsim.core.paths import write_output
from ticketsim.engine.runner import run_sale
from ticketsim.engine.strategies import STRATEGIES
from ticketsim.engine.strategies import get as get_strategy
from ticketsim.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rich.console import RenderableType

    from ticketsim.analysis.report import Report
    from ticketsim.core.settings import RunConfig

#: The verdict words a row can carry (the part of :attr:`Report.verdict` before ``:``).
VERDICTS: Final = (
    "OK", "OVERSOLD", "LOST UPDATE", "DOUBLE-BOOKED", "VIOLATED", "STALLED", "INCOMPLETE",
    "DB WRITE FAILED",
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    """One strategy's figures in a comparison.

    Rows built by :meth:`from_report` carry the figures as ``ticketsim run --json``
    gives them: ``elapsed_s`` rounded to the microsecond, ``throughput`` to 0.001.
    """

    strategy: str
    safe: bool
    sold: int
    oversold: int
    double_booked: int
    #: ``None``: unknown, the db left behind could not be read.
    lost_sales: int | None
    torn_reads: int
    elapsed_s: float
    #: Sales per second, from the opening of the sale to the last outcome.
    throughput: float
    #: One of :data:`VERDICTS`.
    verdict: str
    ok: bool
    #: What ``ticketsim run`` would exit with for this strategy's sale.
    exit_code: int

    @classmethod
    def from_report(cls, report: Report) -> Row:
        return cls(
            strategy=report.strategy,
            safe=report.safe,
            sold=report.sold,
            oversold=report.oversold,
            double_booked=report.double_booked,
            lost_sales=report.lost_sales,
            torn_reads=report.torn_reads,
            elapsed_s=round(report.elapsed_s, 6),
            throughput=round(report.throughput, 3),
            verdict=report.verdict.split(":", 1)[0],
            ok=report.ok,
            exit_code=int(report.exit_code),
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The columns of :func:`to_csv`, and the keys of :meth:`Row.to_json`, in order.
COLUMNS: Final = tuple(f.name for f in dataclasses.fields(Row))


def _names(wanted: Sequence[str] | None) -> list[str]:
    """The strategies to run, by their command-line names; ConfigError for a bad list."""
    if wanted is None:
        return [name.value for name in STRATEGIES]
    if isinstance(wanted, str):  # a str is a Sequence[str] of its letters
        wanted = [wanted]
    if not wanted:
        raise ConfigError(
            "strategies", tuple(wanted), "name at least one strategy (none means all of them)"
        )
    names: list[str] = []
    for name in wanted:
        canonical = get_strategy(name).name.value  # ConfigError names an unknown one
        if canonical in names:
            raise ConfigError("strategies", canonical, "is named twice; name each one once")
        names.append(canonical)
    return names


def compare(
    base: RunConfig,
    strategies: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Row, ...]:
    """Run the sale ``base`` describes under each strategy; one :class:`Row` each.

    Every strategy runs by default, in :data:`~ticketsim.engine.strategies.STRATEGIES`
    order; ``strategies`` names the ones to run, in that order. ``base.strategy`` is
    ignored. Every run gets the same scenario, seed included: when ``base.seed`` is
    ``None`` one seed is drawn and shared. ``progress`` is called with each
    strategy's name before its sale starts.

    Every setting is checked against every strategy before the first sale starts: an
    unknown or repeated name, ``keep`` (each strategy must sell the same fresh
    tickets), or an option a strategy refuses (``lockstep`` with a safe one, a
    schedule it cannot follow) raise :class:`ConfigError` and nothing runs.
    """
    names = _names(strategies)
    if base.keep:
        raise ConfigError(
            "keep", True, "each strategy must sell the same fresh tickets; drop --keep"
        )
    seed = base.seed if base.seed is not None else random.SystemRandom().randrange(2**32)
    configs = [dataclasses.replace(base, strategy=name, seed=seed) for name in names]
    rows: list[Row] = []
    for config in configs:
        if progress is not None:
            progress(config.strategy)
        rows.append(Row.from_report(build_report(run_sale(config))))
    return tuple(rows)


def exit_code(rows: Sequence[Row]) -> ExitCode:
    """What a comparison exits with: what its rows say, with the unsafe strategies'
    violations expected (showing them is the point) and everything else not.

    A strategy that claims to be safe and broke an invariant is a certain violation
    (1); then a db write that failed (4); then a sale that did not finish (3), since
    its row is not the whole story.
    """
    expected = ExitCode.VIOLATED
    codes = {ExitCode(row.exit_code) for row in rows if row.safe or row.exit_code != expected}
    for code in (ExitCode.VIOLATED, ExitCode.IO_ERROR, ExitCode.STALLED):
        if code in codes:
            return code
    return ExitCode.OK


# -- the table ---------------------------------------------------------------------


def _count(value: int | None) -> Text:
    if value is None:
        return Text("unknown", style="bold red")
    return Text(str(value), style="bold red" if value else "")


def table_view(rows: Sequence[Row], title: str | None = None) -> RenderableType:
    """The comparison as one table, a strategy a line; the verdict green when it held."""
    table = Table(title=title, title_justify="left")
    table.add_column("strategy", style="bold")
    for heading in ("sold", "oversold", "double-booked", "lost sales", "torn reads"):
        table.add_column(heading, justify="right")
    table.add_column("elapsed", justify="right")
    table.add_column("throughput", justify="right")
    table.add_column("verdict")
    for row in rows:
        table.add_row(
            row.strategy,
            Text(str(row.sold)),
            _count(row.oversold),
            _count(row.double_booked),
            _count(row.lost_sales),
            _count(row.torn_reads),
            Text(f"{row.elapsed_s:.3f} s"),
            Text(f"{row.throughput:,.1f}/s"),
            Text(row.verdict, style="bold green" if row.ok else "bold red"),
        )
    return table


# -- CSV ---------------------------------------------------------------------------


def _csv_value(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def to_csv(rows: Sequence[Row]) -> str:
    """A header line of :data:`COLUMNS`, then one line per row; booleans as true/false."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(_csv_value(getattr(row, column)) for column in COLUMNS)
    return out.getvalue()


# -- the chart ---------------------------------------------------------------------

_FONT: Final = "sans-serif"
_SAFE_COLOUR: Final = "#2e7d32"
_UNSAFE_COLOUR: Final = "#c62828"
_INK: Final = "#222222"
_GRID: Final = "#dddddd"
_MARGIN: Final = 16
_BAR_H: Final = 14
_ROW_H: Final = 24
#: Roughly how wide one character of the 12 px labels is (no font is embedded).
_CHAR_W: Final = 7.2
_PANEL_W: Final = 260
#: Room after the longest bar for its value.
_VALUE_W: Final = 64
_GAP: Final = 28
_VERDICT_W: Final = 124
_TOP: Final = 112
# Characters XML 1.0 cannot hold at all, escaped or not.
_NOT_XML: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    """``value`` as XML character data (also safe inside a double-quoted attribute)."""
    cleaned = _NOT_XML.sub("\ufffd", str(value))
    return (
        cleaned.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
    )


def _exact(value: float) -> str:
    """The value as stored: integers as they are, floats by their shortest repr."""
    return repr(value) if isinstance(value, float) else str(value)


def _short(value: float) -> str:
    """A value for a label beside a bar or under a tick."""
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"


def _plottable(value: float) -> float:
    return value if math.isfinite(value) and value > 0 else 0.0


def _axis(top: float, *, whole: bool) -> tuple[float, list[float]]:
    """A round axis maximum at or above ``top``, and its ticks (about four steps)."""
    if top <= 0:
        return 1.0, [0.0, 1.0]
    rough = top / 4
    power = 10.0 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= rough)
    if whole:
        step = float(max(1, math.ceil(step)))
    count = max(1, math.ceil(top / step - 1e-9))
    return step * count, [step * i for i in range(count + 1)]


@dataclass(frozen=True)
class _Measure:
    key: str
    heading: str
    axis_label: str
    unit: str
    whole: bool


_MEASURES: Final = (
    _Measure("oversold", "Oversold", "tickets sold beyond the stock (fewer is safer)", "", True),
    _Measure(
        "throughput", "Throughput", "sales per second (more is faster)", " sales per second", False
    ),
)


def _panel(rows: Sequence[Row], measure: _Measure, x0: float, bottom: float) -> list[str]:
    values = [float(getattr(row, measure.key)) for row in rows]
    axis_max, ticks = _axis(max(_plottable(v) for v in values), whole=measure.whole)
    scale = _PANEL_W / axis_max
    parts = [
        f'<g class="panel {measure.key}">',
        f'<text x="{x0:.1f}" y="{_TOP - 14}" font-size="13" font-weight="bold">'
        f"{_text(measure.heading)}</text>",
    ]
    for tick in ticks:
        x = x0 + tick * scale
        parts += [
            f'<line x1="{x:.1f}" y1="{_TOP - 4}" x2="{x:.1f}" y2="{bottom:.1f}" '
            f'stroke="{_GRID}" stroke-width="1"/>',
            f'<text x="{x:.1f}" y="{bottom + 14:.1f}" font-size="10" text-anchor="middle">'
            f"{_text(_short(tick))}</text>",
        ]
    parts += [
        f'<line class="axis" x1="{x0:.1f}" y1="{bottom:.1f}" x2="{x0 + _PANEL_W:.1f}" '
        f'y2="{bottom:.1f}" stroke="{_INK}" stroke-width="1"/>',
        f'<text class="axis-label" x="{x0 + _PANEL_W / 2:.1f}" y="{bottom + 32:.1f}" '
        f'font-size="11" text-anchor="middle">{_text(measure.axis_label)}</text>',
    ]
    for index, (row, value) in enumerate(zip(rows, values, strict=True)):
        y = _TOP + index * _ROW_H + (_ROW_H - _BAR_H) / 2
        width = _plottable(value) * scale
        colour = _SAFE_COLOUR if row.safe else _UNSAFE_COLOUR
        exact = f"{row.strategy}: {_exact(getattr(row, measure.key))}{measure.unit}"
        if measure.key == "oversold":
            exact += " oversold"
        parts += [
            f'<rect class="bar {measure.key}" data-strategy="{_text(row.strategy)}" '
            f'x="{x0:.1f}" y="{y:.1f}" width="{width:.2f}" height="{_BAR_H}" '
            f'fill="{colour}"><title>{_text(exact)}</title></rect>',
            f'<text x="{x0 + width + 4:.1f}" y="{y + _BAR_H - 3:.1f}" font-size="11">'
            f"{_text(_short(value))}</text>",
        ]
    parts.append("</g>")
    return parts


def svg_chart(rows: Sequence[Row], title: str) -> str:
    """A self-contained SVG: oversold tickets and sales per second, a bar each per strategy.

    Two panels side by side, each with its own scale and labelled axis; bars are green
    for safe strategies and red for unsafe ones, and each carries a ``<title>`` with
    its exact value (a tooltip in a browser). Bars have the classes ``bar oversold``
    and ``bar throughput``. No fonts, scripts or links: the file stands alone.
    """
    if not rows:
        raise ValueError("no rows to plot: compare at least one strategy")
    label_w = max(80.0, max(len(row.strategy) for row in rows) * _CHAR_W + 12)
    first_x = _MARGIN + label_w
    second_x = first_x + _PANEL_W + _VALUE_W + _GAP
    verdict_x = second_x + _PANEL_W + _VALUE_W
    width = math.ceil(verdict_x + _VERDICT_W + _MARGIN)
    bottom = _TOP + len(rows) * _ROW_H + 4
    height = math.ceil(bottom + 44 + _MARGIN)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'font-family="{_FONT}" fill="{_INK}">',
        f"<title>{_text(title)}</title>",
        "<desc>Tickets oversold and sales per second under each strategy: "
        "safety costs speed.</desc>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{_MARGIN}" y="28" font-size="16" font-weight="bold">{_text(title)}</text>',
        f'<text x="{_MARGIN}" y="48" font-size="12">Safety costs speed: '
        "an unprotected sale can sell tickets it does not have; a protected one "
        "makes buyers take turns.</text>",
        f'<rect x="{_MARGIN}" y="58" width="12" height="12" fill="{_SAFE_COLOUR}"/>',
        f'<text x="{_MARGIN + 16}" y="68" font-size="11">safe strategy</text>',
        f'<rect x="{_MARGIN + 110}" y="58" width="12" height="12" fill="{_UNSAFE_COLOUR}"/>',
        f'<text x="{_MARGIN + 126}" y="68" font-size="11">unsafe strategy</text>',
        f'<text x="{verdict_x:.1f}" y="{_TOP - 14}" font-size="13" font-weight="bold">'
        "Verdict</text>",
    ]
    for index, row in enumerate(rows):
        baseline = _TOP + index * _ROW_H + _ROW_H / 2 + 4
        colour = _SAFE_COLOUR if row.ok else _UNSAFE_COLOUR
        parts += [
            f'<text class="strategy" x="{first_x - 8:.1f}" y="{baseline:.1f}" font-size="12" '
            f'text-anchor="end">{_text(row.strategy)}</text>',
            f'<text class="verdict" x="{verdict_x:.1f}" y="{baseline:.1f}" font-size="11" '
            f'font-weight="bold" fill="{colour}">{_text(row.verdict)}</text>',
        ]
    parts += _panel(rows, _MEASURES[0], first_x, bottom)
    parts += _panel(rows, _MEASURES[1], second_x, bottom)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_plot(path: str | os.PathLike[str], rows: Sequence[Row], title: str) -> None:
    """Write :func:`svg_chart` to ``path``, atomically (a reader never sees half a file).

    Only SVG is written: any other suffix (``.png`` included) raises ValueError before
    anything is touched. The chart goes to a temp file in the same folder, then
    ``os.replace`` swaps it in; an existing file keeps its permission bits. A path not
    fit to write is a :class:`~ticketsim.errors.PathError`, a write the system refuses
    a :class:`~ticketsim.errors.SystemRefused`.
    """
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix != ".svg":
        what = (
            "PNG needs a plotting library ticketsim does not depend on"
            if suffix == ".png"
            else "only SVG plots are written"
        )
        raise ValueError(f"{os.fspath(path)}: {what}; use a .svg path")
    write_output("--plot", path, svg_chart(rows, title))
