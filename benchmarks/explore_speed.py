"""How fast exploration runs real controlled sales, in schedules per second.

    python benchmarks/explore_speed.py [--runs 3]

Each schedule is a whole sale: reset the db, start the buyer processes (``fork``),
grant their steps one at a time, check the outcome. Medians of ``--runs`` explorations.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from ticketsim.search.explore import Scenario, explore


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "tickets.json"
        print(f"{'strategy':10} {'buyers':>6} {'explored':>8} {'schedules/s':>12} {'ms each':>8}")
        for strategy in ("none", "lock", "filelock", "office"):
            for buyers in (2, 3):
                scenario = Scenario(
                    strategy=strategy, buyers=buyers, tickets=1, db_path=db, start_method="fork"
                )
                results = [explore(scenario) for _ in range(options.runs)]
                rate = statistics.median(r.schedules_per_s for r in results)
                print(
                    f"{strategy:10} {buyers:>6} {results[0].explored:>8} {rate:12.1f} "
                    f"{1000 / rate:8.1f}"
                )


if __name__ == "__main__":
    main()
