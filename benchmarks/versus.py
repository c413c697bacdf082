"""Two installs of ticketsim, timed on the same commands, interleaved.

For a change that must not make ticketsim slower (a restructure, say): install the old
version in a second virtualenv, then time both on ``ticketsim --help`` and a 50-buyer
``spawn`` run, each command as a fresh process, the two installs taking turns within
every round so that a busy moment of the machine falls on both alike. Prints the
median wall time of each and the ratio new/old, from the same run.

    python benchmarks/versus.py --old /path/to/old/.venv/bin/ticketsim [--runs 10]

The new install is the ``ticketsim`` script next to the running interpreter. Each
run's db lives in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: What is timed: a label, and the arguments after the script.
COMMANDS = {
    "ticketsim --help": ["--help"],
    "run --buyers 50 --lock --delay 0 --start-method spawn": [
        "run",
        "--buyers",
        "50",
        "--lock",
        "--delay",
        "0",
        "--start-method",
        "spawn",
        "--json",
    ],
}


def _wall_time(command: list[str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, check=True
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--old", required=True, help="the old install's ticketsim script")
    parser.add_argument("--runs", type=int, default=10)
    options = parser.parse_args()
    new = str(Path(sys.executable).with_name("ticketsim"))
    scripts = {"old": options.old, "new": new}
    times: dict[tuple[str, str], list[float]] = {
        (label, who): [] for label in COMMANDS for who in scripts
    }
    with tempfile.TemporaryDirectory() as folder:
        for script in scripts.values():  # warm-up: bytecode compiled, caches filled
            for args in COMMANDS.values():
                _wall_time([script, *args], os.path.join(folder))
        for _ in range(options.runs):
            for label, args in COMMANDS.items():
                for who, script in scripts.items():
                    times[label, who].append(_wall_time([script, *args], folder))
    print(f"medians of {options.runs} interleaved runs")
    for label in COMMANDS:
        old = statistics.median(times[label, "old"])
        new_s = statistics.median(times[label, "new"])
        print(f"{label:58} old {old:.3f} s  new {new_s:.3f} s  new/old {new_s / old:.2f}")


if __name__ == "__main__":
    main()
