"""Soak: every safe strategy, many sales, drawn sizes, start methods and delays, with
and without buyers killed at random points. Prints runs, stalls and violations.

A run may stall only where the strategy's table says a killed holder stalls it (and a
victim did die holding the lock); a run that completes must break no invariant.

    python benchmarks/soak.py [--runs 1000] [--strategy lock ...] [--timeout 0.5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from ticketsim import RunConfig, build_report, run_sale
from ticketsim.core.catalog import CATALOG


def soak(strategy: str, runs: int, timeout: float, folder: Path) -> Counter[str]:
    # Imported here, not at the top: spawned buyers re-import this script as their
    # __main__, and must not pay for hypothesis.
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    tally: Counter[str] = Counter()
    claims = CATALOG[strategy].claims  # type: ignore[index]

    @settings(
        max_examples=runs, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(
        buyers=st.integers(1, 8),
        tickets=st.integers(0, 8),
        delay=st.sampled_from([0.0, 0.0005, 0.002]),
        method=st.sampled_from(["fork", "fork", "forkserver", "spawn"]),
        kill=st.integers(0, 3),
        seed=st.integers(0, 2**32 - 1),
    )
    def one(buyers: int, tickets: int, delay: float, method: str, kill: int, seed: int) -> None:
        kill = min(kill, buyers)
        result = run_sale(
            RunConfig(
                db_path=folder / "tickets.json",
                strategy=strategy,
                buyers=buyers,
                tickets=tickets,
                delay=delay,
                seed=seed,
                start_method=method,
                kill=kill,
                timeout=timeout,
            )
        )
        report = build_report(result)
        tally["runs"] += 1
        tally["with kills" if kill else "without kills"] += 1
        if result.stalled is not None:
            tally["stalled"] += 1
            fair = not claims.killed_holder and any(
                "its critical section" in f for f in result.faults
            )
            if not fair:
                tally["violations"] += 1
                print(
                    f"UNEXPECTED STALL {strategy} {result.config}: {result.stalled}",
                    file=sys.stderr,
                )
        elif report.violations or result.final is None:
            tally["violations"] += 1
            print(f"VIOLATION {strategy} {result.config}: {report.verdict}", file=sys.stderr)

    one()
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=0.5)
    parser.add_argument("--strategy", action="append")
    options = parser.parse_args()
    names = options.strategy or [n.value for n, s in CATALOG.items() if s.safe]
    total: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            started = time.monotonic()
            tally = soak(name, options.runs, options.timeout, Path(folder))
            total += tally
            print(
                f"{name:10} runs {tally['runs']:5}  without kills {tally['without kills']:5}  "
                f"with kills {tally['with kills']:5}  stalled (killed holder) "
                f"{tally['stalled']:4}  violations {tally['violations']}  "
                f"{time.monotonic() - started:6.1f} s",
                flush=True,
            )
    print(f"total: runs {total['runs']}, violations {total['violations']}")
    sys.exit(1 if total["violations"] else 0)


if __name__ == "__main__":
    main()
