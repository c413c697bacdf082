"""A goal of a benchmark: what was measured, against which bound, met or not.

Every benchmark that checks a goal prints :meth:`Goal.row` for each and exits 1 when
one is not met (:func:`report`), so that it can be run as a check.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Sequence


class Goal(NamedTuple):
    name: str
    measured: float
    bound: float
    #: ``"<="``: the measure must be at most the bound; ``">="``: at least.
    sense: str
    unit: str = ""

    @property
    def met(self) -> bool:
        return self.measured <= self.bound if self.sense == "<=" else self.measured >= self.bound

    def row(self) -> str:
        return (
            f"| {self.name} | {self.measured:.3g}{self.unit} | {self.sense} "
            f"{self.bound:g}{self.unit} | {'met' if self.met else 'NOT MET'} |"
        )


def report(goals: Sequence[Goal]) -> None:
    """Print every goal as a table row, and exit 1 if one is not met."""
    print("\n| goal | measured | bound | |\n|---|---:|---:|---|")
    for goal in goals:
        print(goal.row())
    missed = [g.name for g in goals if not g.met]
    if missed:
        print(f"\n{len(missed)} of {len(goals)} goals not met")
    sys.exit(1 if missed else 0)
