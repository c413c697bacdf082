"""One sale over several hosts: real buyer processes in network namespaces (or process
groups), each host on a link of its own to the session's real PostgreSQL and Redis,
with the faults between hosts forced where they hurt (``--partition HOST@read``)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sales import SERVERS, script

from ticketsim.analysis import history as historyfile
from ticketsim.analysis.checker import Kind
from ticketsim.analysis.report import build_report
from ticketsim.core import db as dbfile
from ticketsim.core.events import CUT_OFF_ON_PURPOSE, OUTCOMES, Step
from ticketsim.core.exits import ExitCode
from ticketsim.core.hosts import HOST_IDLE_S
from ticketsim.core.names import StoreKind
from ticketsim.core.settings import RunConfig
from ticketsim.engine import network
from ticketsim.engine.hosts import run_hosts

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ticketsim.core.result import RunResult

NAMESPACES = network.namespaces_refused() is None
needs_namespaces = pytest.mark.skipif(
    not NAMESPACES, reason=f"no network namespaces here: {network.namespaces_refused()}"
)


def _hosts_run(tmp_path: Path, **options: object) -> RunResult:
    options.setdefault("delay", 0.0)
    options.setdefault("timeout", 20.0)
    config = RunConfig(db_path=tmp_path / "tickets.json", **options)  # type: ignore[arg-type]
    return run_hosts(config, servers=SERVERS)


def _leftovers() -> list[str]:
    """Namespace names, veth links and link processes of ticketsim's still there."""
    found = []
    if Path("/run/netns").is_dir():
        found += [p.name for p in Path("/run/netns").iterdir() if p.name.startswith("ticketsim-")]
    for link in Path("/sys/class/net").iterdir():
        if network._VETH.fullmatch(link.name):
            found.append(link.name)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            ours = b"ticketsim buyers" in command or b"ticketsim.engine.network" in command
            if stat.rsplit(")", 1)[1].split()[0] != "Z" and ours:
                found.append(f"process {entry.name}: {command.decode(errors='replace')}")
    return found


@pytest.fixture(autouse=True)
def _nothing_left() -> Iterator[None]:
    yield
    deadline = time.monotonic() + 10
    while _leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _leftovers() == []


def _sold(result: RunResult) -> int:
    return sum(1 for e in result.history if e.step is Step.OK)


@pytest.mark.parametrize("mode", ["namespace", "process-group"])
def test_pg_update_keeps_its_word_across_three_hosts(tmp_path: Path, mode: str) -> None:
    if mode == "namespace" and not NAMESPACES:
        pytest.skip("no network namespaces here")
    result = _hosts_run(
        tmp_path, hosts=3, strategy="pg-update", buyers=6, tickets=4, host_mode=mode
    )
    report = build_report(result)
    assert report.ok, report.verdict
    assert report.sold == 4
    assert result.hosts is not None
    assert result.hosts.count == 3
    assert ("namespaces" if mode == "namespace" else "process groups") in result.hosts.kind
    # Every buyer's events came from its own host, and the history is in the store's order.
    hosts = {e.buyer: e.host or "" for e in result.history}
    assert sorted(set(hosts.values())) == ["host-1", "host-2", "host-3"]
    assert [e.t for e in result.history] == sorted(e.t for e in result.history)
    # The db file gets the store's tickets, as a run on one machine leaves it.
    assert '"remaining": 0' in (tmp_path / "tickets.json").read_text()


def test_pg_naive_oversells_across_three_hosts(tmp_path: Path) -> None:
    # host-2's first buyer reads, the others are held back until host-2 is cut off:
    # every buyer then reads the one ticket, whatever the scheduler does.
    result = _hosts_run(
        tmp_path,
        hosts=3,
        strategy="pg-naive",
        buyers=3,
        tickets=1,
        partition="host-2@read+0.5s",
    )
    report = build_report(result)
    assert report.exit_code is ExitCode.VIOLATED
    assert Kind.OVERSOLD in {v.kind for v in report.violations}
    assert _sold(result) >= 2


@pytest.mark.parametrize(
    ("strategy", "oversold"),
    [("redis-lock", True), ("redis-fenced", False), ("pg-naive", True), ("pg-for-update", False)],
)
def test_a_holder_cut_off_mid_purchase(tmp_path: Path, strategy: str, oversold: bool) -> None:
    result = _hosts_run(
        tmp_path,
        hosts=2,
        strategy=strategy,
        buyers=2,
        tickets=1,
        partition="host-2@read" + ("" if strategy.startswith("pg-for") else "+1.5s"),
    )
    report = build_report(result)
    kinds = {v.kind for v in report.violations}
    assert (Kind.OVERSOLD in kinds) is oversold, report.verdict
    assert any("was cut off" in fault for fault in result.faults)
    if not oversold:
        assert report.exit_code is ExitCode.OK, report.verdict
        assert report.sold == 1


def test_a_process_group_host_is_cut_off_at_its_link(tmp_path: Path) -> None:
    # No veth to take down: the host's link process stops forwarding, which a lock's
    # lease does not survive either.
    result = _hosts_run(
        tmp_path,
        hosts=2,
        strategy="redis-lock",
        buyers=2,
        tickets=1,
        partition="host-2@read+1.5s",
        host_mode="process-group",
    )
    report = build_report(result)
    assert Kind.OVERSOLD in {v.kind for v in report.violations}, report.verdict
    assert any("process group's link process stopped" in fault for fault in result.faults)
    assert result.hosts is not None
    assert "process groups" in result.hosts.kind


def test_postgresql_lets_a_cut_off_holder_go_after_its_idle_timeout(tmp_path: Path) -> None:
    result = _hosts_run(
        tmp_path, hosts=2, strategy="pg-for-update", buyers=2, tickets=1, partition="host-2@read"
    )
    report = build_report(result)
    assert report.ok or report.cut_off, report.verdict
    assert report.cut_off == ("buyer-" + str(_buyer_of(result, "host-2")),)
    assert any("idle_in_transaction_session_timeout" in f for f in result.faults)
    # The server frees the row no sooner than the timeout ticketsim set on the holder's
    # session, which started no sooner than the holder asked for the row (its "wait").
    holder = [e for e in result.history if e.host == "host-2" and e.step is Step.WAIT]
    other = [e for e in result.history if e.host == "host-1" and e.step is Step.ENTER]
    assert other[0].t - holder[0].t >= HOST_IDLE_S - 0.01, (holder, other)
    # The cut-off buyer learnt nothing for certain: its ending is info, planned.
    ending = [e for e in result.history if e.host == "host-2" and e.step in OUTCOMES]
    assert [e.error for e in ending] == [CUT_OFF_ON_PURPOSE]


def _buyer_of(result: RunResult, host: str) -> int:
    return next(e.buyer for e in result.history if e.host == host)


def test_a_slow_link_delays_every_step_of_its_host(tmp_path: Path) -> None:
    result = _hosts_run(
        tmp_path, hosts=2, strategy="pg-update", buyers=2, tickets=2, slow_link=("host-2=150ms",)
    )
    assert build_report(result).ok
    slow = [e.t for e in result.history if e.host == "host-2"]
    fast = [e.t for e in result.history if e.host == "host-1"]
    # Each event is one round trip over the link (150 ms each way) after the one before.
    after_gate = [b - a for a, b in itertools.pairwise(slow[1:])]
    assert after_gate
    assert min(after_gate) >= 0.3 - 0.01
    assert len(fast) == len(slow)
    assert "host-2's link delayed everything it sent or received by 150 ms" in result.faults


def test_a_skewed_clock_is_recorded_and_never_trusted(tmp_path: Path) -> None:
    result = _hosts_run(
        tmp_path, hosts=2, strategy="pg-update", buyers=2, tickets=2, clock_skew=("host-2=+5s",)
    )
    assert build_report(result).ok
    for event in result.history:
        assert event.host_t is not None
        offset = event.host_t - event.t
        assert (4.0 < offset < 6.0) if event.host == "host-2" else (-1.0 < offset < 1.0)
    assert [e.t for e in result.history] == sorted(e.t for e in result.history)
    # host-2's ready came before host-1's first step after the gate; its clock says after.
    assert result.hosts is not None
    assert result.hosts.clocks is not None
    assert result.hosts.clocks.misplaced > 0


def test_filelock_cannot_lock_across_hosts(tmp_path: Path) -> None:
    result = _hosts_run(tmp_path, hosts=2, strategy="filelock", buyers=4, tickets=1)
    report = build_report(result)
    # Each host sells its own copy's one ticket: two told yes, for one ticket.
    assert _sold(result) == 2
    assert Kind.OVERSOLD in {v.kind for v in report.violations}
    assert result.startup_s is not None
    assert result.startup_s > 0  # from the hosts' programs started to the gate open
    assert any("its own copy of the db" in fault for fault in result.faults)
    # The db the report names holds what it read: the copies' sales together (it was
    # left as the sale opened it, and 'check' of the run's history refused it).
    assert dbfile.load(tmp_path / "tickets.json") == result.final
    saved = tmp_path / "history.jsonl"
    historyfile.save(saved, result)
    checked = _run("check", "--history", str(saved), "--db", str(tmp_path / "tickets.json"))
    assert checked.returncode == report.exit_code, checked.stdout + checked.stderr


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def _ticketsim(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [script(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.parametrize("kind", [StoreKind.POSTGRES, StoreKind.REDIS])
def test_three_commands_on_two_shells(kind: StoreKind) -> None:
    url = SERVERS[kind]
    strategy = "pg-update" if kind is StoreKind.POSTGRES else "redis-lua"
    opened = subprocess.run(
        [script(), "sale", "open", "--store", url, "--strategy", strategy, "--tickets", "3"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    sale = opened.stdout.strip()
    shells = [
        _ticketsim("buyers", "--store", url, "--sale", sale, "--count", "2", "--host", name)
        for name in ("alpha", "beta")
    ]
    try:
        _wait_joined(url, kind, 2)
        started = subprocess.run(
            [script(), "sale", "start", "--store", url, "--sale", sale],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        checked = subprocess.run(
            [script(), "sale", "check", "--store", url, "--sale", sale, "--json"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        said = [shell.communicate(timeout=60) for shell in shells]
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["ok"]
    assert report["sold"] == 3
    assert report["buyers"] == 4
    assert report["hosts"]["count"] == 2
    assert {h["name"] for h in report["hosts"]["hosts"]} == {"alpha", "beta"}
    # The hosts started their processes themselves: it said 0.000 s.
    assert report["startup_s"] is None
    assert all(shell.returncode == 0 for shell in shells), said
    assert all("buyers" in out for out, _ in said), said


def _wait_joined(url: str, kind: StoreKind, hosts: int) -> None:
    from ticketsim.engine.hosts import Place

    board = Place(kind, url).board()
    try:
        deadline = time.monotonic() + 60
        while True:
            rows = board.hosts()
            if len(rows) == hosts and all(r.ready == r.count for r in rows):
                return
            assert time.monotonic() < deadline, rows
            time.sleep(0.05)
    finally:
        board.close()


def test_a_host_that_never_reports_leaves_its_buyers_unknown() -> None:
    url = SERVERS[StoreKind.REDIS]
    opened = subprocess.run(
        [script(), "sale", "open", "--store", url, "--strategy", "redis-decr", "--tickets", "2"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    sale = opened.stdout.strip()
    shell = _ticketsim("buyers", "--store", url, "--sale", sale, "--count", "2", "--host", "gone")
    try:
        _wait_joined(url, StoreKind.REDIS, 1)
        shell.kill()  # the host dies at the gate: nobody will report its buyers
        shell.communicate(timeout=30)
        checked = subprocess.run(
            [script(), "sale", "check", "--store", url, "--wait", "0.5", "--json"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.communicate(timeout=30)
    report = json.loads(checked.stdout)
    assert checked.returncode == ExitCode.STALLED, checked.stdout
    assert "gone did not report" in report["stalled"]
    # The dead host never reports: only --replace opens a sale over it.
    refused = _run("sale", "open", "--store", url, "--strategy", "redis-decr")
    assert refused.returncode == ExitCode.BAD_INPUT, refused.stderr
    assert "(gone)" in refused.stderr
    assert "--replace" in refused.stderr
    replaced = _run("sale", "open", "--store", url, "--strategy", "redis-decr", "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert report["sold"] == 0
    assert not report["violations"]


@needs_namespaces
def test_two_sets_of_hosts_made_at_once_get_subnets_of_their_own() -> None:
    """Two runs that start together see the same addresses in use (neither has wired a
    link yet): both took the first free subnet, and so the same one. Made here in one
    process, the two begin their search at the same subnet, as two runs whose process
    ids agree modulo 250 do."""
    with (
        network.Machines(2, mode="namespace") as first,
        network.Machines(2, mode="namespace") as second,
    ):
        assert first.gateway(1).rsplit(".", 1)[0] != second.gateway(1).rsplit(".", 1)[0]


def test_a_subnet_is_held_by_one_run_at_a_time_until_it_lets_go() -> None:
    subnet = "198.51.100"  # a documentation network, which no run of ticketsim claims
    held = network.claim_subnet(subnet)
    assert held is not None
    assert network.claim_subnet(subnet) is None
    held.close()
    again = network.claim_subnet(subnet)
    assert again is not None
    again.close()


@needs_namespaces
def test_nothing_is_left_when_ticketsim_is_killed_mid_partition(tmp_path: Path) -> None:
    run = subprocess.Popen(
        [
            script(), "run", "--hosts", "2", "--store", "redis", "--strategy", "redis-lock",
            "--buyers", "2", "--tickets", "1", "--partition", "host-2@read+30s",
            "--db", str(tmp_path / "t.json"),
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        # Until host-2's link has been up, then is down: cut off, its buyer holding the lock.
        deadline, seen_up = time.monotonic() + 60, False
        while not (seen_up and _operstate(run.pid) == "down"):
            seen_up = seen_up or _operstate(run.pid) == "up"
            assert time.monotonic() < deadline
            assert run.poll() is None
            time.sleep(0.02)
    finally:
        os.kill(run.pid, signal.SIGKILL)
        run.wait(30)
    # _nothing_left waits for the kernel to tear the namespaces and links down.


def _operstate(pid: int) -> str:
    """The state of host-2's link of the ticketsim with ``pid`` (down once it is cut)."""
    try:
        return Path(f"/sys/class/net/ts{pid}h2/operstate").read_text().strip()
    except OSError:
        return "absent"


@needs_namespaces
def test_a_ctrl_c_ends_every_host(tmp_path: Path) -> None:
    run = subprocess.Popen(
        [
            script(), "run", "--hosts", "2", "--store", "postgresql", "--strategy",
            "pg-for-update", "--buyers", "2", "--tickets", "1", "--partition",
            "host-2@read+30s", "--db", str(tmp_path / "t.json"),
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # Mid-partition: host-2's link has been up, and is down now, its buyer holding the row.
    deadline, seen_up = time.monotonic() + 60, False
    while not (seen_up and _operstate(run.pid) == "down"):
        seen_up = seen_up or _operstate(run.pid) == "up"
        assert time.monotonic() < deadline
        assert run.poll() is None
        time.sleep(0.02)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == ExitCode.INTERRUPTED, err
    assert "Traceback" not in err


def test_a_host_waiting_at_the_gate_leaves_a_sale_opened_over_its_own() -> None:
    url = SERVERS[StoreKind.POSTGRES]
    first = _run("sale", "open", "--store", url, "--strategy", "pg-update", "--tickets", "1")
    assert first.returncode == 0, first.stderr
    old = first.stdout.strip()
    shell = _ticketsim("buyers", "--store", url, "--sale", old, "--count", "2", "--host", "early")
    try:
        _wait_joined(url, StoreKind.POSTGRES, 1)
        # A second host of the same name is refused: its buyers would be counted twice.
        twin = _run("buyers", "--store", url, "--sale", old, "--count", "1", "--host", "early")
        assert twin.returncode == ExitCode.BAD_INPUT, twin.stderr
        assert "'early' has joined this sale already" in twin.stderr
        busy = _run("sale", "open", "--store", url, "--strategy", "pg-naive")
        assert busy.returncode == ExitCode.BAD_INPUT, busy.stderr
        assert f"its sale {old} has host(s) that have not reported (early)" in busy.stderr
        # A whole run over hosts is refused too, before it resets the store.
        over = _run("run", "--hosts", "2", "--store", url, "--strategy", "pg-naive")
        assert over.returncode == ExitCode.BAD_INPUT, over.stderr
        assert f"its sale {old} has host(s) that have not reported (early)" in over.stderr
        new = _run("sale", "open", "--store", url, "--strategy", "pg-naive", "--replace")
        assert new.returncode == 0, new.stderr
        out, _ = shell.communicate(timeout=60)
    finally:
        if shell.poll() is None:
            shell.kill()
            shell.communicate(timeout=30)
    # The waiting host saw its sale go, and its buyers never sold in the new one.
    assert shell.returncode == ExitCode.STALLED, out
    assert f"sale {old} was replaced" in out
    assert "0 got a ticket" in out
    from ticketsim.engine.hosts import Place

    board = Place(StoreKind.POSTGRES, url).board()
    try:
        assert board.hosts() == ()
        assert board.history() == []
    finally:
        board.close()
