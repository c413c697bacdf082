"""How long ``ticketsim --help`` takes to start, against ``python -c "import typer"``.

Each command runs as a fresh process, and its wall time is measured from start to
exit. The commands take turns within each round (interleaved), so a busy moment of
the machine falls on all of them alike. Medians of ``--runs`` rounds; the ratio is
to ``import typer`` from the same run (the goal is at most 1.5x).

Compiled bytecode is cached for every module, as it is for an installed program
(pip compiles typer when it installs it): the processes share a temporary
``PYTHONPYCACHEPREFIX``, filled by a warm-up run, whatever ``PYTHONDONTWRITEBYTECODE``
says. Nothing is written into the source tree.

    python benchmarks/startup.py [--runs 10]

The ``ticketsim`` script is the one next to the running interpreter
(``sys.executable``), so run this with the venv's python.
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


def _ticketsim() -> str:
    script = Path(sys.executable).with_name("ticketsim")
    if not script.is_file():
        sys.exit(f"startup.py: no ticketsim script next to {sys.executable}; install ticketsim")
    return str(script)


def _wall_time(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True
    )
    return time.perf_counter() - start


def medians(runs: int) -> dict[str, float]:
    """The median wall time of each command, ``runs`` fresh processes each, interleaved."""
    ticketsim = _ticketsim()
    commands = {
        'python -c "import typer"': [sys.executable, "-c", "import typer"],
        "ticketsim --help": [ticketsim, "--help"],
        "ticketsim run --help": [ticketsim, "run", "--help"],
    }
    times: dict[str, list[float]] = {label: [] for label in commands}
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        for command in commands.values():
            _wall_time(command, env)  # warm-up: compiles the bytecode, fills the file cache
        for _ in range(runs):
            for label, command in commands.items():
                times[label].append(_wall_time(command, env))
    return {label: statistics.median(runs) for label, runs in times.items()}


def show(runs: int) -> float:
    """Print the table; ``ticketsim --help`` against ``import typer``."""
    found = medians(runs)
    base = found['python -c "import typer"']
    print(f"Median wall time of {runs} fresh processes each, interleaved.\n")
    print("| command | median | vs import typer |")
    print("|---|---:|---:|")
    for label, median in found.items():
        print(f"| `{label}` | {median * 1000:.0f} ms | {median / base:.2f}x |")
    return found["ticketsim --help"] / base


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    show(parser.parse_args().runs)


if __name__ == "__main__":
    main()
