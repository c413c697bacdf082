"""Your own buyer, under ticketsim's scheduler: mark its steps, play it in one exact
interleaving, or in every one, and let the checker say what broke.

    from ticketsim import race

    def buy(path, buyer):               # any function: your own code, your own store
        remaining = read_remaining(path)
        race.step("read", remaining)    # another buyer may come in here
        if remaining <= 0:
            return None                 # sold out
        write_remaining(path, remaining - 1)
        return remaining                # the seat it sold

    found = race.explore(race.Race(buy, setup=make_store, buyers=2, tickets=1))
    assert found.complete and found.counterexample is None, found.counterexample.schedule()

In pytest, ``test_shop = race.checked(race.Race(buy, ...))`` is a test that plays every
schedule, and ``race.drawn(...)`` one that plays schedules hypothesis draws and shrinks.

Buyer processes are real processes (``fork``, ``spawn`` or ``forkserver``); functions
must be defined at module level so that ``spawn`` can import them.
"""

from __future__ import annotations

from ticketsim.engine.yours import Played, Race, play
from ticketsim.sale.yours import locked, marked, step, wait_for
from ticketsim.search.yours import Explored, RaceFailed, checked, drawn, explore

__all__ = [
    "Explored",
    "Played",
    "Race",
    "RaceFailed",
    "checked",
    "drawn",
    "explore",
    "locked",
    "marked",
    "play",
    "step",
    "wait_for",
]
