"""The same lost update found by frontrun and by ticketsim: schedules tried, and time, to
the first counterexample; medians of interleaved runs.

The bug: a shop with one ticket, two buyers, each reading the count and then writing it
back less one. In frontrun's style the shop is an object shared by two threads, its
steps marked ``# frontrun: read`` and ``# frontrun: write``, explored by
``explore_marker_interleavings`` (every interleaving of the markers; frontrun's DPOR,
``frontrun.explore``, runs only under its own ``frontrun`` command, so it is not
compared here). In ticketsim's the same shop is a file shared
by two buyer processes, the same steps marked with ``race.step``, explored by
``race.explore`` (every schedule of the turns between marks, fewest switches first).
A bounded exhaustive search of the same two markers has at most (2+2)!/(2!2!) = 6
interleavings to play.

frontrun is not a dependency of ticketsim: install it for this benchmark only
(``pip install frontrun``).

    python benchmarks/frontrun_compare.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ticketsim import race

TICKETS = 1


class Shop:
    """frontrun's side: the shop in memory, shared by threads."""

    def __init__(self) -> None:
        self.remaining = TICKETS
        self.sold = 0

    def buy(self) -> None:
        remaining = self.remaining  # frontrun: read
        if remaining > 0:
            self.remaining = remaining - 1  # frontrun: write
            self.sold += 1


def open_shop() -> str:
    """ticketsim's side: the shop in a file, shared by processes."""
    path = Path(tempfile.gettempdir()) / "ticketsim-frontrun-compare.json"
    path.write_text(json.dumps({"remaining": TICKETS}), encoding="utf-8")
    return str(path)


def buy(path: str, buyer: int) -> int | None:
    del buyer
    remaining = int(json.loads(Path(path).read_text(encoding="utf-8"))["remaining"])
    race.step("read", remaining)
    if remaining <= 0:
        return None
    Path(path).write_text(json.dumps({"remaining": remaining - 1}), encoding="utf-8")
    race.step("write")
    return TICKETS - remaining + 1


def _frontrun_markers(frontrun: Any) -> tuple[int, float]:
    started = time.perf_counter()
    result = frontrun.trace_markers.explore_marker_interleavings(
        setup=Shop,
        threads={
            "buyer-1": (Shop.buy, ["read", "write"]),
            "buyer-2": (Shop.buy, ["read", "write"]),
        },
        invariant=lambda shop: shop.sold <= TICKETS,
    )
    took = time.perf_counter() - started
    if result.property_holds:
        raise SystemExit("frontrun's marker search found no counterexample")
    return int(result.num_explored), took


def _ticketsim() -> tuple[int, float]:
    started = time.perf_counter()
    found = race.explore(race.Race(buy, open_shop, buyers=2, tickets=TICKETS, start_method="fork"))
    took = time.perf_counter() - started
    if found.counterexample is None:
        raise SystemExit("ticketsim found no counterexample")
    return found.runs, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    try:
        import frontrun  # type: ignore[import-not-found]
        import frontrun.trace_markers  # type: ignore[import-not-found]
    except ImportError:
        raise SystemExit("install frontrun for this benchmark: pip install frontrun") from None
    sides = {
        "frontrun, every marker interleaving": lambda: _frontrun_markers(frontrun),
        "ticketsim, race.explore": _ticketsim,
    }
    seen: dict[str, list[tuple[int, float]]] = {name: [] for name in sides}
    for _ in range(args.runs):  # interleaved: each side once a round
        for name, side in sides.items():
            seen[name].append(side())
    print(f"the first counterexample of a lost update, medians of {args.runs} rounds")
    for name, runs in seen.items():
        tried = statistics.median(n for n, _ in runs)
        took = statistics.median(t for _, t in runs)
        print(f"  {name:<38} {tried:g} schedule(s) tried, {took * 1000:.1f} ms")


if __name__ == "__main__":
    main()
