"""Timelines of a sale: who did what, when, drawn from the history alone.

:func:`html_timeline` builds a self-contained page (inline SVG and CSS, nothing
fetched, no scripts) to project in a classroom; :func:`terminal_timeline` builds a
rich renderable for a few buyers; :func:`write_timeline` saves the page. Like the
rest of the library, nothing here prints.

Both views show the same things: one lane per buyer, its steps as marks, the time
it waited for the lock and held it, and its *race window*, from the read its
decision rested on to the write that acted on it. Lanes of buyers a violation names
are drawn in red.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from ticketsim.analysis.checker import Kind, names
from ticketsim.core.events import ENDINGS, Event, Step, buyer_name, buyer_number
from ticketsim.core.frozen import frozen
from ticketsim.core.paths import HTML_MARK, write_output
from ticketsim.views.svg import el as _el
from ticketsim.views.svg import escape as _esc
from ticketsim.views.svg import fmt as _fmt
from ticketsim.views.svg import start_tag, ticks
from ticketsim.views.symbols import NAMED, RACE_WINDOW, SYMBOLS, legend

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterable, Sequence

    from rich.console import RenderableType
    from rich.text import Text

    from ticketsim.analysis.checker import Violation
    from ticketsim.analysis.report import Report
    from ticketsim.core.result import RunResult

#: Past this many buyers a terminal row per buyer no longer fits a screen.
MAX_TERMINAL_BUYERS: Final = 20
#: Past this many buyers the page draws thinner lanes and smaller marks.
COMPACT_ABOVE: Final = 20
#: Width of the time axis in the page, in px: with the labels the page is drawn at about
#: its own size on a 1280 px wide projector, so its text keeps the size it was given.
PLOT_WIDTH: Final = 1100
#: Fewer columns than this cannot keep a buyer's steps apart.
MIN_TERMINAL_WIDTH: Final = 10

# Page geometry, in px.
_LABEL_W: Final = 96  # "buyer-1000" at 12 px, right-aligned against the lanes
_GUTTER_W: Final = 44  # the "before the opening" column where ``ready`` marks go
_PLOT_X0: Final = _LABEL_W + _GUTTER_W + 10
_SVG_W: Final = _PLOT_X0 + PLOT_WIDTH + 16  # a mark at the very end is not clipped
_TOP: Final = 30
_CHART_H: Final = 150
#: The row over each host's lanes that names the host, in a sale of several hosts.
_HOST_ROW: Final = 18.0
#: Where the chart of the remaining count starts in its own picture, below its title.
_CHART_TOP: Final = 34
_FONT: Final = "system-ui, sans-serif"


@frozen
class _Look:
    """Sizes that change with the number of lanes."""

    lane_h: float
    mark_r: float
    font: float


_NORMAL: Final = _Look(lane_h=28.0, mark_r=5.0, font=13.0)
# Lanes as thin as the labels allow: a projected 12 px is about the least a class reads.
_COMPACT: Final = _Look(lane_h=18.0, mark_r=3.6, font=13.0)
#: The size of every other text in the pictures (ticks, axis titles, host names).
_SMALL: Final = 12.0

# Red is kept for violations, so no step is drawn in it.
_RED: Final = "#dc2626"
_RED_TINT: Final = "#fee2e2"
_INK: Final = "#0f172a"
_MUTED: Final = "#475569"
_GRID: Final = "#e2e8f0"
#: How each kind of stretch is painted, in the lanes and in the legend alike.
_PAINT: Final[dict[str, dict[str, object]]] = {
    "wait": {"fill": "#cbd5e1"},
    "hold": {"fill": "#86efac", "stroke": "#15803d"},
    "race": {"fill": "#facc15", "fill_opacity": 0.55, "stroke": "#a16207"},
}
# The two lines of the chart: the db's count, and what the buyers were promised.
_DB_LINE: Final = "#1d4ed8"
_PROMISED_LINE: Final = "#9a3412"
_DB_WORDS: Final = "remaining in the db"
_PROMISED_WORDS: Final = "on sale minus buyers told ok"
#: The chart's two lines, as drawn and as keyed.
_LINES: Final[tuple[tuple[str, dict[str, object]], ...]] = (
    (_DB_WORDS, {"stroke": _DB_LINE, "stroke_width": 2.5}),
    (_PROMISED_WORDS, {"stroke": _PROMISED_LINE, "stroke_width": 1.8, "stroke_dasharray": "6 4"}),
)


@frozen
class _Span:
    """A stretch of one buyer's time: waiting for the lock, holding it, or its race window."""

    buyer: int
    kind: str  # "wait", "hold" or "race"
    start: Event
    end: Event | None  # None: never closed, it lasted until the buyer's last event
    until_ms: float

    @property
    def closed(self) -> bool:
        return self.end is not None


#: The order stretches are drawn in: the race band over the lock bars.
_LAYERS: Final = {"wait": 0, "hold": 1, "race": 2}


@dataclass
class _Sale:
    """What both views draw, derived once from the run and its report."""

    opened_at: float
    end_ms: float
    lanes: tuple[int, ...]
    events: dict[int, list[Event]]
    spans: dict[int, list[_Span]] = field(default_factory=dict)
    #: Buyer -> the explanations of the violations that name it.
    flagged: dict[int, list[str]] = field(default_factory=dict)
    #: The reads of double-booked buyers: each saw a count another buyer saw too.
    ringed: set[Event] = field(default_factory=set)
    #: Buyer -> the host it ran on, in a sale of several hosts (lanes come by host).
    hosts: dict[int, str] = field(default_factory=dict)
    #: The host cut off, and from when to when (ms since the opening).
    cut: tuple[str, float, float] | None = None

    def host_starts(self, index: int) -> str | None:
        """The host whose group of lanes starts at lane ``index``, if one does."""
        host = self.hosts.get(self.lanes[index])
        if host is None or (index and self.hosts.get(self.lanes[index - 1]) == host):
            return None
        return host

    def ms(self, event: Event) -> float:
        return (event.t - self.opened_at) * 1000.0


def _spans(buyer: int, events: Sequence[Event], last_ms: float, sale: _Sale) -> list[_Span]:
    """Pair a buyer's steps into stretches; one never closed lasts until ``last_ms``."""
    spans: list[_Span] = []
    waiting: Event | None = None
    holding: Event | None = None
    read: Event | None = None
    for event in events:
        if event.step is Step.WAIT:
            waiting = event
        elif event.step is Step.ENTER:
            if waiting is not None:
                spans.append(_Span(buyer, "wait", waiting, event, sale.ms(event)))
            waiting, holding = None, event
        elif event.step is Step.LEAVE and holding is not None:
            spans.append(_Span(buyer, "hold", holding, event, sale.ms(event)))
            holding = None
        elif event.step is Step.READ:
            read = event
        elif event.step is Step.WRITE and read is not None:
            spans.append(_Span(buyer, "race", read, event, sale.ms(event)))
            read = None
    spans += [
        _Span(buyer, kind, e, None, last_ms)
        for e, kind in ((waiting, "wait"), (holding, "hold"))
        if e is not None
    ]
    told = any(e.step in (Step.OK, Step.FAIL) for e in events)
    # A buyer that read a ticket left and died before writing was inside its window.
    if read is not None and not told and read.value is not None and read.value > 0:
        spans.append(_Span(buyer, "race", read, None, last_ms))
    return sorted(spans, key=lambda s: _LAYERS[s.kind])


def _build(result: RunResult, report: Report) -> _Sale:
    by_buyer: dict[int, list[Event]] = {}
    for event in sorted(result.history, key=lambda e: e.t):
        by_buyer.setdefault(event.buyer, []).append(event)
    hosts = {e.buyer: e.host for e in result.history if e.host is not None}
    # A sale of several hosts draws each host's buyers together, hosts in name order.
    lanes = tuple(
        sorted(range(1, max([report.buyers, *by_buyer]) + 1), key=lambda n: (hosts.get(n, ""), n))
    )
    sale = _Sale(result.opened_at, 0.0, lanes, {n: by_buyer.get(n, []) for n in lanes})
    sale.hosts = hosts
    if result.hosts is not None and result.hosts.cut is not None:
        host, start, until = result.hosts.cut
        sale.cut = (host, (start - result.opened_at) * 1000.0, (until - result.opened_at) * 1000.0)
    latest = max((sale.ms(e) for e in result.history), default=0.0)
    # Never zero: every position is a fraction of it.
    sale.end_ms = max(result.elapsed_s * 1000.0, latest, 1e-3)
    for buyer, events in sale.events.items():
        ended = bool(events) and events[-1].step in ENDINGS
        last_ms = sale.ms(events[-1]) if ended else sale.end_ms
        sale.spans[buyer] = _spans(buyer, events, last_ms, sale)
    for violation in report.violations:
        named = _numbers(violation.buyers)
        for number in named:
            sale.flagged.setdefault(number, []).append(violation.explanation)
        if violation.kind is Kind.DOUBLE_BOOKED:
            reads = (_deciding_read(sale.events.get(n, [])) for n in named)
            sale.ringed |= {read for read in reads if read is not None}
    return sale


def _numbers(names: Iterable[str]) -> list[int]:
    numbers = []
    for name in names:
        try:
            numbers.append(buyer_number(name))
        except ValueError:
            continue  # a ledger can hold sales by other programs: no lane to mark
    return numbers


def _deciding_read(events: Sequence[Event]) -> Event | None:
    """The read a buyer's write acted on: its last read before its first write."""
    read = None
    for event in events:
        if event.step is Step.WRITE:
            return read
        if event.step is Step.READ:
            read = event
    return read


def _label(x: float, y: float, text: str, size: float, **style: object) -> str:
    return _el("text", x=x, y=y, font_size=size, **{"fill": _INK, **style}, text=text)


def _svg_open(css_class: str, width: float, height: float, title: str) -> str:
    box = f"0 0 {_fmt(width)} {_fmt(height)}"
    head = start_tag(
        "svg", xmlns="http://www.w3.org/2000/svg", class_=css_class, viewBox=box,
        width=width, height=height, role="img", font_family=_FONT,
    )  # fmt: skip
    return head + _el("title", text=title)


def _describe(event: Event, ms: float) -> str:
    """The hover text of one event: every field it has."""
    head = f"{buyer_name(event.buyer)} · {event.step.value} · {ms:.3f} ms"
    lines = [head, SYMBOLS[event.step].what]
    if event.value is not None:
        lines.append(f"value: remaining={event.value}")
    if event.seat is not None:
        lines.append(f"seat: {event.seat}")
    if event.note:
        lines.append(f"note: {event.note}")
    lines.append(f"pid: {event.pid}")
    return "\n".join(lines)


def _mark(step: Step, x: float, y: float, r: float, title: str, **attrs: object) -> str:
    """One step as a shape: the shapes differ too, so a grey print still tells them apart."""
    colour = SYMBOLS[step].colour
    if step is Step.WRITE:
        return _el(
            "rect", **attrs, x=x - r, y=y - r, width=2 * r, height=2 * r, fill=colour, title=title
        )
    if step is Step.TORN:
        k = r * 1.3
        points = " ".join(
            f"{_fmt(a)},{_fmt(b)}" for a, b in ((x, y - k), (x + k, y), (x, y + k), (x - k, y))
        )
        return _el("polygon", **attrs, points=points, fill=colour, title=title)
    if step in (Step.ERROR, Step.LOST):
        d = f"M{_fmt(x - r)} {_fmt(y - r)}L{_fmt(x + r)} {_fmt(y + r)}"
        d += f"M{_fmt(x - r)} {_fmt(y + r)}L{_fmt(x + r)} {_fmt(y - r)}"
        return _el("path", **attrs, d=d, stroke=colour, stroke_width=2.2, title=title)
    if step in (Step.WAIT, Step.ENTER, Step.LEAVE):
        # The lock's steps are the ends of its bars: a thin tick keeps them out of the way.
        return _el(
            "rect",
            **attrs,
            x=x - 1.0,
            y=y - r * 1.4,
            width=2.0,
            height=r * 2.8,
            fill=colour,
            title=title,
        )
    fill = "white" if step is Step.CHECK else colour  # hollow: a look, not a read
    radius = r * (0.7 if step is Step.READY else 1.0)
    return _el(
        "circle",
        **attrs,
        cx=x,
        cy=y,
        r=radius,
        fill=fill,
        stroke=colour,
        stroke_width=1.5,
        title=title,
    )


def _ring(event: Event, x: float, y: float, r: float) -> str:
    return _el(
        "circle",
        class_="ring",
        data_buyer=event.buyer,
        cx=x,
        cy=y,
        r=r + 3.5,
        fill="none",
        stroke=_RED,
        stroke_width=2.0,
        title=f"{buyer_name(event.buyer)} read remaining={event.value}, "
        "the count another buyer of the same seat read too",
    )


@frozen
class _Counts:
    """The chart's vertical scale: where a remaining count stands."""

    low: float
    high: float
    bottom: float

    @classmethod
    def over(cls, values: Sequence[int], bottom: float) -> _Counts:
        low, high = min(values), max(values)
        # A big db sells little in one sale: zoom on the counts rather than squash them at 0.
        if low <= 0 or high - low >= low:
            low = min(low, 0)
        return cls(low, max(high, low + 1), bottom)

    def __call__(self, value: float) -> float:
        return self.bottom - (value - self.low) / (self.high - self.low) * _CHART_H


class _Page:
    """The two SVGs of one sale, on one time scale: the remaining count, then the lanes."""

    def __init__(self, sale: _Sale, result: RunResult) -> None:
        self.sale = sale
        self.result = result
        self.look = _COMPACT if len(sale.lanes) > COMPACT_ABOVE else _NORMAL
        # Each host's lanes come under a row of their own with the host's name: beside
        # the first lane's label, the name ran into it.
        self.tops: list[float] = []
        top = float(_TOP)
        for index in range(len(sale.lanes)):
            if sale.host_starts(index) is not None:
                top += _HOST_ROW
            self.tops.append(top)
            top += self.look.lane_h
        self.axis_y = top
        self.height = self.axis_y + 44
        self.chart_y = _CHART_TOP
        self.bottom = self.chart_y + _CHART_H
        self.chart_height = self.bottom + 44

    def x(self, ms: float) -> float:
        if ms < 0:
            return _LABEL_W + _GUTTER_W / 2  # before the opening: the "ready" column
        return _PLOT_X0 + ms / self.sale.end_ms * PLOT_WIDTH

    def svg(self) -> str:
        """The lanes, one per buyer."""
        parts = [
            _svg_open(
                "timeline compact" if self.look is _COMPACT else "timeline",
                _SVG_W,
                self.height,
                "Timeline of the sale, one lane per buyer",
            )
        ]
        font = self.look.font
        parts += [
            _label(
                _LABEL_W + _GUTTER_W / 2, _TOP - 10, "ready", font, text_anchor="middle",
                fill=_MUTED,
            ),
            _label(_PLOT_X0, _TOP - 10, "the sale opens", font, fill=_MUTED),
        ]  # fmt: skip
        parts += self._time_axis(_TOP - 4, self.axis_y)
        parts += [self._lane(index, buyer) for index, buyer in enumerate(self.sale.lanes)]
        parts.append("</svg>")
        return "\n".join(parts)

    def chart_svg(self) -> str:
        """The remaining count over the same time as the lanes, so a window lines up."""
        parts = [
            _svg_open(
                "count", _SVG_W, self.chart_height, "The remaining count since the sale opened"
            )
        ]
        parts += self._time_axis(self.chart_y, self.bottom)
        parts += self._chart()
        parts.append("</svg>")
        return "\n".join(parts)

    def _time_axis(self, top: float, bottom: float) -> list[str]:
        """The grid of the time since the opening, labelled under ``bottom``."""
        parts = []
        axis = ticks(0.0, self.sale.end_ms, 10)
        for tick in axis.values:
            x = self.x(tick)
            parts.append(_el("line", class_="grid", x1=x, y1=top, x2=x, y2=bottom, stroke=_GRID))
            parts.append(
                _label(x, bottom + 16, f"{tick:.{axis.decimals}f}", _SMALL, text_anchor="middle")
            )
        line = {"x1": _PLOT_X0, "x2": _PLOT_X0, "stroke": _INK, "stroke_width": 1.5}
        parts.append(_el("line", y1=top, y2=bottom, **line))
        parts.append(
            _label(
                _PLOT_X0 + PLOT_WIDTH / 2, bottom + 36, "time since the sale opened (ms)", _SMALL,
                text_anchor="middle",
            )
        )  # fmt: skip
        return parts

    def _lane(self, index: int, buyer: int) -> str:
        look, sale = self.look, self.sale
        top = self.tops[index]
        mid = top + look.lane_h / 2
        named = sale.flagged.get(buyer)
        name = buyer_name(buyer)
        outline = {"stroke": _RED, "stroke_width": 1.5} if named else {}
        stripe = "#f8fafc" if index % 2 else "#ffffff"  # stripes guide the eye across 50 lanes
        hover = name + ("\nnamed in: " + "\n".join(named) if named else "")
        parts = [
            f'<g class="lane{" violating" if named else ""}" data-buyer="{buyer}">',
            _el(
                "rect",
                class_="lane-bg",
                x=2.0,
                y=top,
                width=_SVG_W - 4.0,
                height=look.lane_h,
                fill=_RED_TINT if named else stripe,
                **outline,
                title=hover,
            ),
            _label(
                _LABEL_W - 6,
                mid + look.font * 0.35,
                name,
                look.font,
                class_="lane-label",
                text_anchor="end",
                fill=_RED if named else _INK,
                font_weight="bold" if named else "normal",
            ),
        ]
        host = sale.host_starts(index)
        if host is not None:  # a rule and the host's name in the row over its first lane
            rule = top - _HOST_ROW + 1
            parts.append(_el("line", x1=2.0, y1=rule, x2=_SVG_W - 2.0, y2=rule, stroke="#64748b"))
            parts.append(_label(4.0, top - 4, host, _SMALL, class_="host-label", fill="#475569"))
        parts += [self._span(span, top) for span in sale.spans[buyer]]
        if sale.cut is not None and sale.hosts.get(buyer) == sale.cut[0]:
            x0 = self.x(max(sale.cut[1], 0.0))
            x1 = self.x(min(sale.cut[2], sale.end_ms))
            parts.append(
                _el(
                    "rect",
                    class_="cut",
                    x=x0,
                    y=top + 1,
                    width=max(x1 - x0, 2.0),
                    height=look.lane_h - 2,
                    fill="#334155",
                    fill_opacity=0.3,
                    title=f"{sale.cut[0]} cut off: {sale.cut[1]:.0f} → {sale.cut[2]:.0f} ms",
                )
            )

        for event in sale.events[buyer]:
            ms = sale.ms(event)
            x = self.x(ms)
            css = f"event step-{event.step.value}"
            parts.append(
                _mark(
                    event.step,
                    x,
                    mid,
                    look.mark_r,
                    _describe(event, ms),
                    class_=css,
                    data_buyer=buyer,
                )
            )
            if event in sale.ringed:
                parts.append(_ring(event, x, mid, look.mark_r))
        parts.append("</g>")
        return "\n".join(parts)

    def _span(self, span: _Span, top: float) -> str:
        h = self.look.lane_h
        start = self.sale.ms(span.start)
        x0 = self.x(max(start, 0.0))
        width = max(self.x(span.until_ms) - x0, 3.0)  # a window of no time must still be seen
        name = buyer_name(span.buyer)
        cut = (
            ""
            if span.closed
            else "; never closed: the buyer ended inside it, when is not known, so it is "
            "drawn faint until the buyer's last event"
        )
        how_long = f"{start:.3f} → {span.until_ms:.3f} ms ({span.until_ms - start:.3f} ms{cut})"
        style: dict[str, object] = {} if span.closed else {"stroke_dasharray": "4 3"}
        css = span.kind if span.closed else f"{span.kind}-open"
        if span.kind == "race":
            wrote = f", wrote remaining={span.end.value}" if span.end is not None else ""
            title = (
                f"{name} race window: read remaining={span.start.value}{wrote}\n{how_long}\n"
                "between its read and its write nothing stops another buyer reading the same count"
            )
            style |= {"y": top + 1, "height": h - 2}
        elif span.kind == "hold":
            # Buyers record "leave" just after releasing: the next "enter" can come first.
            title = (
                f"{name} holds the lock\n{how_long}\n"
                "(the release is recorded just after it happens, so the next holder's "
                "enter may show a moment earlier)"
            )
            style |= {"y": top + h * 0.22, "height": h * 0.56}
        else:
            title = f"{name} waits for the lock\n{how_long}"
            style |= {"y": top + h * 0.38, "height": h * 0.24}
        style |= _PAINT[span.kind]
        if not span.closed:
            style["fill_opacity"] = 0.25
        return _el(
            "rect", class_=css, data_buyer=span.buyer, x=x0, width=width, **style, title=title
        )

    def _chart(self) -> list[str]:
        """The remaining count along the same time: what the db said, and what it would
        say if every buyer told "you got a ticket" had been counted."""
        sale, start = self.sale, self.result.initial.remaining
        events = [e for e in self.result.history if sale.ms(e) >= 0]
        writes = sorted(
            (e for e in events if e.step is Step.WRITE and e.value is not None), key=lambda e: e.t
        )
        reads = [e for e in events if e.step is Step.READ and e.value is not None]
        oks = sorted((e for e in events if e.step is Step.OK), key=lambda e: e.t)
        db_steps = [(sale.ms(e), e.value or 0) for e in writes]
        promised = [(sale.ms(e), start - n) for n, e in enumerate(oks, start=1)]
        values = [start, *(v for _, v in db_steps + promised), *(e.value or 0 for e in reads)]
        y = _Counts.over(values, self.bottom)
        parts = ['<g class="chart">', *self._count_grid(y)]
        parts.append(
            self._steps(
                "promised",
                start,
                promised,
                y,
                "tickets on sale minus buyers told they got one: "
                "what the db would say if every sale had been counted",
            )
        )
        parts.append(
            self._steps(
                "remaining", start, db_steps, y, "remaining in the db: each write as it happened"
            )
        )
        parts += [self._write_mark(event, y) for event in writes]
        for event in reads:
            parts += self._read_mark(event, y)
        parts.append("</g>")
        return parts

    def _count_grid(self, y: _Counts) -> list[str]:
        top, right = self.chart_y, _PLOT_X0 + PLOT_WIDTH
        parts = [
            _label(4.0, top - 14, "remaining in the db", 15.0, font_weight="bold"),
            *self._chart_key(_PLOT_X0 + 120, top - 14),
            _el(
                "rect",
                x=_PLOT_X0,
                y=top,
                width=PLOT_WIDTH,
                height=_CHART_H,
                fill="none",
                stroke="#94a3b8",
            ),
        ]
        for value in ticks(y.low, y.high, 6).values:
            if value != int(value):
                continue  # counts are whole numbers
            stroke = _INK if value == 0 else _GRID
            parts.append(
                _el("line", x1=_PLOT_X0, y1=y(value), x2=right, y2=y(value), stroke=stroke)
            )
            parts.append(
                _label(_PLOT_X0 - 6, y(value) + 4, str(int(value)), _SMALL, text_anchor="end")
            )
        return parts

    @staticmethod
    def _chart_key(left: float, baseline: float) -> list[str]:
        """The two lines' key, beside the chart's title: the legend is further down."""
        parts = []
        x = left
        for label, style in _LINES:
            parts.append(_el("line", x1=x, y1=baseline - 4, x2=x + 26, y2=baseline - 4, **style))
            parts.append(_label(x + 34, baseline, label, _SMALL))
            x += 34 + len(label) * 7.0 + 28  # 12 px characters are under 7 px wide
        return parts

    def _write_mark(self, event: Event, y: _Counts) -> str:
        r, ms = self.look.mark_r, self.sale.ms(event)
        return _el(
            "rect",
            class_="write-mark",
            x=self.x(ms) - r * 0.7,
            y=y(event.value or 0) - r * 0.7,
            width=r * 1.4,
            height=r * 1.4,
            fill=SYMBOLS[Step.WRITE].colour,
            title=f"{buyer_name(event.buyer)} wrote remaining={event.value} "
            f"(seat {event.seat}) at {ms:.3f} ms",
        )

    def _read_mark(self, event: Event, y: _Counts) -> list[str]:
        """A read where the count it saw stands, ringed if another buyer saw it too."""
        r, ms = self.look.mark_r, self.sale.ms(event)
        x, at = self.x(ms), y(event.value or 0)
        mark = _el(
            "circle",
            class_="read-mark",
            data_buyer=event.buyer,
            cx=x,
            cy=at,
            r=r,
            fill=SYMBOLS[Step.READ].colour,
            fill_opacity=0.6,
            title=f"{buyer_name(event.buyer)} read remaining={event.value} at {ms:.3f} ms",
        )
        return [mark, _ring(event, x, at, r)] if event in self.sale.ringed else [mark]

    def _steps(
        self,
        kind: str,
        start: int,
        steps: list[tuple[float, int]],
        y: Callable[[float], float],
        title: str,
    ) -> str:
        d = f"M{_fmt(_PLOT_X0)} {_fmt(y(start))}"
        for ms, value in sorted(steps):
            d += f"H{_fmt(self.x(ms))}V{_fmt(y(value))}"
        d += f"H{_fmt(_PLOT_X0 + PLOT_WIDTH)}"
        style = dict(_LINES)[_PROMISED_WORDS if kind == "promised" else _DB_WORDS]
        return _el("path", class_=kind, d=d, fill="none", **style, title=title)


def _keyed() -> dict[str, list[Step]]:
    """The page's key of each step, with the steps it stands for, in the steps' order."""
    keyed: dict[str, list[Step]] = {}
    for step in Step:
        keyed.setdefault(SYMBOLS[step].key, []).append(step)
    return keyed


def _chars(steps: Iterable[Step]) -> str:
    return " ".join(dict.fromkeys(SYMBOLS[step].char for step in steps))


def _legend() -> str:
    """The key, drawn with the same shapes as the timeline, each beside the character the
    terminal timeline and the live view draw for it: a class that saw one reads the other."""
    r, mid = 5.0, 14.0
    items = [
        (
            _chars(steps),
            key,
            _mark(steps[0], 12.0, mid, r, key, class_="swatch"),
            " ".join(step.value for step in steps),
        )
        for key, steps in _keyed().items()
    ]
    bars: list[tuple[str, str, dict[str, object]]] = [
        (
            SYMBOLS[Step.WAIT].char,
            "waiting for the lock",
            {"y": mid - 3, "height": 6.0, **_PAINT["wait"]},
        ),
        (
            SYMBOLS[Step.ENTER].char,
            "holding the lock",
            {"y": mid - 8, "height": 16.0, **_PAINT["hold"]},
        ),
        (
            RACE_WINDOW,
            "race window: read → write",
            {"y": mid - 11, "height": 22.0, **_PAINT["race"]},
        ),
        (
            NAMED,
            "buyer named in a violation",
            {"y": mid - 11, "height": 22.0, "fill": _RED_TINT, "stroke": _RED, "stroke_width": 1.5},
        ),
    ]
    items += [
        (char, label, _el("rect", class_="swatch", x=0.0, width=26.0, **box), "")
        for char, label, box in bars
    ]
    ringed = _mark(Step.READ, 12.0, mid, r, "read") + _el(
        "circle", cx=12.0, cy=mid, r=r + 3.5, fill="none", stroke=_RED, stroke_width=2.0
    )
    items.append(("", "read of a double-booked seat", ringed, ""))
    per_row, row_h = 4, 28.0
    cell_w = _SVG_W / per_row
    parts = [_svg_open("legend", _SVG_W, math.ceil(len(items) / per_row) * row_h, "Legend")]
    for n, (chars, label, swatch, steps) in enumerate(items):
        x, y = (n % per_row) * cell_w, (n // per_row) * row_h
        group = start_tag(
            "g", class_="key", data_steps=steps, transform=f"translate({_fmt(x)},{_fmt(y)})"
        )
        parts.append(group + swatch)
        at = 34.0
        if chars:
            parts.append(
                _label(
                    at, mid + 5, chars, 14.0, class_="key-char", font_family="monospace",
                    font_weight="bold",
                )
            )  # fmt: skip
            at += len(chars) * 8.5 + 8  # a 14 px monospace character is 8.4 px wide
        parts.append(_label(at, mid + 5, label, 13.0, class_="key-label") + "</g>")
    parts.append("</svg>")
    return "\n".join(parts)


_CSS: Final = """
body { font-family: system-ui, sans-serif; color: #0f172a; margin: .75rem auto;
       max-width: 1440px; padding: 0 1rem; }
h1 { font-size: 1.35rem; margin: 0 0 .25rem; }
h2 { font-size: 1.15rem; margin: 1rem 0 .5rem; }
dl.facts { display: flex; flex-wrap: wrap; gap: .1rem 1.25rem; margin: 0 0 .4rem; }
dl.facts div { display: flex; gap: .4rem; }
dl.facts dt { color: #475569; }
dl.facts dd { margin: 0; font-weight: 600; }
.verdict { font-size: 1.15rem; font-weight: 700; padding: .35rem .75rem; border-radius: 6px;
           margin: 0 0 .5rem; overflow-wrap: anywhere; }
.verdict.ok { background: #dcfce7; color: #14532d; }
.verdict.bad { background: #fee2e2; color: #7f1d1d; }
svg { max-width: 100%; height: auto; display: block; }
/* The pictures fill a wide screen: a 1080p projector draws them larger, not smaller. */
figure svg, section.key svg { width: 100%; }
figure { margin: .5rem 0; }
details.lanes > summary, details.more > summary { cursor: pointer; font-weight: 600; }
details.lanes > summary { font-size: 1.15rem; margin: 1rem 0 .5rem; }
ul.kinds { list-style: none; padding: 0; margin: 0; }
ul.kinds > li { margin: .4rem 0; overflow-wrap: anywhere; }
ul.kinds .kind { color: #b91c1c; font-weight: 700; }
ul.kinds .count { font-weight: 700; }
ol.violations li { margin: .25rem 0; overflow-wrap: anywhere; }
.note { color: #475569; overflow-wrap: anywhere; }
"""

#: Violations of a kind told in full; the rest of the kind are one click away.
EXAMPLES_SHOWN: Final = 2


def _sale_size(report: Report) -> str:
    buyers = f"{report.buyers} buyer{'s' if report.buyers != 1 else ''}"
    return f"{buyers}, {report.tickets} ticket{'s' if report.tickets != 1 else ''}"


def html_timeline(result: RunResult, report: Report) -> str:
    """A self-contained HTML page (inline SVG and CSS, no scripts) of the sale's timeline.

    The verdict and the remaining count over time first, so that a projected screen
    shows them without scrolling; the violations grouped by kind; then one lane per
    buyer along the same time (a section that folds), every violation in red.
    Hovering a mark shows the event behind it.
    """
    sale = _build(result, report)
    title = f"ticketsim timeline: {report.strategy}, {_sale_size(report)}"
    page = _Page(sale, result)
    lanes = len(sale.lanes)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            HTML_MARK,
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_esc(title)}</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            *_header(title, report),
            "<main>",
            '<figure class="count">',
            page.chart_svg(),
            "</figure>",
            *_violations(report),
            '<details class="lanes" open>',
            f"<summary>The buyers, one lane each ({lanes}): click to fold or unfold</summary>",
            '<section class="key">',
            _legend(),
            "</section>",
            '<figure class="lanes">',
            page.svg(),
            '<figcaption class="note">Hover over a mark to see the event behind it (buyer, '
            "step, time, value, seat, note). A yellow band is a race window: the time between "
            "a buyer's read and its write, in which nothing stops another buyer reading the "
            "same count.</figcaption>",
            "</figure>",
            "</details>",
            *_notes(report),
            "</main>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _header(title: str, report: Report) -> list[str]:
    """The title, the settings of the sale and its verdict."""
    facts = [
        ("strategy", report.strategy),
        ("buyers", str(report.buyers)),
        ("tickets", str(report.tickets)),
        ("delay", f"{report.delay:g} s"),
        ("seed", str(report.seed)),
        ("start method", report.start_method),
        ("elapsed", f"{report.elapsed_s * 1000:.3f} ms"),
    ]
    if report.pool:
        facts.append(("pool", f"{report.pool} workers"))
    return [
        "<header>",
        f"<h1>{_esc(title)}</h1>",
        '<dl class="facts">',
        *(f"<div><dt>{_esc(k)}</dt><dd>{_esc(v)}</dd></div>" for k, v in facts),
        "</dl>",
        f'<p class="verdict {"ok" if report.ok else "bad"}">{_esc(report.verdict)}</p>',
        "</header>",
    ]


def _violations(report: Report) -> list[str]:
    """The violations by kind: how many, the first few told in full with their buyers in
    brief, the rest folded away, so that 50 buyers are not a wall of names."""
    out = ["<section>", "<h2>Violations</h2>"]
    if not report.violations:
        return [*out, '<p class="note">None: every invariant held.</p>', "</section>"]
    kinds: dict[Kind, list[Violation]] = {}
    for violation in report.violations:
        kinds.setdefault(violation.kind, []).append(violation)
    out.append('<ul class="kinds">')
    for kind, found in kinds.items():
        buyers = {name for violation in found for name in violation.buyers}
        count = f"{len(found)} violation{'s' if len(found) != 1 else ''}"
        named = f", {len(buyers)} buyer{'s' if len(buyers) != 1 else ''} named" if buyers else ""
        out.append(
            f'<li class="kind-group" data-kind="{_esc(kind.value)}">'
            f'<span class="kind">{_esc(kind.value)}</span>: '
            f'<span class="count">{count}</span><span class="note">{named}</span>'
        )
        out += _violation_list(found[:EXAMPLES_SHOWN], "examples")
        if len(found) > EXAMPLES_SHOWN:
            rest = len(found) - EXAMPLES_SHOWN
            out.append(f'<details class="more"><summary>{rest} more {_esc(kind.value)}</summary>')
            out += _violation_list(found[EXAMPLES_SHOWN:], "rest")
            out.append("</details>")
        out.append("</li>")
    return [*out, "</ul>", "</section>"]


def _violation_list(violations: Sequence[Violation], css: str) -> list[str]:
    out = [f'<ol class="violations {css}">']
    for violation in violations:
        about = [f"seat {violation.seat}"] if violation.seat is not None else []
        if violation.buyers:
            about.append(names(violation.buyers))
        out.append(
            '<li class="violation">'
            + (f'<span class="note">({_esc("; ".join(about))})</span> ' if about else "")
            + f"{_esc(violation.explanation)}</li>"
        )
    return [*out, "</ol>"]


def _notes(report: Report) -> list[str]:
    told = (
        ("Stalled", report.stalled),
        ("Note", report.caveat),
        ("Schedule (ticketsim replay --schedule takes it)", report.schedule),
    )
    notes = [f"Fault: {fault}" for fault in report.faults]
    notes += [f"{label}: {text}" for label, text in told if text]
    return [f'<p class="note">{_esc(note)}</p>' for note in notes]


def write_timeline(path: str | os.PathLike[str], result: RunResult, report: Report) -> None:
    """Write :func:`html_timeline` to ``path``: a reader sees the old page or the new one.

    Raises :class:`~ticketsim.errors.PathError` for a path not fit to write (checked
    first) and :class:`~ticketsim.errors.SystemRefused` if the system refuses the
    write; no temp file is left behind.
    """
    write_output("--timeline", path, html_timeline(result, report))


# The steps the terminal marks; a later one wins a column they share. The lock's
# steps are not marked: the stretches between them are filled instead.
_MARKED: Final = (
    Step.CHECK, Step.MARK, Step.TORN, Step.READ, Step.RETRY, Step.WRITE, Step.COMMIT, Step.OK,
    Step.FAIL, Step.ERROR, Step.LOST,
)  # fmt: skip
_RANK: Final = {step: rank for rank, step in enumerate(_MARKED)}
_FILL: Final = {
    "wait": SYMBOLS[Step.WAIT].char, "hold": SYMBOLS[Step.ENTER].char, "race": RACE_WINDOW
}  # fmt: skip
_LEGEND: Final = (
    legend(step for step in Step if step in _RANK),
    f"{RACE_WINDOW} race window (read → write)  {legend((Step.WAIT, Step.ENTER))}  "
    f"{NAMED} in red: named in a violation",
)


def terminal_timeline(result: RunResult, report: Report, width: int = 100) -> RenderableType:
    """A timeline for the terminal: one row per buyer, time binned into ``width`` columns.

    For more than :data:`MAX_TERMINAL_BUYERS` buyers, one line saying to use the HTML
    timeline instead. Raises ``ValueError`` for ``width`` under :data:`MIN_TERMINAL_WIDTH`.
    """
    # rich only here: the page needs nothing beyond the standard library.
    from rich.console import Group  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    if width < MIN_TERMINAL_WIDTH:
        raise ValueError(f"width={width} is too narrow: give at least {MIN_TERMINAL_WIDTH}")
    sale = _build(result, report)
    if len(sale.lanes) > MAX_TERMINAL_BUYERS:
        return Text(
            f"{len(sale.lanes)} buyers are too many for a terminal timeline (at most "
            f"{MAX_TERMINAL_BUYERS}); use the HTML timeline instead.",
            style="yellow",
        )

    def column(ms: float) -> int:
        return min(width - 1, max(0, int(ms / sale.end_ms * width)))

    label_w = max(len(buyer_name(n)) for n in sale.lanes) + 2
    lines: list[RenderableType] = [
        Text(
            f"{report.strategy}, {_sale_size(report)}: one column is {sale.end_ms / width:.3g} ms",
            style="bold",
        )
    ]
    for index, buyer in enumerate(sale.lanes):
        host = sale.host_starts(index)
        if host is not None:
            lines.append(Text(f"{host}:", style="cyan"))
        row = [" "] * width
        for span in sale.spans[buyer]:
            for col in range(column(sale.ms(span.start)), column(span.until_ms) + 1):
                row[col] = _FILL[span.kind]
        marks = [e for e in sale.events[buyer] if e.step in _RANK and sale.ms(e) >= 0]
        for event in sorted(marks, key=lambda e: _RANK[e.step]):
            row[column(sale.ms(event))] = SYMBOLS[event.step].char
        named = buyer in sale.flagged
        # The star says it where colour does not reach (a pipe, a log, a grey print).
        head = f"{NAMED if named else ' '}{buyer_name(buyer):<{label_w - 1}}"
        lines.append(Text(head + "".join(row), style="red" if named else ""))
    lines += _axis(label_w, width, sale.end_ms)
    lines += [Text(line, style="dim") for line in _LEGEND]
    return Group(*lines)


def _axis(label_w: int, width: int, end_ms: float) -> list[Text]:
    from rich.text import Text  # noqa: PLC0415 - see terminal_timeline

    ruler = ["─"] * width
    labels = [" "] * (width + 8)
    free = 0  # the first column a label may start at, so that labels never run together
    for i in range(5):
        col = round(i * (width - 1) / 4)
        ruler[col] = "└" if i == 0 else "┘" if i == 4 else "┴"
        text = f"{end_ms * i / 4:.3g}" + (" ms" if i == 4 else "")
        start = max(col - len(text) + 1, 0) if i == 4 else col
        if start >= free:
            labels[start : start + len(text)] = text
            free = start + len(text) + 1
    pad = " " * label_w
    return [Text(pad + "".join(ruler), style="dim"), Text(pad + "".join(labels).rstrip())]
