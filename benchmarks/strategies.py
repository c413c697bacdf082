"""What each strategy costs: sale time and throughput with no race window.

Every strategy sells 50 tickets to 50 buyers with ``--delay 0``, several times, in
one process tree per run (``run_sale``, as ``ticketsim run`` does). The sale time is
measured from the opening of the sale to the last buyer's outcome, so process
start-up is not in it. Medians of the runs; ratios are to ``lock`` from the same run.

    python benchmarks/strategies.py [--runs 5] [--buyers 50] [--pool N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from ticketsim import RunConfig, build_report, run_sale
from ticketsim.engine.strategies import STRATEGIES


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--buyers", type=int, default=50)
    parser.add_argument("--pool", type=int, default=None)
    parser.add_argument("--start-method", default="fork")
    options = parser.parse_args()
    medians: dict[str, tuple[float, float, int]] = {}
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "tickets.json"
        for name in STRATEGIES:
            times, sold = [], []
            for seed in range(options.runs):
                config = RunConfig(
                    buyers=options.buyers,
                    tickets=options.buyers,
                    strategy=name.value,
                    db_path=db,
                    delay=0.0,
                    seed=seed,
                    pool=options.pool,
                    start_method=options.start_method,
                )
                report = build_report(run_sale(config))
                times.append(report.elapsed_s)
                sold.append(report.sold)
            elapsed = statistics.median(times)
            medians[name.value] = (elapsed, statistics.median(sold) / elapsed, max(sold))
    base = medians["lock"][0]
    print(
        f"{options.buyers} buyers, {options.buyers} tickets, delay 0, "
        f"{options.start_method}, pool {options.pool}, median of {options.runs} runs"
    )
    print(f"{'strategy':16} {'sale time':>10} {'vs lock':>8} {'sales/s':>9}  sold")
    for label, (elapsed, rate, sold_max) in medians.items():
        print(f"{label:16} {elapsed * 1000:8.1f}ms {elapsed / base:7.2f}x {rate:9.0f}  {sold_max}")


if __name__ == "__main__":
    main()
