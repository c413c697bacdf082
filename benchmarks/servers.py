"""How long a private server takes to start (until it answers) and to stop.

Each round starts and stops one PostgreSQL and one Redis server, taking turns, and
prints the medians; the programs used are the ones ticketsim finds (the system's
first, then the wheels of the ``servers`` extra).

    python benchmarks/servers.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import TYPE_CHECKING, Any

from ticketsim.servers import PostgresServer, RedisServer

if TYPE_CHECKING:
    from ticketsim.servers.base import Server


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    kinds: dict[str, type[Server[Any]]] = {"PostgreSQL": PostgresServer, "Redis": RedisServer}
    starts: dict[str, list[float]] = {name: [] for name in kinds}
    stops: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(options.runs):
        for name, kind in kinds.items():
            server = kind()
            began = time.perf_counter()
            server.start()
            started = time.perf_counter()
            server.stop()
            starts[name].append(started - began)
            stops[name].append(time.perf_counter() - started)
    print(f"medians of {options.runs} runs")
    for name in kinds:
        start, stop = statistics.median(starts[name]), statistics.median(stops[name])
        print(f"{name:11} start to first answer {start:.3f} s   stop and remove {stop:.3f} s")


if __name__ == "__main__":
    main()
