"""A sale over hosts: its speed across 1, 2 and 3 hosts, how long a partitioned buyer
takes to be let go of, and what gathering and checking a big merged history costs.

* **Sales per second across hosts.** The same sale (``--buyers``, as many tickets, no
  race window) of each safe strategy, its buyers spread over 1, 2 and 3 hosts (network
  namespaces where this machine allows them), rounds taking turns (1, 2, 3, 1, 2, 3, ...)
  on one private server per store; medians, and each one's ratio to one host's.
* **Time to let a partitioned buyer go.** ``--partition host-2@read`` under
  ``pg-for-update`` and ``redis-lock``: how long after the cut another host's buyer got
  in, by the store's clock (the report's own figure); medians.
* **Gathering and checking a merged history.** ``--events`` events (100,000), written to
  each store's board as 100 hosts' buyers would, then read back in the store's order,
  given their ``info`` endings and checked (``build_report``); medians of each part.

    python benchmarks/hosts.py [--runs 5] [--buyers 30] [--events 100000]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from ticketsim.analysis.merged import in_store_order, unreported
from ticketsim.analysis.report import build_report
from ticketsim.core.events import Event, Step
from ticketsim.core.names import StoreKind
from ticketsim.core.result import RunResult
from ticketsim.core.settings import RunConfig
from ticketsim.engine.databases import PrivateServers
from ticketsim.engine.hosts import Place, open_sale, run_hosts

SAFE = ("pg-update", "pg-for-update", "redis-lua", "redis-fenced")
_STEPS = (Step.READY, Step.CHECK, Step.READ, Step.WRITE, Step.COMMIT, Step.OK)


def _throughput(servers: PrivateServers, strategy: str, hosts: int, buyers: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        config = RunConfig(
            db_path=Path(folder, "t.json"), strategy=strategy, hosts=hosts, buyers=buyers,
            tickets=buyers, delay=0.0, timeout=30.0,
        )  # fmt: skip
        result = run_hosts(config, servers=servers)
    report = build_report(result)
    if not report.ok:
        raise SystemExit(f"{strategy} on {hosts} host(s): {report.verdict}")
    return report.sold / result.elapsed_s


def _let_go(servers: PrivateServers, strategy: str) -> float:
    with tempfile.TemporaryDirectory() as folder:
        config = RunConfig(
            db_path=Path(folder, "t.json"), strategy=strategy, hosts=2, buyers=2, tickets=1,
            delay=0.0, timeout=30.0, partition="host-2@read+3s",
        )  # fmt: skip
        result = run_hosts(config, servers=servers)
    said = next(f for f in result.faults if " got it " in f)
    return float(said.split(" got it ")[1].split(" s ")[0])


def _merged(servers: PrivateServers, kind: StoreKind, events: int) -> dict[str, float]:
    """Write ``events`` events to the board, then time reading, ordering and checking."""
    strategy = "pg-update" if kind is StoreKind.POSTGRES else "redis-lua"
    per_buyer = len(_STEPS)
    buyers = events // per_buyer
    place = Place(kind, servers[kind])
    open_sale(place, strategy, buyers, delay=0.0, seed=1, timeout=30.0, replace=True)
    board = place.board()
    now = time.time()
    batch = [
        Event(
            number, step, 0.0, 1000 + number, seat=number if step is Step.OK else None,
            host=f"host-{number % 100}", host_t=now + index * 1e-6,
        )
        for number in range(1, buyers + 1)
        for index, step in enumerate(_STEPS)
    ]  # fmt: skip
    for start in range(0, len(batch), 5000):
        board.record(batch[start : start + 5000])
    card = board.card()
    assert card is not None
    started = time.perf_counter()
    history = board.history()
    read = time.perf_counter()
    ordered = in_store_order(history)
    ordered += unreported(ordered, {n: f"host-{n % 100}" for n in range(1, buyers + 1)}, now, "")
    merged = time.perf_counter()
    final = dataclasses.replace(card.initial, remaining=0)
    result = RunResult(
        config=RunConfig(strategy=strategy, buyers=buyers, tickets=buyers, store=place.where),
        start_method="fork", seed=1, initial=card.initial, final=final, final_error=None,
        history=tuple(ordered), opened_at=ordered[0].t, elapsed_s=1.0,
    )  # fmt: skip
    build_report(result)
    checked = time.perf_counter()
    board.close()
    return {
        "read": read - started,
        "order": merged - read,
        "check": checked - merged,
        "events": float(len(history)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--buyers", type=int, default=30)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with PrivateServers() as servers:
        print(f"sales per second, {args.buyers} buyers, medians of {args.runs} interleaved runs")
        for strategy in SAFE:
            rates: dict[int, list[float]] = {1: [], 2: [], 3: []}
            for _ in range(args.runs):
                for hosts, found in rates.items():
                    found.append(_throughput(servers, strategy, hosts, args.buyers))
            one = statistics.median(rates[1])
            cells = ", ".join(
                f"{hosts} host(s) {statistics.median(r):7.1f}/s ({statistics.median(r) / one:.2f})"
                for hosts, r in rates.items()
            )
            print(f"  {strategy:<14} {cells}")
        print(f"time to let a partitioned buyer go, medians of {args.runs} runs")
        for strategy in ("pg-for-update", "redis-lock"):
            times = [_let_go(servers, strategy) for _ in range(args.runs)]
            print(f"  {strategy:<14} {statistics.median(times):.2f} s (min {min(times):.2f})")
        print(f"gathering and checking {args.events} events, medians of {args.runs} runs")
        for kind in (StoreKind.POSTGRES, StoreKind.REDIS):
            runs = [_merged(servers, kind, args.events) for _ in range(args.runs)]
            parts = {k: statistics.median(r[k] for r in runs) for k in ("read", "order", "check")}
            events = int(runs[0]["events"])
            total = sum(parts.values())
            print(
                f"  {kind.value:<9} {events} events: read {parts['read']:.2f} s, order and "
                f"info endings {parts['order']:.2f} s, check {parts['check']:.2f} s, "
                f"total {total:.2f} s"
            )


if __name__ == "__main__":
    main()
