"""ticketsim's pytest plugin, found by its entry point: ``pip install ticketsim`` is all.

It gives tests the ``ticketsim_race`` fixture, the :mod:`ticketsim.race` module, whose
``checked`` and ``drawn`` make tests of your own buyer::

    def test_the_shop(ticketsim_race):
        ticketsim_race.checked(ticketsim_race.Race(buy, setup=make_shop, buyers=2))()

or, with no fixture at all, ``test_the_shop = race.checked(race.Race(...))`` at module
level. Their failures are ordinary assertion failures, so ``-x``, ``-k``, ``--lf`` and
xdist work as for any test; ``drawn`` keeps its failures in hypothesis' database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from types import ModuleType


@pytest.fixture
def ticketsim_race() -> ModuleType:
    """The :mod:`ticketsim.race` module: ``Race``, ``step``, ``play``, ``explore``,
    ``checked`` and ``drawn``."""
    from ticketsim import race  # noqa: PLC0415 - only for the tests that ask for it

    return race
