"""How fast explore searches, against what it must reach (issue 19, goal 5).

    python benchmarks/explore_speed.py [--runs 5]

Each schedule is a whole sale: reset the db, start the buyer processes (``fork``),
grant their steps one at a time, check the outcome. Prints one row per goal with its
measure, its bound and whether it is met, and exits 1 if one is not.

* the unlocked 1-ticket sale's first counterexample, at 2 to 6 buyers: schedules run;
* the locked sale of 8 buyers proven (every class run, none breaks): seconds;
* schedules per second of ``explore --all`` against a bare loop that runs the same
  schedules with ``run_sale`` and checks each (medians of ``--runs`` interleaved runs);
* the memory of making the classes: the peak ``tracemalloc`` size while every class of
  an unlocked sale is made, at 5 buyers (120 classes) and at 7 (5,040).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from goals import Goal, report

from ticketsim.analysis.report import build_report
from ticketsim.core import schedule as sched
from ticketsim.core.catalog import CATALOG
from ticketsim.core.names import StrategyName
from ticketsim.search.explore import Scenario, explore


def _bare_loop(scenario: Scenario, schedules: list[sched.Schedule]) -> float:
    """Seconds to run and check ``schedules`` one after another, nothing else."""
    started = time.perf_counter()
    for schedule in schedules:
        build_report(scenario.result(schedule))
    return time.perf_counter() - started


def _peak_bytes(buyers: int) -> int:
    model = CATALOG[StrategyName.NONE].model()
    tracemalloc.start()
    made = sum(1 for _ in sched.reduced(buyers, model))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert made > 0
    return peak


def goals(runs: int, folder: Path) -> list[Goal]:
    db = folder / "tickets.json"
    found: list[Goal] = []
    for buyers in range(2, 7):
        scenario = Scenario(buyers=buyers, tickets=1, db_path=db, start_method="fork")
        result = explore(scenario, replays=0)
        found.append(
            Goal(f"unlocked, {buyers} buyers: schedules to the first counterexample",
                 result.explored if result.counterexample else float("inf"), 3, "<=", "")
        )  # fmt: skip
    locked = Scenario(strategy="lock", buyers=8, tickets=7, db_path=db, start_method="fork")
    started = time.perf_counter()
    proof = explore(locked)
    took = time.perf_counter() - started if proof.complete and proof.violating == 0 else 1e9
    found.append(Goal("locked, 8 buyers: proven (every class run)", took, 30, "<=", " s"))

    # The search's own cost: explore --all against the same schedules in a bare loop.
    every = Scenario(buyers=4, tickets=1, db_path=db, start_method="fork")
    schedules = list(sched.reduced(4, CATALOG[StrategyName.NONE].model()))
    searched: list[float] = []
    bare: list[float] = []
    for _ in range(runs):
        result = explore(every, every=True, replays=0)
        assert result.explored == len(schedules)
        searched.append(result.schedules_per_s)
        bare.append(len(schedules) / _bare_loop(every, schedules))
    ratio = statistics.median(s / b for s, b in zip(searched, bare, strict=True))
    print(
        f"explore --all, 4 unlocked buyers ({len(schedules)} schedules): "
        f"{statistics.median(searched):.1f} schedules/s; the bare loop "
        f"{statistics.median(bare):.1f}; median of {runs} interleaved runs"
    )
    found.append(Goal("explore's schedules/s against a bare loop", ratio, 0.8, ">=", "x"))

    small, large = _peak_bytes(5), _peak_bytes(7)
    print(f"memory to make every class: {small} B at 5 buyers (120), {large} B at 7 (5,040)")
    found.append(Goal("memory, 5,040 classes against 120", large / small, 2, "<=", "x"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        found = goals(options.runs, Path(folder))
    report(found)


if __name__ == "__main__":
    main()
