"""Your own buyer, every interleaving: a search over the schedules of a :class:`Race`.

Each sale is played in full, and every turn where another waiting buyer could have
moved is a branch to play next. Branches are taken fewest forced switches first, so
the first counterexample found is one of the simplest schedules that breaks an
invariant; every schedule is played at most once, and a search cut short by
``max_runs`` says it is incomplete.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ticketsim.analysis.report import build_report
from ticketsim.engine.yours import Played, Race, play

if TYPE_CHECKING:
    from ticketsim.analysis.report import Report


@dataclass(frozen=True)
class Explored:
    """What a search of a :class:`Race`'s schedules found."""

    #: The first sale that broke an invariant, and its report; ``None`` if none did.
    counterexample: Played | None
    report: Report | None
    #: Sales played.
    runs: int
    #: Whether every schedule was played (nothing found then means none breaks one).
    complete: bool


def explore(race: Race, *, max_runs: int = 1000) -> Explored:
    """Play every schedule of ``race`` (up to ``max_runs`` sales), stopping at the first
    one that breaks an invariant."""
    queue: collections.deque[tuple[int, ...]] = collections.deque([()])
    runs = 0
    while queue and runs < max_runs:
        prefix = queue.popleft()
        played = play(race, prefix)
        runs += 1
        report = build_report(played.result)
        if report.certain or not report.ok:
            return Explored(played, report, runs, complete=False)
        # Every turn after the prefix where another buyer could have gone instead.
        for turn in range(len(prefix), len(played.order)):
            for other in played.choices[turn]:
                if other != played.order[turn]:
                    queue.append((*played.order[:turn], other))
    return Explored(None, None, runs, complete=not queue)
