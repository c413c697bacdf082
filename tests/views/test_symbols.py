"""One symbol a step, in every view and every legend: what a legend shows, its view can
draw, and what a view draws, its legend shows.

A sale whose history holds every step there is: the live view, the terminal timeline
and the page are drawn from it, and each one's legend is read back.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from rich.console import Console

from ticketsim.analysis.report import build_report
from ticketsim.core.events import Event, Step
from ticketsim.core.settings import RunConfig
from ticketsim.engine.runner import run_sale
from ticketsim.views.render import LiveSale
from ticketsim.views.symbols import NAMED, RACE_WINDOW, SYMBOLS
from ticketsim.views.timeline import html_timeline, terminal_timeline

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ticketsim.analysis.report import Report
    from ticketsim.core.result import RunResult

SVG = "{http://www.w3.org/2000/svg}"

#: Each buyer's steps, in order: together, every step there is.
LIVES: dict[int, tuple[Step, ...]] = {
    1: (Step.READY, Step.CHECK, Step.WAIT, Step.ENTER, Step.READ, Step.TORN, Step.MARK,
        Step.RETRY, Step.WRITE, Step.COMMIT, Step.LEAVE, Step.OK),
    2: (Step.READY, Step.WAIT, Step.ENTER, Step.READ, Step.LEAVE, Step.FAIL),
    3: (Step.READY, Step.CHECK, Step.ERROR),
    4: (Step.READY, Step.CHECK, Step.LOST),
}  # fmt: skip


@pytest.fixture(scope="module")
def every_step(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Report]:
    config = RunConfig(
        db_path=tmp_path_factory.mktemp("steps") / "t.json", strategy="lock", buyers=4,
        tickets=1, delay=0.0, timeout=20.0, start_method="fork",
    )  # fmt: skip
    result = run_sale(config)
    # Steps 10 ms apart, over 0.2 s: on a 100-column terminal each has a column of its own.
    history = tuple(
        Event(buyer, step, result.opened_at + (0.01 * n if step is not Step.READY else -0.001),
              pid=1000 + buyer, value=1 if step is Step.READ else 0, seat=1)
        for buyer, steps in LIVES.items()
        for n, step in enumerate(steps)
    )  # fmt: skip
    result = replace(result, history=history, elapsed_s=0.2)
    return result, build_report(result)


def _legend_chars(legend: str) -> set[str]:
    """``c check  r read …``: the first character of each entry."""
    return {entry.strip()[0] for entry in re.split(r" {2,}", legend.strip()) if entry.strip()}


def _lines(renderable: RenderableType, width: int = 130) -> list[str]:
    console = Console(record=True, width=width, color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


def test_every_step_has_a_symbol_of_its_own_kind() -> None:
    assert set(SYMBOLS) == set(Step)
    assert all(len(symbol.char) == 1 for symbol in SYMBOLS.values())
    # The fills and marks of the terminal are not mistaken for a step.
    assert not {RACE_WINDOW, NAMED} & {symbol.char for symbol in SYMBOLS.values()}


def test_the_live_view_draws_what_its_legend_shows() -> None:
    view = LiveSale("lock", len(Step), 1)
    for number, step in enumerate(Step, start=1):
        view.update(Event(number, step, 0.0, pid=number))
    _counters, cells, *legend = _lines(view, width=400)  # a legend line wrapped splits an entry
    assert cells.strip() == "".join(SYMBOLS[step].char for step in Step)
    assert _legend_chars("  ".join(legend)) == set(cells.strip())


def test_the_terminal_timeline_draws_what_its_legend_shows(
    every_step: tuple[RunResult, Report],
) -> None:
    lines = _lines(terminal_timeline(*every_step, width=100))
    rows = [line for line in lines if re.match(r"[ *]buyer-\d+ ", line)]
    assert len(rows) == len(LIVES)
    drawn = {char for row in rows for char in row[len(" buyer-1  ") :]} - {" "}
    legend = _legend_chars("  ".join(lines[-2:]))
    # The legend shows every character drawn, and the star before a named buyer...
    assert drawn <= legend
    assert NAMED in legend
    # ...and nothing this sale of every step did not draw, but the star.
    assert legend - {NAMED} == drawn
    # Each step's character is the one the live view draws for it.
    for buyer, steps in LIVES.items():
        row = next(row for row in rows if row.split()[0].lstrip(NAMED) == f"buyer-{buyer}")
        for step in steps:
            if step not in (Step.READY, Step.WAIT, Step.ENTER, Step.LEAVE):  # ends of bars
                assert SYMBOLS[step].char in row, (step, row)


def test_the_page_keys_every_step_it_draws_with_the_same_shape_and_character(
    every_step: tuple[RunResult, Report],
) -> None:
    page = html_timeline(*every_step)
    svgs = {
        svg.get("class", "").split()[0]: svg
        for svg in (ET.fromstring(s) for s in re.findall(r"<svg\b.*?</svg>", page, re.S))
    }
    keys = [g for g in svgs["legend"].iter(f"{SVG}g") if "key" in g.get("class", "")]
    keyed: dict[Step, ET.Element] = {}
    for key in keys:
        for name in key.get("data-steps", "").split():
            keyed[Step(name)] = key
    marks = {
        Step(cls.removeprefix("step-")): mark
        for mark in svgs["timeline"].iter()
        for cls in mark.get("class", "").split()
        if cls.startswith("step-")
    }
    # The page draws every step of the sale, and its legend keys each one.
    assert set(marks) == set(Step) == set(keyed)
    for step, mark in marks.items():
        swatch = next(child for child in keyed[step] if "swatch" in child.get("class", ""))
        assert (swatch.tag, swatch.get("fill"), swatch.get("stroke")) == (
            mark.tag,
            mark.get("fill"),
            mark.get("stroke"),
        ), step
        (char,) = [t for t in keyed[step].iter(f"{SVG}text") if "key-char" in t.get("class", "")]
        assert SYMBOLS[step].char in (char.text or "").split()
    # The bars are keyed with what the terminal fills them with.
    chars = {
        (t.text or "")
        for key in keys
        if not key.get("data-steps")
        for t in key.iter(f"{SVG}text")
        if "key-char" in t.get("class", "")
    }
    assert chars == {SYMBOLS[Step.WAIT].char, SYMBOLS[Step.ENTER].char, RACE_WINDOW, NAMED}
