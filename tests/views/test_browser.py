"""The timeline of a 50-buyer sale in a real browser, at a projector's sizes.

Headless Chromium (the system's; ``.ci/run`` installs it and sets
``TICKETSIM_REQUIRE_BROWSER``, so that CI fails rather than skips without it) opens the
page at 1280x720 and 1920x1080, says what a script sees of it, and shoots it.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

import browser
import pytest

from ticketsim.analysis.report import build_report
from ticketsim.core.settings import RunConfig
from ticketsim.engine.runner import run_sale
from ticketsim.views.timeline import html_timeline, write_timeline

if TYPE_CHECKING:
    from pathlib import Path

    from ticketsim.core.result import RunResult


@pytest.fixture(scope="module")
def chromium() -> str:
    program = browser.find()
    if program is None:
        if os.environ.get("TICKETSIM_REQUIRE_BROWSER"):
            pytest.fail("TICKETSIM_REQUIRE_BROWSER is set and there is no Chromium on PATH")
        pytest.skip("no Chromium (apt-get install chromium); CI requires it")
    return program


@pytest.fixture(scope="module")
def sale(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path]:
    """The classroom's sale: 50 buyers, 10 tickets, no protection, every buyer raced."""
    folder = tmp_path_factory.mktemp("fifty")
    config = RunConfig(
        db_path=folder / "t.json", strategy="none", buyers=50, tickets=10, delay=0.0,
        timeout=20.0, start_method="fork", lockstep=True,
    )  # fmt: skip
    result = run_sale(config)
    assert build_report(result).oversold == 40  # the page has the violations a class sees
    return result, folder


@pytest.fixture(scope="module")
def fifty(sale: tuple[RunResult, Path]) -> Path:
    result, folder = sale
    page = folder / "race.html"
    write_timeline(page, result, build_report(result))
    return page


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (1920, 1080)])
def test_fifty_buyers_on_a_projector(
    chromium: str, fifty: Path, tmp_path: Path, width: int, height: int
) -> None:
    seen = browser.measure(chromium, fifty, width, height)
    assert seen["width"] == width
    assert seen["errors"] == []
    # Nothing runs off the screen's side or out of its box, nothing is drawn over another
    # text, and no text is smaller than a class reads from the back of the room.
    assert seen["page_width"] <= width
    assert seen["overflowing"] == []
    assert seen["outside"] == []
    assert seen["overlapping"] == []
    assert seen["small"] == []
    assert seen["texts"] > 100  # the lanes' labels, the axes and the legend were measured
    # The remaining count is on the first screen, without scrolling; the lanes follow it.
    boxes = seen["boxes"]
    assert boxes["count"]["bottom"] <= height
    assert boxes["timeline compact"]["top"] > boxes["count"]["bottom"]

    shot = tmp_path / f"race-{width}x{height}.png"
    profile = browser.screenshot(chromium, fifty, shot, width, height)
    assert browser.png_size(shot) == (width, height)
    assert shot.stat().st_size > 20_000  # a blank page of that size is a few kB
    # Every Chromium is gone, and so is every profile folder it had.
    for used in (seen["profile"], profile):
        assert browser.using(used) == []
        assert not os.path.exists(used)


def test_fifty_buyers_over_three_hosts_keep_their_names_apart(
    chromium: str, sale: tuple[RunResult, Path]
) -> None:
    """Lanes grouped by host, each group under its host's name: no name over a label."""
    result, folder = sale
    hosts = tuple(replace(e, host=f"host-{e.buyer % 3 + 1}") for e in result.history)
    grouped = replace(result, history=hosts)
    page = folder / "hosts.html"
    page.write_text(html_timeline(grouped, build_report(grouped)), encoding="utf-8")
    assert page.read_text(encoding="utf-8").count('class="host-label"') == 3
    seen = browser.measure(chromium, page, 1280, 720)
    assert seen["errors"] == []
    assert seen["overlapping"] == []
    assert seen["outside"] == []
    assert seen["small"] == []
    assert seen["boxes"]["count"]["bottom"] <= 720
