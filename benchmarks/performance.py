"""How fast ticketsim is, against the limits of the machine it runs on (issue 7).

One command runs every measurement; each prints a markdown table for the README.
Medians of ``--runs`` runs; every ratio compares figures taken in the same run, the
two sides interleaved, because a small machine is noisy.

1. limit: the serial limit (one process, the same read-modify-write of the db, in a
   loop, no lock) against the sale throughput of each safe strategy with ``--delay 0``
   (sales per second from the opening of the sale to the last sale); and, as the
   bound under any sale by several processes, the same check, lock, read and write
   with nothing else around them (``benchmarks/handoff.py``), how long its buyers hold
   the lock and how long the lock takes to change hands.
2. overhead: ``ticketsim run --buyers 50 --lock --delay 0`` end to end against
   ``benchmarks/bare_lock.py``, the same 50 protected purchases written by hand; and
   the bare script with the start gate, the CLI's imports, and both.
3. scale: ``ticketsim run --buyers N --tickets N/2 --lock --delay 0`` at 1,000 and
   10,000 buyers: sale time per buyer, wall time, and the peak memory of the whole
   process tree (the sum of every process's resident set, sampled every 20 ms; shared
   pages count once per process, so this overstates it); the serial loop's time per
   sale at the same N/2 tickets, the part of a sale that grows with the ledger; and the
   bare hand-off's time per buyer in the same sales, whose growth every sale pays.
4. spawn: starting 50 buyers under ``spawn`` (``startup_s`` of the report) against
   starting 50 processes that import nothing (``benchmarks/bare_spawn.py``).
5. startup: ``ticketsim --help`` against ``python -c "import typer"``
   (``benchmarks/startup.py``).
6. checker: checking histories of up to 1,000,000 events (``benchmarks/checker_scale.py``).
7. methods: the sale itself (``elapsed_s``: from the opening of the sale to the last
   sale) of ``ticketsim run --lock --delay 0`` at 50 and 1,000 buyers under ``fork``,
   ``forkserver`` and ``spawn``, each against ``fork``'s in the same round; and a whole
   ``spawn`` run of 50 buyers against ``bare_lock.py --start-method spawn``.
8. explore: the searches' goals (``benchmarks/explore_speed.py``).
9. stores: each database strategy against a bare script (``benchmarks/stores.py``).
10. hosts: the lock-free strategies on 3 hosts against 1 (``benchmarks/hosts.py``).
11. suite: README's test command, timed once.

Every section checks issue 19's goals that it measures; at the end a table gives each
goal's measure, bound and verdict, and the command exits 1 when one is not met, so that
it can be run as a check.

    python benchmarks/performance.py [--runs 5] [--only limit,overhead,scale,spawn,...]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import checker_scale  # noqa: E402
import explore_speed  # noqa: E402
import hosts as host_speed  # noqa: E402
import startup as startup_times  # noqa: E402
import stores as store_speed  # noqa: E402
from goals import Goal, report  # noqa: E402
from handoff import BareSale, bare_sale  # noqa: E402

from ticketsim import RunConfig, build_report, run_sale  # noqa: E402
from ticketsim.core import db as dbfile  # noqa: E402
from ticketsim.core.settings import PROCESS_PER_BUYER_MAX, auto_workers  # noqa: E402
from ticketsim.engine.databases import PrivateServers  # noqa: E402
from ticketsim.sale.stores import FileStore  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

TICKETSIM = str(Path(sys.executable).with_name("ticketsim"))
#: Programs are timed as an installed program runs: with its bytecode cached, in a
#: folder of this run's own, whatever PYTHONDONTWRITEBYTECODE says.
_CACHE = tempfile.mkdtemp(prefix="ticketsim-bench-pycache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
ENV["PYTHONPYCACHEPREFIX"] = _CACHE
SECTIONS = (
    "limit", "overhead", "scale", "spawn", "startup", "checker", "methods", "explore", "stores",
    "hosts", "suite",
)  # fmt: skip
SAFE = ("lock", "semaphore", "filelock", "value", "array", "office", "manager")
#: The bare hand-off each strategy of goal 1 is held against (``handoff.py --guard``).
HANDOFF = {"lock": "lock", "semaphore": "lock", "filelock": "filelock"}


def serial_limit(db: Path, sales: int) -> float:
    """Sales per second of one process reading and writing the db in a loop, no lock:
    the buyers' own read and write (``FileStore``), nothing else."""
    dbfile.write_atomic(db, dbfile.TicketDB.fresh(sales))
    store = FileStore(str(db))
    started = time.perf_counter()
    for number in range(1, sales + 1):
        seen = store.read(lambda *args, **kwargs: None)
        sale = dbfile.Sale(f"buyer-{number}", seen.seat, os.getpid(), time.time())
        store.sell(seen, sale)
        store.tidy()
    return sales / (time.perf_counter() - started)


def serial_sale_s(db: Path, tickets: int) -> float:
    """Seconds per sale of the serial loop selling ``tickets`` tickets."""
    return 1 / serial_limit(db, tickets)


#: Issue 19's least share of the bare hand-off each guard's strategies reach.
HANDOFF_GOAL = {"lock": 0.95, "semaphore": 0.95, "filelock": 0.9}


def limit(runs: int, sizes: Sequence[int]) -> list[Goal]:
    print("\n## 1. Sale throughput against the serial limit (--delay 0)\n")
    found: list[Goal] = []
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "tickets.json"
        for size in sizes:
            limits: list[float] = []
            ratios: dict[str, list[float]] = {name: [] for name in SAFE}
            rates: dict[str, list[float]] = {name: [] for name in SAFE}
            bare: dict[str, list[BareSale]] = {"lock": [], "filelock": []}
            alone: list[BareSale] = []  # one process, the lock never changes hands
            crew = ""
            # A sale of this size runs one process per buyer, or on a crew of this many.
            processes = 0 if size <= PROCESS_PER_BUYER_MAX else auto_workers()
            for seed in range(runs):
                limits.append(serial_limit(db, size))
                for guard, figures in bare.items():
                    figures.append(bare_sale(size, size, processes, guard, folder))
                alone.append(bare_sale(size, size, 1, "lock", folder))
                for name in SAFE:
                    config = RunConfig(
                        buyers=size,
                        tickets=size,
                        strategy=name,
                        db_path=db,
                        delay=0.0,
                        seed=seed,
                        start_method="fork",
                    )
                    report = build_report(run_sale(config))
                    if not report.ok or report.sold != size:
                        raise SystemExit(f"{name}: {report.verdict}")
                    rates[name].append(report.throughput)
                    ratios[name].append(report.throughput / limits[-1])
                    crew = report.crew
            print(f"{size} buyers, {size} tickets, fork, {crew}, median of {runs} runs")
            print(f"serial limit: {statistics.median(limits):.0f} sales/s\n")
            print("| strategy | sales/s | of the limit | of its bare hand-off |")
            print("|---|---:|---:|---:|")
            for guard, figures in bare.items():
                rate = statistics.median(b.rate for b in figures)
                ratio = statistics.median(
                    b.rate / lim for b, lim in zip(figures, limits, strict=True)
                )
                print(f"| bare hand-off, {guard} (`handoff.py`) | {rate:.0f} | {ratio:.2f} | |")
            for name in SAFE:
                rate, ratio = statistics.median(rates[name]), statistics.median(ratios[name])
                against = ""
                if name in HANDOFF:
                    own = zip(rates[name], bare[HANDOFF[name]], strict=True)
                    share = statistics.median(r / b.rate for r, b in own)
                    against = f"{share:.2f}"
                    found.append(
                        Goal(f"`{name}`, {size} buyers: of the bare hand-off", share,
                             HANDOFF_GOAL[name], ">=", "x")
                    )  # fmt: skip
                print(f"| `{name}` | {rate:.0f} | {ratio:.2f} | {against} |")
            locked = bare["lock"]
            solo = statistics.median(b.rate / lim for b, lim in zip(alone, limits, strict=True))
            print(
                "\nbare hand-off, lock: a buyer holds it "
                f"{statistics.median(b.hold_s for b in locked) * 1e6:.0f} us (its read and "
                f"write), and it takes {statistics.median(b.handoff_s for b in locked) * 1e6:.0f}"
                " us to change hands; one process making every purchase itself holds it "
                f"{statistics.median(b.hold_s for b in alone) * 1e6:.0f} us "
                f"({solo:.2f} of the limit)\n"
            )
    return found


def _wall(command: Sequence[str], cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=ENV, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - started


def overhead(runs: int) -> list[Goal]:
    print("\n## 2. `ticketsim run --buyers 50 --lock --delay 0` against a bare script\n")
    bare_script = [sys.executable, str(HERE / "bare_lock.py")]
    programs = {
        "`python benchmarks/bare_lock.py`": bare_script,
        "the same `--gate` (issue 2's start gate)": [*bare_script, "--gate"],
        "the same `--cli` (the CLI's imports)": [*bare_script, "--cli"],
        "the same `--gate --cli`": [*bare_script, "--gate", "--cli"],
        "`ticketsim run --buyers 50 --lock --delay 0`": [
            TICKETSIM, "run", "--buyers", "50", "--lock", "--delay", "0"
        ],
    }  # fmt: skip
    walls: dict[str, list[float]] = {name: [] for name in programs}
    with tempfile.TemporaryDirectory() as folder:
        _wall([TICKETSIM, "run", "--buyers", "2", "--lock"], folder)  # fills the cache
        _wall([*bare_script, "--buyers", "2", "--cli"], folder)
        for _ in range(runs):
            for name, command in programs.items():
                walls[name].append(_wall(command, folder))
    bare = walls["`python benchmarks/bare_lock.py`"]
    print(f"median of {runs} runs, interleaved, wall time of the whole program\n")
    print("| program | wall | against the bare script (median of the runs' ratios) |")
    print("|---|---:|---:|")
    for name, figures in walls.items():
        ratio = statistics.median(w / b for w, b in zip(figures, bare, strict=True))
        print(f"| {name} | {statistics.median(figures):.3f} s | {ratio:.2f}x |")
    floor = walls["the same `--gate --cli`"]
    ours = walls["`ticketsim run --buyers 50 --lock --delay 0`"]
    ratio = statistics.median(o / f for o, f in zip(ours, floor, strict=True))
    print(f"\nagainst the bare script with the gate and the CLI's imports: {ratio:.2f}x")
    return [Goal("`run --buyers 50 --lock --delay 0` against the bare script with gate and CLI "
                 "imports", ratio, 1.15, "<=", "x")]  # fmt: skip


class _TreeMemory:
    """The peak of the summed resident sets of a process and all its descendants."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            total = sum(_rss_kb(pid) for pid in _tree(self.pid))
            self.peak_kb = max(self.peak_kb, total)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(5)
        return self.peak_kb


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
    return found


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _big_run(buyers: int, folder: str) -> tuple[dict[str, object], float, int]:
    command = [TICKETSIM, "run", "--buyers", str(buyers), "--tickets", str(buyers // 2)]
    command += ["--lock", "--delay", "0", "--json"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=folder, env=ENV, stdout=subprocess.PIPE, text=True)
    memory = _TreeMemory(process.pid)
    out, _ = process.communicate(timeout=1200)
    wall = time.perf_counter() - started
    peak = memory.stop()
    if process.returncode != 0:
        raise SystemExit(f"{buyers} buyers: exit {process.returncode}")
    report: dict[str, object] = json.loads(out)
    return report, wall, peak


def scale(runs: int, sizes: Sequence[int]) -> list[Goal]:
    print("\n## 3. Scale: `ticketsim run --buyers N --tickets N/2 --lock --delay 0`\n")
    per_buyer: dict[int, list[float]] = {n: [] for n in sizes}
    walls: dict[int, list[float]] = {n: [] for n in sizes}
    peaks: dict[int, list[int]] = {n: [] for n in sizes}
    loop: dict[int, list[float]] = {n: [] for n in sizes}
    bare: dict[int, list[float]] = {n: [] for n in sizes}
    crews: dict[int, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(runs):
            for buyers in sizes:
                loop[buyers].append(serial_sale_s(Path(folder) / "loop.json", buyers // 2))
                bare_run = bare_sale(buyers, buyers // 2, auto_workers(), "lock", folder)
                bare[buyers].append(bare_run.per_buyer_s)
                report, wall, peak = _big_run(buyers, folder)
                per_buyer[buyers].append(float(report["elapsed_s"]) / buyers)  # type: ignore[arg-type]
                walls[buyers].append(wall)
                peaks[buyers].append(peak)
                crews[buyers] = str(report["crew"])
    print(f"median of {runs} runs; every invariant checked in every run\n")
    print("| buyers | sale time per buyer | wall time | peak memory of the tree | crew |")
    print("|---:|---:|---:|---:|---|")
    for buyers in sizes:
        print(
            f"| {buyers} | {statistics.median(per_buyer[buyers]) * 1000:.3f} ms "
            f"| {statistics.median(walls[buyers]):.2f} s "
            f"| {max(peaks[buyers]) / 1024:.0f} MiB (max) | {crews[buyers]} |"
        )
    small, big = sizes[0], sizes[-1]
    ratios = [b / s for b, s in zip(per_buyer[big], per_buyer[small], strict=True)]
    print(
        f"\ntime per buyer at {big} / at {small}: {statistics.median(ratios):.2f}x "
        f"(median of the runs' ratios; they ranged {min(ratios):.2f}x-{max(ratios):.2f}x)"
    )
    growth = statistics.median(loop[big]) / statistics.median(loop[small])
    print(
        f"the serial loop's time per sale, {big // 2} tickets / {small // 2}: "
        f"{statistics.median(loop[big]) * 1e6:.0f} us / {statistics.median(loop[small]) * 1e6:.0f}"
        f" us = {growth:.2f}x (the read and rewrite of the whole db)"
    )
    low, high = statistics.median(bare[small]), statistics.median(bare[big])
    print(
        f"the bare hand-off's time per buyer, the same sales on {auto_workers()} processes: "
        f"{high * 1e6:.0f} us / {low * 1e6:.0f} us = {high / low:.2f}x. What grows, "
        f"{(high - low) * 1e6:.0f} us a buyer, any sale of this db by several processes "
        f"pays; at most 1.25x needs {4 * (high - low) * 1e6:.0f} us a buyer or more at {small}"
    )
    peak_mib = max(peaks[big]) / 1024
    return [Goal(f"{big} buyers: peak memory of the process tree", peak_mib, 1024, "<=", " MiB")]


def spawn(runs: int) -> list[Goal]:
    print("\n## 4. Starting 50 buyers under spawn against 50 processes that import nothing\n")
    ours, bare = [], []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(runs):
            command = [TICKETSIM, "run", "--buyers", "50", "--lock", "--delay", "0", "--json"]
            done = subprocess.run(
                [*command, "--start-method", "spawn"],
                cwd=folder,
                env=ENV,
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
            ours.append(float(json.loads(done.stdout)["startup_s"]))
            done = subprocess.run(
                [sys.executable, str(HERE / "bare_spawn.py"), "--processes", "50"],
                env=ENV,
                capture_output=True,
                text=True,
                check=True,
                timeout=600,
            )
            bare.append(float(done.stdout))
    ratio = statistics.median(o / b for o, b in zip(ours, bare, strict=True))
    print(f"median of {runs} runs, interleaved; first start() to the last buyer ready\n")
    print("| processes | start-up |")
    print("|---|---:|")
    print(f"| 50 ticketsim buyers | {statistics.median(ours):.3f} s |")
    print(f"| 50 processes that import nothing | {statistics.median(bare):.3f} s |")
    print(f"| ratio (median of the runs' ratios) | {ratio:.2f}x |")
    return []


METHODS = ("fork", "forkserver", "spawn")


def _sale_s(buyers: int, method: str, folder: str) -> float:
    tickets = 10 if buyers <= PROCESS_PER_BUYER_MAX else buyers // 2
    command = [TICKETSIM, "run", "--buyers", str(buyers), "--tickets", str(tickets), "--lock"]
    done = subprocess.run(
        [*command, "--delay", "0", "--start-method", method, "--json"],
        cwd=folder,
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    return float(json.loads(done.stdout)["elapsed_s"])


def methods(runs: int, sizes: Sequence[int] = (50, 1000)) -> list[Goal]:
    print("\n## 7. The sale under each start method, and a whole spawn run against a bare one\n")
    sale: dict[tuple[int, str], list[float]] = {(n, m): [] for n in sizes for m in METHODS}
    ours, bare = [], []
    bare_spawn = [sys.executable, str(HERE / "bare_lock.py"), "--start-method", "spawn"]
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(runs):
            for buyers in sizes:
                for method in METHODS:
                    sale[buyers, method].append(_sale_s(buyers, method, folder))
            ours.append(_wall([TICKETSIM, "run", "--buyers", "50", "--lock", "--delay", "0",
                               "--start-method", "spawn"], folder))  # fmt: skip
            bare.append(_wall(bare_spawn, folder))
    print(f"median of {runs} runs, interleaved; `--lock --delay 0`, 10 tickets (N/2 at 1,000)\n")
    print("| buyers | " + " | ".join(METHODS) + " | forkserver / fork | spawn / fork |")
    print("|---:|" + "---:|" * (len(METHODS) + 2))
    found: list[Goal] = []
    for buyers in sizes:
        figures = " | ".join(f"{statistics.median(sale[buyers, m]) * 1000:.1f} ms" for m in METHODS)
        ratios = [
            statistics.median(
                a / b for a, b in zip(sale[buyers, m], sale[buyers, "fork"], strict=True)
            )
            for m in ("forkserver", "spawn")
        ]
        print(f"| {buyers} | {figures} | {ratios[0]:.2f}x | {ratios[1]:.2f}x |")
        found += [
            Goal(f"the sale, {buyers} buyers: {method} against fork", ratio, 1.2, "<=", "x")
            for method, ratio in zip(("forkserver", "spawn"), ratios, strict=True)
        ]
    ratio = statistics.median(o / b for o, b in zip(ours, bare, strict=True))
    print(
        f"\n`ticketsim run --buyers 50 --lock --delay 0 --start-method spawn`, whole program: "
        f"{statistics.median(ours):.3f} s against {statistics.median(bare):.3f} s for "
        f"`bare_lock.py --start-method spawn`: {ratio:.2f}x (median of the runs' ratios)"
    )
    found.append(Goal("a whole spawn run against a bare spawn script", ratio, 1.2, "<=", "x"))
    return found


def startup(runs: int) -> list[Goal]:
    print('\n## 5. `ticketsim --help` against `python -c "import typer"`\n')
    ratio = startup_times.show(max(runs, 10))
    return [Goal("`ticketsim --help` against `import typer`", ratio, 1.5, "<=", "x")]


def checker(runs: int) -> list[Goal]:
    """The checker's time and memory per event, 1,000,000 events against 100,000."""
    del runs
    print("\n## 6. Checking histories of 100,000 and 1,000,000 events (best of 3)\n")
    with tempfile.TemporaryDirectory() as folder:
        small, large = (checker_scale.lock_row(n, Path(folder), 3) for n in (100_000, 1_000_000))
    time_ratio = large.check.us_per_event / small.check.us_per_event
    memory_ratio = large.check.peak_per_event / small.check.peak_per_event
    print(
        f"check: {small.check.seconds:.3f} s for {small.events:,} events, "
        f"{large.check.seconds:.3f} s for {large.events:,}; per event {time_ratio:.2f}x the "
        f"time and {memory_ratio:.2f}x the memory (`benchmarks/checker_scale.py` for the rest)"
    )
    return [
        Goal("checking 1,000,000 events: time per event against 100,000 (cache misses "
             "allowed)", time_ratio, 2, "<=", "x"),
        Goal("checking 1,000,000 events: memory per event against 100,000", memory_ratio,
             1.2, "<=", "x"),
    ]  # fmt: skip


def explore(runs: int) -> list[Goal]:
    print("\n## 8. Explore: first counterexamples, proofs, its own cost, its memory\n")
    with tempfile.TemporaryDirectory() as folder:
        return explore_speed.goals(runs, Path(folder))


def stores(runs: int) -> list[Goal]:
    print("\n## 9. Each database strategy against a bare script with the same client\n")
    return store_speed.goals(runs, 60)


def hosts(runs: int) -> list[Goal]:
    print("\n## 10. A sale over hosts: 3 hosts against 1\n")
    with PrivateServers() as servers:
        return host_speed.scaling(servers, runs, 30)


def suite(runs: int) -> list[Goal]:
    """README's test command in this checkout, once: how long it takes."""
    del runs
    print("\n## 11. README's test command (`python -m pytest`)\n")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE"],
        cwd=HERE.parent, capture_output=True, text=True, check=False, timeout=3600,
    )  # fmt: skip
    took = time.perf_counter() - started
    print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:])
    if done.returncode != 0:
        failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
        raise SystemExit(f"the suite failed (exit {done.returncode}): " + "; ".join(failed))
    return [Goal("README's test command", took, 150, "<=", " s")]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default=",".join(SECTIONS))
    options = parser.parse_args()
    chosen = options.only.split(",")
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"--only={options.only!r}: choose from {', '.join(SECTIONS)}")
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as folder:  # fill the bytecode cache, untimed
        _wall([TICKETSIM, "run", "--buyers", "2", "--lock", "--start-method", "spawn"], folder)
        _wall([sys.executable, str(HERE / "bare_spawn.py"), "--processes", "2"], folder)
    sections: dict[str, Callable[[int], list[Goal]]] = {
        "limit": lambda runs: limit(runs, (50, 2000)),
        "overhead": overhead,
        "scale": lambda runs: scale(runs, (1000, 10_000)),
        "spawn": spawn,
        "startup": startup,
        "checker": checker,
        "methods": methods,
        "explore": explore,
        "stores": stores,
        "hosts": hosts,
        "suite": suite,
    }
    found: list[Goal] = []
    for name in chosen:
        found += sections[name](options.runs)
        sys.stdout.flush()
    report(found)


if __name__ == "__main__":
    main()
