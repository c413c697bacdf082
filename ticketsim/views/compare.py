"""A comparison of the strategies, to read: a rich table, CSV, and an SVG chart.

:func:`table_view` and :func:`to_csv` show the rows of
:func:`ticketsim.search.compare.compare` one strategy a line; :func:`svg_chart` and
:func:`write_plot` draw oversold tickets against sales per second: the tutorial's
trade-off, safety costs speed, at a glance. Like the rest of the library, nothing
here prints.
"""

from __future__ import annotations

import csv
import io
import math
import os
from typing import TYPE_CHECKING, Final

from rich import box
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from ticketsim.core.frozen import frozen
from ticketsim.core.paths import SVG_MARK, write_output
from ticketsim.search.compare import COLUMNS
from ticketsim.views.svg import el, start_tag, ticks

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from rich.console import Console, ConsoleOptions, RenderableType

    from ticketsim.search.compare import Row


# -- the table ---------------------------------------------------------------------


def _count(value: int | None) -> Text:
    if value is None:
        return Text("unknown", style="bold red")
    return Text(str(value), style="bold red" if value else "")


#: The figures' columns: the heading of the wide table, the short one of the narrow table.
_HEADINGS: Final = (
    ("sold", "sold"),
    ("oversold", "over"),
    ("double-booked", "dbl"),
    ("lost sales", "lost"),
    ("torn reads", "torn"),
    ("elapsed", "secs"),
    ("throughput", "sales/s"),
)
#: What the narrow table's short headings stand for, printed under it.
NARROW_LEGEND: Final = (
    "over = oversold, dbl = double-booked seats, lost = lost sales, torn = torn reads, "
    "secs = elapsed seconds, sales/s = throughput, ? = unknown (the db could not be read)"
)


def _figures(row: Row, *, narrow: bool) -> list[Text]:
    if narrow:  # the units go to the legend, and the fractions of a sale per second
        times = [Text(f"{row.elapsed_s:.3f}"), Text(f"{row.throughput:,.0f}")]
        lost = Text("?", style="bold red") if row.lost_sales is None else _count(row.lost_sales)
    else:
        times = [Text(f"{row.elapsed_s:.3f} s"), Text(f"{row.throughput:,.1f}/s")]
        lost = _count(row.lost_sales)
    return [
        Text(str(row.sold)),
        _count(row.oversold),
        _count(row.double_booked),
        lost,
        _count(row.torn_reads),
        *times,
    ]


def _table(rows: Sequence[Row], title: str | None, *, narrow: bool) -> Table:
    if narrow:
        # One space between columns and no frame: ten strategies, a name of 22
        # letters and a verdict of 15 fit 80 columns.
        table = Table(
            title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=0, show_edge=False
        )
    else:
        table = Table(title=title, title_justify="left")
    # Never cut: a name, a figure or a verdict with an ellipsis is a wrong one. Where
    # room runs out a verdict wraps between its words ("DB WRITE" / "FAILED").
    table.add_column("strategy", style="bold", no_wrap=True)
    for wide, short in _HEADINGS:
        table.add_column(short if narrow else wide, justify="right", no_wrap=narrow)
    longest_word = max(len(word) for row in rows for word in row.verdict.split() or [""])
    table.add_column("verdict", no_wrap=not narrow, min_width=longest_word if narrow else None)
    for row in rows:
        verdict = Text(row.verdict, style="bold green" if row.ok else "bold red")
        table.add_row(row.strategy, *_figures(row, narrow=narrow), verdict)
    return table


class Comparison:
    """The table as wide as the terminal allows: full headings where they fit, else short
    ones explained under it."""

    def __init__(self, rows: Sequence[Row], title: str | None) -> None:
        self.rows, self.title = rows, title

    def table(self, *, narrow: bool) -> Table:
        """The wide table, or the narrow one (whose headings :data:`NARROW_LEGEND` explains)."""
        return _table(self.rows, self.title, narrow=narrow)

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> Iterator[RenderableType]:
        wide = self.table(narrow=False)
        # Measured as if room were endless: a measure is clamped to the room it is given.
        needs = Measurement.get(console, options.update_width(10_000), wide).maximum
        if needs <= options.max_width:
            yield wide
            return
        yield self.table(narrow=True)
        yield Text(NARROW_LEGEND, style="dim")


def table_view(rows: Sequence[Row], title: str | None = None) -> RenderableType:
    """The comparison as one table, a strategy a line; the verdict green when it held.

    In a terminal too narrow for the full headings (80 columns), short headings and a
    line that explains them; strategy names and verdicts are never cut."""
    return Comparison(rows, title)


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


@frozen
class _Layout:
    """The chart's geometry, in px."""

    margin: int
    bar_h: int
    #: Taller than a bar, so that neighbouring bars never touch.
    row_h: int
    #: Roughly how wide one character of the 12 px labels is (no font is embedded).
    char_w: float
    panel_w: int
    #: Room after the longest bar for its value.
    value_w: int
    gap: int
    verdict_w: int
    #: Where the first row starts: below the title, the subtitle, the key and the headings.
    top: int


_AT: Final = _Layout(
    margin=16, bar_h=14, row_h=24, char_w=7.2, panel_w=260, value_w=64, gap=28, verdict_w=124,
    top=112,
)  # fmt: skip

_FONT: Final = "sans-serif"
_SAFE_COLOUR: Final = "#2e7d32"
_UNSAFE_COLOUR: Final = "#c62828"
_INK: Final = "#222222"
_GRID: Final = "#dddddd"


def _px(value: float) -> str:
    """A coordinate of the chart: a tenth of a pixel is fine enough."""
    return f"{value:.1f}"


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


@frozen
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


def _heading(x: float, text: str) -> str:
    return el("text", x=_px(x), y=_AT.top - 14, font_size=13, font_weight="bold", text=text)


def _axis(measure: _Measure, top: float, x0: float, bottom: float) -> tuple[float, list[str]]:
    """The panel's scale (px per unit) and its grid, tick labels and labelled axis."""
    # 2.5 as well: a scale of 0, 25, 50, 75, 100 reads better than 0, 20, … 120.
    axis = ticks(0.0, top, 4, multiples=(1.0, 2.0, 2.5, 5.0), whole=measure.whole, cover=True)
    scale = _AT.panel_w / axis.values[-1]
    parts = []
    for tick in axis.values:
        x = _px(x0 + tick * scale)
        parts += [
            el("line", x1=x, y1=_AT.top - 4, x2=x, y2=_px(bottom), stroke=_GRID, stroke_width=1),
            el("text", x=x, y=_px(bottom + 14), font_size=10, text_anchor="middle",
               text=_short(tick)),
        ]  # fmt: skip
    parts += [
        el("line", class_="axis", x1=_px(x0), y1=_px(bottom), x2=_px(x0 + _AT.panel_w),
           y2=_px(bottom), stroke=_INK, stroke_width=1),
        el("text", class_="axis-label", x=_px(x0 + _AT.panel_w / 2), y=_px(bottom + 32),
           font_size=11, text_anchor="middle", text=measure.axis_label),
    ]  # fmt: skip
    return scale, parts


def _panel(rows: Sequence[Row], measure: _Measure, x0: float, bottom: float) -> list[str]:
    values = [float(getattr(row, measure.key)) for row in rows]
    scale, axis = _axis(measure, max(_plottable(v) for v in values), x0, bottom)
    parts = [start_tag("g", class_=f"panel {measure.key}"), _heading(x0, measure.heading), *axis]
    for index, (row, value) in enumerate(zip(rows, values, strict=True)):
        y = _AT.top + index * _AT.row_h + (_AT.row_h - _AT.bar_h) / 2
        width = _plottable(value) * scale
        exact = f"{row.strategy}: {_exact(getattr(row, measure.key))}{measure.unit}"
        if measure.key == "oversold":
            exact += " oversold"
        parts += [
            el("rect", class_=f"bar {measure.key}", data_strategy=row.strategy, x=_px(x0),
               y=_px(y), width=f"{width:.2f}", height=_AT.bar_h,
               fill=_SAFE_COLOUR if row.safe else _UNSAFE_COLOUR, title=exact),
            el("text", x=_px(x0 + width + 4), y=_px(y + _AT.bar_h - 3), font_size=11,
               text=_short(value)),
        ]  # fmt: skip
    parts.append("</g>")
    return parts


def _key(x: int, colour: str, label: str) -> list[str]:
    return [
        el("rect", x=x, y=58, width=12, height=12, fill=colour),
        el("text", x=x + 16, y=68, font_size=11, text=label),
    ]


def _names_and_verdicts(rows: Sequence[Row], first_x: float, verdict_x: float) -> list[str]:
    parts = [_heading(verdict_x, "Verdict")]
    for index, row in enumerate(rows):
        baseline = _px(_AT.top + index * _AT.row_h + _AT.row_h / 2 + 4)
        parts += [
            el("text", class_="strategy", x=_px(first_x - 8), y=baseline, font_size=12,
               text_anchor="end", text=row.strategy),
            el("text", class_="verdict", x=_px(verdict_x), y=baseline, font_size=11,
               font_weight="bold", fill=_SAFE_COLOUR if row.ok else _UNSAFE_COLOUR,
               text=row.verdict),
        ]  # fmt: skip
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
    label_w = max(80.0, max(len(row.strategy) for row in rows) * _AT.char_w + 12)
    first_x = _AT.margin + label_w
    second_x = first_x + _AT.panel_w + _AT.value_w + _AT.gap
    verdict_x = second_x + _AT.panel_w + _AT.value_w
    width = math.ceil(verdict_x + _AT.verdict_w + _AT.margin)
    bottom = _AT.top + len(rows) * _AT.row_h + 4
    height = math.ceil(bottom + 44 + _AT.margin)
    parts = [
        start_tag("svg", xmlns="http://www.w3.org/2000/svg", version="1.1", width=width,
                  height=height, viewBox=f"0 0 {width} {height}", role="img",
                  font_family=_FONT, fill=_INK),
        SVG_MARK,
        el("title", text=title),
        el("desc", text="Tickets oversold and sales per second under each strategy: "
           "safety costs speed."),
        el("rect", width=width, height=height, fill="#ffffff"),
        el("text", x=_AT.margin, y=28, font_size=16, font_weight="bold", text=title),
        el("text", x=_AT.margin, y=48, font_size=12, text="Safety costs speed: an unprotected "
           "sale can sell tickets it does not have; a protected one makes buyers take turns."),
        *_key(_AT.margin, _SAFE_COLOUR, "safe strategy"),
        *_key(_AT.margin + 110, _UNSAFE_COLOUR, "unsafe strategy"),
        *_names_and_verdicts(rows, first_x, verdict_x),
        *_panel(rows, _MEASURES[0], first_x, bottom),
        *_panel(rows, _MEASURES[1], second_x, bottom),
        "</svg>",
    ]  # fmt: skip
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
