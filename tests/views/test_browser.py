"""The timeline of a 50-buyer sale in a real browser, at a projector's sizes.

Headless Chromium (the system's; ``.ci/run`` installs it and sets
``TICKETSIM_REQUIRE_BROWSER``, so that CI fails rather than skips without it) opens the
page at 1280x720 and 1920x1080, says what a script sees of it, and shoots it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import browser
import pytest

from ticketsim.analysis.report import build_report
from ticketsim.core.settings import RunConfig
from ticketsim.engine.runner import run_sale
from ticketsim.views.timeline import write_timeline

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def chromium() -> str:
    program = browser.find()
    if program is None:
        if os.environ.get("TICKETSIM_REQUIRE_BROWSER"):
            pytest.fail("TICKETSIM_REQUIRE_BROWSER is set and there is no Chromium on PATH")
        pytest.skip("no Chromium (apt-get install chromium); CI requires it")
    return program


@pytest.fixture(scope="module")
def fifty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The classroom's sale: 50 buyers, 10 tickets, no protection, every buyer raced."""
    folder = tmp_path_factory.mktemp("fifty")
    config = RunConfig(
        db_path=folder / "t.json", strategy="none", buyers=50, tickets=10, delay=0.0,
        timeout=20.0, start_method="fork", lockstep=True,
    )  # fmt: skip
    result = run_sale(config)
    report = build_report(result)
    assert report.oversold == 40  # the page has the violations a class sees
    page = folder / "race.html"
    write_timeline(page, result, report)
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
