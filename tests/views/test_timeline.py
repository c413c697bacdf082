"""The timelines of a sale: the HTML page and the terminal view, drawn from real runs.

The runs are forced (lockstep) or safe (a lock), so what each view must show is
known in advance: who raced, who was double-booked, who waited for whom.
"""

from __future__ import annotations

import html
import os
import re
import stat
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import replace
from html.parser import HTMLParser
from typing import TYPE_CHECKING

import pytest
from rich.console import Console, Group
from rich.text import Text

import ticketsim.core._files
import ticketsim.errors
from ticketsim.analysis.checker import Kind, Violation
from ticketsim.analysis.report import Report, build_report
from ticketsim.core.events import Event, Step
from ticketsim.core.paths import HTML_MARK
from ticketsim.core.result import RunResult
from ticketsim.core.settings import RunConfig
from ticketsim.engine.runner import run_sale
from ticketsim.views.timeline import (
    MAX_TERMINAL_BUYERS,
    html_timeline,
    terminal_timeline,
    write_timeline,
)

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import RenderableType

Sale = tuple[RunResult, Report]

SVG = "{http://www.w3.org/2000/svg}"
#: HTML elements that have no end tag.
VOID = {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "source", "wbr"}


def _sale(
    db_path: Path, strategy: str, buyers: int, tickets: int, *, lockstep: bool = False
) -> Sale:
    config = RunConfig(
        db_path=db_path,
        strategy=strategy,
        buyers=buyers,
        tickets=tickets,
        delay=0.0,
        timeout=20.0,
        start_method="fork",
        lockstep=lockstep,
    )
    result = run_sale(config)
    return result, build_report(result)


@pytest.fixture(scope="module")
def race(tmp_path_factory: pytest.TempPathFactory) -> Sale:
    """Every buyer reads the one ticket before any writes: all three are sold seat 1."""
    return _sale(tmp_path_factory.mktemp("race") / "t.json", "none", 3, 1, lockstep=True)


@pytest.fixture(scope="module")
def safe(tmp_path_factory: pytest.TempPathFactory) -> Sale:
    return _sale(tmp_path_factory.mktemp("safe") / "t.json", "lock", 4, 2)


class Tags(HTMLParser):
    """Every start tag seen, and where end tags do not match the open elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.starts: list[str] = []
        self.open: list[str] = []
        self.problems: list[str] = []
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append(tag)
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.open[-1:] or 'nothing'}")
        else:
            self.open.pop()


def _tags(page: str) -> Tags:
    parser = Tags()
    parser.feed(page)
    parser.close()
    return parser


def _well_formed(page: str) -> ET.Element:
    """Check the page as HTML5 and its SVGs as XML; the lanes' SVG, with the chart's SVG
    hung under it, so that one search of the drawing finds what is in either."""
    assert page.startswith("<!DOCTYPE html>\n")
    assert '<html lang="en">' in page
    assert '<meta charset="utf-8">' in page
    assert re.search(r"<title>[^<]+</title>", page)
    tags = _tags(page)
    assert tags.doctype == "DOCTYPE html"
    assert tags.problems == []
    assert tags.open == []
    assert "script" not in tags.starts
    svgs = [ET.fromstring(svg) for svg in re.findall(r"<svg\b.*?</svg>", page, re.S)]
    assert len(svgs) == 3  # the chart of the count, the legend and the lanes
    (drawing,) = [svg for svg in svgs if "timeline" in _classes(svg)]
    (chart,) = [svg for svg in svgs if "count" in _classes(svg)]
    assert chart.get("width") == drawing.get("width")  # one time scale for both
    # The count comes before the lanes, so that a projected screen shows it at once.
    assert page.index('class="count"') < page.index('class="timeline')
    drawing.append(chart)
    return drawing


def _classes(element: ET.Element) -> set[str]:
    return set(element.get("class", "").split())


def _having(root: ET.Element, css: str) -> list[ET.Element]:
    return [element for element in root.iter() if css in _classes(element)]


def _title(element: ET.Element) -> str:
    title = element.find(f"{SVG}title")
    assert title is not None, f"{element.tag} {element.attrib} has no <title>"
    return title.text or ""


def _buyers(elements: list[ET.Element]) -> set[int]:
    return {int(element.get("data-buyer", "0")) for element in elements}


def _writers(result: RunResult) -> set[int]:
    return {e.buyer for e in result.history if e.step is Step.WRITE}


def test_forced_race_page(race: Sale) -> None:
    result, report = race
    page = html_timeline(result, report)
    drawing = _well_formed(page)
    assert "compact" not in _classes(drawing)

    lanes = _having(drawing, "lane")
    assert [lane.get("data-buyer") for lane in lanes] == ["1", "2", "3"]
    double = [v for v in report.violations if v.kind is Kind.DOUBLE_BOOKED]
    assert len(double) == 1
    assert html.escape(double[0].explanation) in page
    for violation in report.violations:
        assert html.escape(violation.explanation) in page
    named = {int(b.removeprefix("buyer-")) for v in report.violations for b in v.buyers}
    assert _buyers(_having(drawing, "violating")) == named == {1, 2, 3}
    assert html.escape(report.verdict) in page
    assert 'class="verdict bad"' in page

    # One mark per event, each with its details to hover over.
    marks = _having(drawing, "event")
    assert len(marks) == len(result.history)
    drawn = Counter(
        (int(m.get("data-buyer", "0")), (_classes(m) - {"event"}).pop().removeprefix("step-"))
        for m in marks
    )
    assert drawn == Counter((e.buyer, e.step.value) for e in result.history)
    for mark in marks:
        assert mark.get("data-buyer") is not None
        title = _title(mark)
        assert f"buyer-{mark.get('data-buyer')} · " in title
        assert " ms" in title
    seats = [_title(m) for m in marks if "step-write" in _classes(m)]
    assert all("seat: 1" in text and "value: remaining=0" in text for text in seats)

    # One shaded race window for each buyer that wrote, and no lock bars: none has a lock.
    windows = _having(drawing, "race")
    assert len(windows) == len(_writers(result)) == 3
    assert _buyers(windows) == _writers(result)
    assert all("race window" in _title(window) for window in windows)
    assert _having(drawing, "hold") == []
    assert _having(drawing, "wait") == []

    # The reads that saw the same count are ringed, in the lanes and on the chart.
    rings = _having(drawing, "ring")
    assert Counter(int(r.get("data-buyer", "0")) for r in rings) == dict.fromkeys(named, 2)
    reads = _having(drawing, "read-mark")
    assert len(reads) == 3
    assert all("read remaining=1" in _title(read) for read in reads)
    assert len(_having(drawing, "write-mark")) == 3
    (remaining,) = _having(drawing, "remaining")
    assert remaining.get("d", "").count("V") == 3  # one step per write


def test_safe_run_page(safe: Sale) -> None:
    result, report = safe
    page = html_timeline(result, report)
    drawing = _well_formed(page)
    assert report.ok
    assert len(_having(drawing, "lane")) == 4
    assert _having(drawing, "violating") == []
    assert _having(drawing, "ring") == []
    assert '<p class="verdict ok">OK: ' in page
    assert "None: every invariant held." in page
    # Every buyer waited for the lock, then held it; the two that sold raced no one.
    assert _buyers(_having(drawing, "wait")) == _buyers(_having(drawing, "hold")) == {1, 2, 3, 4}
    assert len(_having(drawing, "hold")) == 4
    assert _buyers(_having(drawing, "race")) == _writers(result)
    assert len(_writers(result)) == 2
    assert len(_having(drawing, "event")) == len(result.history)


def test_fifty_buyers_are_drawn_compact(race: Sale, db_path: Path) -> None:
    result, report = _sale(db_path, "lock", 50, 10)
    page = html_timeline(result, report)
    drawing = _well_formed(page)
    assert "compact" in _classes(drawing)
    lanes = _having(drawing, "lane")
    assert [lane.get("data-buyer") for lane in lanes] == [str(n) for n in range(1, 51)]
    assert [t.text for t in _having(drawing, "lane-label")] == [f"buyer-{n}" for n in range(1, 51)]
    assert len(_having(drawing, "event")) == len(result.history)
    assert int(drawing.get("width", "0")) <= 1400
    # Thinner lanes than a handful of buyers get, so that 50 fit on a projected screen.
    (normal,) = {
        float(bg.get("height", "0"))
        for bg in _having(_well_formed(html_timeline(*race)), "lane-bg")
    }
    (compact,) = {float(bg.get("height", "0")) for bg in _having(drawing, "lane-bg")}
    assert compact < normal
    assert float(drawing.get("height", "0")) < 50 * normal
    # The labels keep the size of a few buyers' labels: a projected 50 must still be read.
    (size,) = {float(t.get("font-size", "0")) for t in _having(drawing, "lane-label")}
    assert size >= 12


def test_violations_are_grouped_by_kind(race: Sale) -> None:
    """Fifty buyers named in many violations: a line per kind, a few told, no wall of names."""
    result, report = race
    crowd = tuple(f"buyer-{n}" for n in range(1, 51))
    violations = (
        Violation(Kind.OVERSOLD, "fifty told ok", crowd),
        *(Violation(Kind.DOUBLE_BOOKED, f"seat {s} sold to all", crowd, s) for s in range(1, 6)),
        Violation(Kind.LOST_SALE, "forty-nine lost", crowd[1:]),
    )
    page = html_timeline(result, replace(report, violations=violations))
    _well_formed(page)
    groups = re.findall(
        r'<li class="kind-group" data-kind="([^"]+)">(.*?)</li>\n(?=<li class="kind|</ul)',
        page,
        re.S,
    )
    assert [kind for kind, _ in groups] == ["oversold", "double-booked", "lost-sale"]
    told = dict(groups)
    assert "5 violations</span>" in told["double-booked"]
    assert "50 buyers named" in told["double-booked"]
    assert "1 violation</span>" in told["oversold"]
    # Two seats told, the other three folded away, and every explanation still on the page.
    shown, folded = told["double-booked"].split('<details class="more">')
    assert shown.count('class="violation"') == 2
    assert folded.count('class="violation"') == 3
    assert "3 more double-booked" in folded
    for violation in violations:
        assert violation.explanation in page
    # No list of fifty names: three, then how many more.
    assert "buyer-4," not in page
    assert "buyer-1, buyer-2, buyer-3 and 47 more" in page
    assert "buyer-2, buyer-3, buyer-4 and 46 more" in page


def test_every_text_is_escaped(race: Sale) -> None:
    result, report = race
    first = result.history[0]
    hostile = "<img src=x onerror=alert(1)> & \x01 \ud800"
    result = replace(
        result,
        history=(*result.history, Event(1, Step.LOST, first.t, first.pid, note=hostile)),
    )
    report = replace(
        report,
        strategy="<script>alert(1)</script>",
        violations=(
            Violation(Kind.DOUBLE_BOOKED, 'seat <b>1</b> & "co"', ("buyer-1", "<i>x</i>"), 1),
        ),
        faults=("<em>killed</em>",),
        caveat="<u>careful</u>",
        schedule="1r <s>2r</s>",
    )
    page = html_timeline(result, report)
    drawing = _well_formed(page)
    assert not {"script", "img", "b", "i", "em", "u", "s"} & set(_tags(page).starts)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "seat &lt;b&gt;1&lt;/b&gt; &amp; &quot;co&quot;" in page
    assert "&lt;i&gt;x&lt;/i&gt;" in page
    assert "&lt;em&gt;killed&lt;/em&gt;" in page
    assert "\x01" not in page
    page.encode("utf-8")  # a lone surrogate would make the page unwritable
    # Hover text is the note as it was, with only what XML cannot carry replaced.
    (lost,) = _having(drawing, "step-lost")
    assert "note: <img src=x onerror=alert(1)> & \ufffd \ufffd" in _title(lost)
    assert _buyers(_having(drawing, "violating")) == {1}


def _lines(renderable: RenderableType) -> list[str]:
    console = Console(record=True, width=120)
    console.print(renderable)
    return console.export_text().splitlines()


def _evenly_timed(result: RunResult) -> RunResult:
    """The same sale with the events after its opening a millisecond apart, in the
    order they happened: how wide a buyer's steps are drawn then depends on the steps
    taken in between, not on how long a loaded machine took over them. (On a busy
    machine buyer 1 wrote at once after the reads while buyer 2 woke to its turn 350 ms
    later, and buyer 1's read and write fell in one column of 3.6 ms.)"""
    events = sorted(result.history, key=lambda e: e.t)
    after = [e for e in events if e.t >= result.opened_at]
    timed = [replace(e, t=result.opened_at + n * 0.001) for n, e in enumerate(after, start=1)]
    history = tuple(e for e in events if e.t < result.opened_at) + tuple(timed)
    return replace(result, history=history, elapsed_s=(len(after) + 1) * 0.001)


def test_terminal_timeline_of_the_race(race: Sale) -> None:
    result, report = race
    view = terminal_timeline(_evenly_timed(result), report)
    lines = _lines(view)
    rows = [line for line in lines if re.match(r"[ *]buyer-\d+ ", line)]
    assert [row.split()[0] for row in rows] == ["*buyer-1", "*buyer-2", "*buyer-3"]
    for row in rows:
        steps = row.split(maxsplit=1)[1]
        # The race window runs from the read to the write, and the sale ends in "ok".
        assert re.search(r"r=*[w✓]", steps), row
        assert "✓" in steps
        assert len(row) <= 120
    assert any("c check" in line and "w write" in line for line in lines)
    assert any("= race window" in line for line in lines)
    assert any(line.rstrip().endswith(" ms") for line in lines)
    assert isinstance(view, Group)
    styles = {
        item.plain.split()[0]: str(item.style)
        for item in view.renderables
        if isinstance(item, Text) and item.plain.startswith("*buyer-")
    }
    assert styles == dict.fromkeys(["*buyer-1", "*buyer-2", "*buyer-3"], "red")


def test_terminal_timeline_of_a_safe_run(safe: Sale) -> None:
    result, report = safe
    lines = _lines(terminal_timeline(result, report, width=60))
    rows = [line for line in lines if re.match(r"[ *]buyer-\d+ ", line)]
    assert [row.split()[0] for row in rows] == ["buyer-1", "buyer-2", "buyer-3", "buyer-4"]
    assert all(len(row.rstrip()) <= len(" buyer-1  ") + 60 for row in rows)
    assert sum("✓" in row for row in rows) == 2
    assert sum("✗" in row for row in rows) == 2


def test_terminal_timeline_sends_a_crowd_to_the_page(db_path: Path) -> None:
    result, report = _sale(db_path, "lock", 30, 5)
    view = terminal_timeline(result, report)
    assert isinstance(view, Text)
    assert "use the HTML timeline" in view.plain
    assert f"at most {MAX_TERMINAL_BUYERS}" in view.plain
    with pytest.raises(ValueError, match="width=5"):
        terminal_timeline(result, report, width=5)


def test_write_timeline_is_atomic(
    race: Sale, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, report = race
    target = tmp_path / "race.html"
    target.write_text(f"<html>{HTML_MARK}an old page</html>", encoding="utf-8")
    write_timeline(target, result, report)
    assert target.read_text(encoding="utf-8") == html_timeline(result, report)
    assert os.listdir(tmp_path) == ["race.html"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask

    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ticketsim.core._files, "commit", fail)
    with pytest.raises(OSError, match="No space"):
        write_timeline(str(target), result, report)
    assert os.listdir(tmp_path) == ["race.html"]
    assert target.read_text(encoding="utf-8") == html_timeline(result, report)
    monkeypatch.undo()
    # A missing folder is refused before anything is written (issue 14).
    with pytest.raises(ticketsim.errors.PathError, match="does not exist"):
        write_timeline(tmp_path / "missing" / "t.html", result, report)
    assert os.listdir(tmp_path) == ["race.html"]
