"""Do the classroom defaults teach what they promise?

``ticketsim run --buyers 50`` must oversell in at least 19 of 20 runs, and
``ticketsim run --buyers 50 --lock`` must sell exactly 10 in about 3 seconds.
Each run is the installed ``ticketsim`` program in a subprocess, timed end to end.

    python benchmarks/teaching_defaults.py [--runs 20] [--start-method fork]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def run(args: list[str], db: Path) -> tuple[dict[str, Any], float]:
    exe = shutil.which("ticketsim", path=str(Path(sys.executable).parent)) or "ticketsim"
    started = time.perf_counter()
    done = subprocess.run(
        [exe, "run", "--json", "--db", str(db), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        sys.exit(f"ticketsim {' '.join(args)} exited {done.returncode}: {done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--start-method", default=None)
    options = parser.parse_args()
    extra = ["--start-method", options.start_method] if options.start_method else []
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "tickets.json"
        unprotected = [run(["--buyers", "50", *extra], db) for _ in range(options.runs)]
        locked = [run(["--buyers", "50", "--lock", *extra], db) for _ in range(options.runs)]
    oversold = [int(r["oversold"]) for r, _ in unprotected]
    unreadable = sum(
        1 for r, _ in unprotected if any(v["kind"] == "unreadable-db" for v in r["violations"])
    )
    print(f"start method: {unprotected[0][0]['start_method']}, runs: {options.runs}")
    print(
        f"none, 50 buyers: oversold in {sum(1 for n in oversold if n)}/{options.runs} runs; "
        f"oversold median {statistics.median(oversold)}, min {min(oversold)}, max {max(oversold)}; "
        f"db left unreadable in {unreadable}/{options.runs}; "
        f"wall median {statistics.median(w for _, w in unprotected):.2f} s"
    )
    sold = sorted({int(r["sold"]) for r, _ in locked})
    ok = sum(1 for r, _ in locked if r["ok"])
    print(
        f"lock, 50 buyers: ok in {ok}/{options.runs} runs, sold {sold}; wall median "
        f"{statistics.median(w for _, w in locked):.2f} s, max {max(w for _, w in locked):.2f} s; "
        "sale median "
        f"{statistics.median(float(r['elapsed_s']) for r, _ in locked):.2f} s"
    )


if __name__ == "__main__":
    main()
