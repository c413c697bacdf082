"""The shop under ticketsim: every interleaving of two buyers for its last ticket."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import shop

from ticketsim import race
from ticketsim.analysis.report import build_report

if TYPE_CHECKING:
    from types import ModuleType

SHOP = {"setup": shop.open_shop, "buyers": 2, "tickets": shop.TICKETS, "sold": shop.sales}

# Every schedule of the fixed shop: nothing is oversold, whatever the order.
test_the_fixed_shop_over_every_schedule = race.checked(race.Race(shop.buy_fixed, **SHOP))


def test_the_shop_oversells(ticketsim_race: ModuleType) -> None:
    """The bug, found by playing every schedule, as a test that expects it."""
    every = ticketsim_race.checked(ticketsim_race.Race(shop.buy, **SHOP))
    with pytest.raises(ticketsim_race.RaceFailed, match="OVERSOLD") as failed:
        every()
    assert "check stock" in str(failed.value)


def test_the_shop_oversells_under_drawn_schedules() -> None:
    drawn = race.drawn(race.Race(shop.buy, **SHOP), max_examples=50)
    with pytest.raises(race.RaceFailed, match="OVERSOLD"):
        drawn()


def test_the_bug_replays_every_time() -> None:
    """The counterexample, played again five times: the same schedule, the same verdict."""
    setup = race.Race(shop.buy, **SHOP)
    found = race.explore(setup)
    assert found.counterexample is not None
    for _ in range(5):
        again = race.play(setup, found.counterexample.order)
        assert again.schedule() == found.counterexample.schedule()
        assert "OVERSOLD" in build_report(again.result).verdict
