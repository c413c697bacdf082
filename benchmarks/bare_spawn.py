"""Start processes that import nothing, and time it: the floor for starting buyers.

Starts ``--processes`` processes with the given start method; each only says it is
ready over a pipe. Prints the seconds from the first ``start()`` to the last "ready",
which is what ticketsim reports as ``startup_s`` for its buyers. This module imports
the standard library only, so that is all a spawned child imports.

    python benchmarks/bare_spawn.py [--processes 50] [--start-method spawn]
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from typing import Any


def ready(conn: Any) -> None:
    conn.send_bytes(b"ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--processes", type=int, default=50)
    parser.add_argument("--start-method", default="spawn")
    options = parser.parse_args()
    ctx = multiprocessing.get_context(options.start_method)
    reader, writer = ctx.Pipe(duplex=False)
    started = time.monotonic()
    children = [ctx.Process(target=ready, args=(writer,)) for _ in range(options.processes)]
    for child in children:
        child.start()
    for _ in children:
        if not reader.poll(60):
            raise SystemExit("a child never said it was ready")
        reader.recv_bytes()
    print(f"{time.monotonic() - started:.6f}")
    for child in children:
        child.join(60)


if __name__ == "__main__":
    main()
