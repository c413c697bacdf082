"""Controlled sales: replaying one interleaving, exploring them all, hunting for one."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from sales import SERVERS
from typer.testing import CliRunner

from ticketsim.analysis.report import build_report
from ticketsim.cli import app
from ticketsim.core.catalog import CATALOG
from ticketsim.core.exits import ExitCode
from ticketsim.core.names import StoreKind
from ticketsim.core.schedule import all_schedules
from ticketsim.core.schedule import reduced as sched_reduced
from ticketsim.core.settings import RunConfig
from ticketsim.engine.runner import run_sale
from ticketsim.search.explore import Scenario, explore, hunt, signature

if TYPE_CHECKING:
    from pathlib import Path

    from typer.testing import Result

    from ticketsim.analysis.report import Report

#: The safe ones explored here: the db file's, and of each database one of each way of
#: being safe (a lock, a retry, an atomic step, SKIP LOCKED); every database strategy's
#: lesson is forced in tests/engine/test_databases.py.
EXPLORED = [
    name.value for name, s in CATALOG.items() if s.safe and s.store is StoreKind.FILE
] + [
    "sqlite-immediate", "sqlite-deferred", "pg-for-update", "pg-serializable",
    "pg-ledger-serializable", "pg-skip-locked", "redis-watch", "redis-lock", "redis-lua",
]  # fmt: skip
UNSAFE = [name.value for name, s in CATALOG.items() if not s.safe]
#: The unsafe strategies whose count races: each has the lost update to find.
RACING = [name.value for name, s in CATALOG.items() if not s.claims.count]
LOST_UPDATE = (
    "Lost update: buyer-1 and buyer-2 both read remaining=1 before either wrote it back; "
    "both were sold seat 1."
)


def test_two_buyers_one_ticket_unprotected_matches_the_count_by_hand(db_path: Path) -> None:
    """Each buyer reads (r) then writes (w): 4 steps, C(4, 2) = 6 orders. A buyer that
    reads after the other has written sees 0 and is refused: the 2 serial orders are
    one class (the buyers' names swapped). In the other 4 both read remaining=1 before
    either writes, and both are sold seat 1: one class too (the reads commute, and the
    two readers are in the same state). So 2 schedules to run, the serial one first."""
    result = explore(Scenario(strategy="none", buyers=2, tickets=1, db_path=db_path))
    assert result.interleavings == 6
    assert result.feasible == 6
    assert result.explored == 2
    assert result.violating == 1
    assert result.by_kind == {"double-booked": 1, "lost-sale": 1, "oversold": 1}
    found = result.counterexample
    assert found is not None
    assert found.schedule == "1r 2r 2w 1w"  # both read, both write: one preemption
    assert found.explanation == LOST_UPDATE
    assert found.replay == (
        f"ticketsim replay --strategy none --buyers 2 --tickets 1 --schedule '1r 2r 2w 1w' "
        f"--db {db_path}"
    )
    assert (result.replays, result.reproduced) == (10, 10)
    # The counterexample was the last class: nothing was left when the search stopped.
    assert result.exhausted
    assert not result.stopped_at_first
    assert result.stalled == ()
    assert result.schedules_per_s > 0


@pytest.mark.parametrize("buyers", [2, 3, 4, 5, 6])
def test_the_unlocked_sale_breaks_in_its_second_schedule(db_path: Path, buyers: int) -> None:
    """The serial schedule first, then the one preemption that matters: buyer 1 reads,
    buyer 2 reads before buyer 1 writes. The search stops there, however many buyers."""
    scenario = Scenario(strategy="none", buyers=buyers, tickets=1, db_path=db_path)
    result = explore(scenario, replays=2)
    assert result.explored == 2
    assert result.counterexample is not None
    assert result.counterexample.schedule.startswith("1r 2r 2w 1w")
    assert result.stopped_at_first is (buyers > 2)
    assert not result.complete if buyers > 2 else result.complete
    assert result.exit_code is ExitCode.VIOLATED
    assert (result.replays, result.reproduced) == (2, 2)


def test_all_goes_on_past_the_first_counterexample_to_every_class(db_path: Path) -> None:
    """Three buyers, one ticket: 3! = 6 classes (which buyer reads before which write);
    the two in which each buyer reads after the one before has written are fine."""
    scenario = Scenario(strategy="none", buyers=3, tickets=1, db_path=db_path)
    result = explore(scenario, every=True, replays=0)
    assert (result.explored, result.violating) == (6, 4)
    assert result.complete
    assert (result.replays, result.reproduced) == (0, 0)
    assert result.counterexample is not None
    assert result.counterexample.schedule == "1r 2r 2w 1w 3r 3w"


def test_the_locked_sale_of_eight_buyers_is_one_class(db_path: Path) -> None:
    """Under a lock the only orders are the 8! serial ones, and the buyers are alike:
    one schedule stands for them all."""
    scenario = Scenario(strategy="lock", buyers=8, tickets=7, db_path=db_path)
    result = explore(scenario)
    assert result.feasible == 40320
    assert result.explored == 1
    assert result.complete
    assert result.counterexample is None
    assert result.exit_code is ExitCode.OK


def _outcome(report: Report) -> tuple[object, ...]:
    """What a sale ended with, whichever buyer got which seat."""
    return (
        report.sold,
        report.refused,
        report.remaining,
        report.oversold,
        report.double_booked,
        tuple(sorted({v.kind.value for v in report.violations})),
    )


def test_skip_locked_runs_every_order_that_can_run_and_no_other(db_path: Path) -> None:
    """Three buyers, one seat: a reader that finds it locked waits, so 18 of the 90
    orders can run. The search ran them all as if reads only read, and every order in
    which a second buyer read before the first wrote stalled (explore said INCOMPLETE,
    replay ran it into its timeout)."""
    scenario = Scenario(
        strategy="pg-skip-locked", buyers=3, tickets=1, db_path=db_path, servers=SERVERS
    )
    model = CATALOG["pg-skip-locked"].model()  # type: ignore[index]
    runnable = [order for order in all_schedules(3) if model.blocked_at(order, 1) is None]
    assert len(runnable) == 18
    every = {_outcome(scenario.run(order)) for order in runnable}
    result = explore(scenario, every=True)
    assert (result.feasible, result.stalled, result.complete) == (18, (), True)
    assert result.counterexample is None
    reduced = sched_reduced(3, model, tickets=1)
    assert {_outcome(scenario.run(order)) for order in reduced} == every


def test_the_reduced_search_reaches_every_outcome_of_every_order(db_path: Path) -> None:
    """Real sales: the classes explore runs end in every way that some order of the
    three buyers' steps ends (90 orders, each run). tests/core/test_schedule.py checks
    the same of every model and size, on a model of the sale."""
    scenario = Scenario(strategy="none", buyers=3, tickets=2, db_path=db_path)
    model = CATALOG["none"].model()  # type: ignore[index]
    every = {
        _outcome(scenario.run(order))
        for order in all_schedules(3)
        if model.blocked_at(order) is None
    }
    reduced = {_outcome(scenario.run(order)) for order in sched_reduced(3, model)}
    assert reduced == every
    assert len(every) > 1


@pytest.mark.parametrize("strategy", EXPLORED)
def test_no_order_breaks_a_safe_strategy(db_path: Path, strategy: str) -> None:
    # A database's strategies take two buyers (their lessons are forced one by one in
    # tests/engine/test_databases.py). SKIP LOCKED holds a seat from the read on: the
    # schedule model knows that a reader beyond the seats waits, and runs no such order.
    buyers = 3 if CATALOG[strategy].store is StoreKind.FILE else 2  # type: ignore[index]
    tickets = buyers - 1
    scenario = Scenario(strategy=strategy, buyers=buyers, tickets=tickets, db_path=db_path)
    result = explore(scenario)
    assert result.counterexample is None
    assert result.violating == 0
    assert result.stalled == ()
    assert result.complete
    assert result.explored > 0
    if CATALOG[strategy].guarded:  # type: ignore[index]
        assert result.feasible == {2: 2, 3: 6}[buyers]  # serial orders; the lock forbids others
        assert result.explored == 1  # and the buyers are alike


def test_the_racing_strategies_are_the_unsafe_ones_but_one_that_gives_up() -> None:
    assert set(UNSAFE) - set(RACING) == {"pg-repeatable-read"}


@pytest.mark.parametrize("strategy", RACING)
def test_every_racing_strategy_has_a_counterexample_that_replays_10_of_10(
    db_path: Path, strategy: str
) -> None:
    scenario = Scenario(strategy=strategy, buyers=2, tickets=1, db_path=db_path)
    result = explore(scenario)
    found = result.counterexample
    assert found is not None
    assert found.explanation == LOST_UPDATE
    # Each replay ended with the same db and history as the run that found it.
    assert (result.replays, result.reproduced) == (10, 10)


def test_explore_finds_the_buyer_that_gives_up_and_leaves_a_ticket_unsold(
    db_path: Path,
) -> None:
    scenario = Scenario(strategy="pg-repeatable-read", buyers=2, tickets=2, db_path=db_path)
    result = explore(scenario)
    found = result.counterexample
    assert found is not None
    # Both read, then both write: the second writer is refused, and gives up.
    assert str(found.schedule).startswith("1r 2r")
    assert found.explanation.startswith("Undersold: buyer-")
    assert "gave up" in found.explanation
    assert result.by_kind == {"undersold": result.violating}


@pytest.mark.parametrize(
    ("strategy", "schedule"),
    [
        ("none", "1r 2r 1w 2w"),
        ("array-unlocked", "2r 1r 2w 3r 1w 3w"),
        ("lock", "2r 2w 1r 1w"),
        ("office", "3r 1r 2r 1w 2w 3w"),
        ("filelock", "3r 3w 1r 1w"),
    ],
)
def test_a_replay_is_the_same_20_times_in_a_row(
    db_path: Path, strategy: str, schedule: str
) -> None:
    scenario = Scenario(strategy=strategy, buyers=3, tickets=2, db_path=db_path)
    runs = [run_sale(scenario.config(schedule)) for _ in range(20)]
    first = runs[0]
    assert first.schedule is not None
    assert first.schedule.startswith(schedule)
    assert all(signature(r) == signature(first) for r in runs)
    assert all(r.stalled is None for r in runs)


def test_a_replay_reads_and_writes_in_the_order_given(db_path: Path) -> None:
    from ticketsim.core.schedule import from_history

    result = run_sale(
        RunConfig(
            db_path=db_path,
            strategy="none",
            buyers=3,
            tickets=1,
            delay=0.0,
            schedule="3r 1r 1w 2r 3w 2w",
        )
    )
    assert str(from_history(result.history)) == "3r 1r 1w 2r 3w 2w"
    report = build_report(result)
    assert (report.sold, report.refused) == (2, 1)  # buyer 2 read after buyer 1 wrote


def test_hunt_shrinks_a_larger_sale_to_the_smallest_story(db_path: Path) -> None:
    result = hunt(
        Scenario(strategy="none", buyers=4, tickets=3, db_path=db_path),
        max_examples=30,
        pct_runs=10,
    )
    found = result.counterexample
    assert found is not None
    assert "--buyers 2 --tickets 1" in found.replay
    assert found.explanation == LOST_UPDATE
    assert result.hypothesis_runs > 0
    assert result.pct_runs > 0


def test_hunt_finds_nothing_against_a_lock(db_path: Path) -> None:
    result = hunt(
        Scenario(strategy="lock", buyers=3, tickets=2, db_path=db_path),
        max_examples=20,
        pct_runs=10,
        depth=3,
    )
    assert result.counterexample is None


# --- the command line ---------------------------------------------------------------------

runner = CliRunner()


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args), catch_exceptions=False, prog_name="ticketsim")


@pytest.mark.parametrize(
    ("args", "code", "complete"),
    [
        (["--buyers", "2", "--preemption-bound", "0"], ExitCode.STALLED, False),
        (["--buyers", "3", "--preemption-bound", "1", "--all"], ExitCode.VIOLATED, False),
        (["--buyers", "3", "--preemption-bound", "0", "--lock"], ExitCode.OK, True),
    ],
    ids=["unlocked-bound-0", "unlocked-bound-1-all", "locked-bound-0"],
)
def test_a_preemption_bound_that_left_classes_out_is_no_proof(
    db_path: Path, args: list[str], code: ExitCode, complete: bool
) -> None:
    """The unlocked sale's only serial class keeps every invariant: with the bound at 0,
    the search that ran it said every class was run and none broke, exit 0. A bound
    that leaves nothing out (locked buyers never preempt) proves what it says."""
    result = invoke("explore", *args, "--json", "--db", str(db_path))
    assert result.exit_code == code, result.stdout
    found = json.loads(result.stdout)
    assert (found["complete"], found["bounded"]) == (complete, not complete)
    said = invoke("explore", *args, "--db", str(db_path)).stdout
    assert ("Every class of orders was run" in said) is complete
    if not complete:
        assert "within --preemption-bound" in " ".join(said.split())
    if code is ExitCode.STALLED:
        assert "were left unrun (--preemption-bound)" in " ".join(said.split())


def test_replay_json_has_runs_keys_and_reproduces(db_path: Path) -> None:
    result = invoke(
        "replay", "--schedule", "1r 2r 1w 2w", "--repeat", "3", "--json", "--db", str(db_path)
    )
    assert result.exit_code == ExitCode.VIOLATED
    report = json.loads(result.stdout)
    run = json.loads(
        invoke("run", "--buyers", "1", "--json", "--db", str(db_path), "--delay", "0").stdout
    )
    assert set(run) <= set(report)
    assert (report["schedule"], report["repeat"], report["reproduced"]) == ("1r 2r 1w 2w", 3, 3)
    assert (report["buyers"], report["tickets"], report["sold"], report["oversold"]) == (2, 1, 2, 1)


def test_replay_for_people_says_reproduced(db_path: Path) -> None:
    result = invoke(
        "replay", "--schedule", "1r 1w 2r 2w", "--lock", "--repeat", "2", "--db", str(db_path)
    )
    assert result.exit_code == ExitCode.OK
    assert "schedule: 1r 1w 2r 2w" in result.stdout
    assert "reproduced 2/2" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--schedule", "1r 2r 1w 2w", "--lock"], "infeasible under lock: step 2 (2r)"),
        (["--schedule", "1r 9x"], "'9x' is not BUYER then r or w"),
        (["--schedule", "3r", "--buyers", "2"], "names buyer 3, but buyers=2"),
        (["--schedule", "99999999999999999999r"], "takes at most 200 buyers; name buyers 1"),
        (["--schedule", "1r", "--repeat", "0"], "--repeat=0"),
    ],
    ids=["infeasible", "bad-step", "unknown-buyer", "too-many-buyers", "repeat-0"],
)
def test_replay_refuses_what_cannot_run(db_path: Path, args: list[str], message: str) -> None:
    result = invoke("replay", "--db", str(db_path), *args)
    assert result.exit_code == ExitCode.BAD_INPUT
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert not db_path.exists()


def test_explore_json_and_exit_codes(db_path: Path) -> None:
    broken = invoke("explore", "--json", "--db", str(db_path))
    assert broken.exit_code == ExitCode.VIOLATED
    data = json.loads(broken.stdout)
    for key in ("interleavings", "explored", "violating", "counterexample"):
        assert key in data
    assert data["counterexample"]["replay"].startswith("ticketsim replay ")
    assert data["counterexample"]["explanation"] == LOST_UPDATE
    fine = invoke("explore", "--lock", "--json", "--db", str(db_path))
    assert fine.exit_code == ExitCode.OK
    assert json.loads(fine.stdout)["counterexample"] is None
    people = invoke("explore", "--lock", "--db", str(db_path))
    assert "Every class of orders was run, and none broke an invariant." in people.stdout
    first = json.loads(invoke("explore", "--buyers", "3", "--json", "--db", str(db_path)).stdout)
    assert (first["explored"], first["stopped_at_first"], first["complete"]) == (2, True, False)
    assert (first["replays"], first["reproduced"]) == (10, 10)
    every = json.loads(
        invoke(
            "explore", "--buyers", "3", "--all", "--replays", "1", "--json", "--db", str(db_path)
        ).stdout
    )
    assert (every["explored"], every["stopped_at_first"], every["complete"]) == (6, False, True)
    assert (every["replays"], every["reproduced"]) == (1, 1)


def test_the_replay_command_explore_prints_reproduces_it(db_path: Path) -> None:
    import shlex

    data = json.loads(
        invoke("explore", "--json", "--strategy", "array-unlocked", "--db", str(db_path)).stdout
    )
    words = shlex.split(data["counterexample"]["replay"])
    assert words[:2] == ["ticketsim", "replay"]
    again = invoke(*words[1:], "--json", "--repeat", "2")
    assert again.exit_code == ExitCode.VIOLATED
    assert json.loads(again.stdout)["reproduced"] == 2


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("explore", ["--buyers", "11"], "use 'ticketsim hunt' for more"),
        ("explore", ["--replays", "1001"], "--replays=1001"),
        ("explore", ["--max-schedules", "0"], "--max-schedules=0"),
        ("explore", ["--preemption-bound", "-1"], "--preemption-bound=-1"),
        ("explore", ["--tickets", "-1"], "--tickets=-1"),
        ("hunt", ["--depth", "0"], "--depth=0"),
        ("hunt", ["--buyers", "0"], "--buyers=0"),
        ("hunt", ["--max-examples", "0", "--pct-runs", "0"], "--max-examples=0: with no PCT"),
    ],
    ids=[
        "explore-too-big",
        "too-many-replays",
        "no-schedules",
        "negative-bound",
        "negative-tickets",
        "depth-0",
        "no-buyers",
        "hunt-of-nothing",
    ],
)
def test_search_commands_refuse_bad_settings(
    db_path: Path, command: str, args: list[str], message: str
) -> None:
    result = invoke(command, "--db", str(db_path), *args)
    assert result.exit_code == ExitCode.BAD_INPUT
    assert message in result.stderr
    assert not db_path.exists()


def test_hunt_json(db_path: Path) -> None:
    result = invoke(
        "hunt",
        "--buyers",
        "3",
        "--tickets",
        "2",
        "--max-examples",
        "20",
        "--pct-runs",
        "5",
        "--json",
        "--db",
        str(db_path),
    )
    assert result.exit_code == ExitCode.VIOLATED
    data = json.loads(result.stdout)
    assert data["counterexample"]["explanation"]
    assert data["hypothesis_runs"] + data["pct_runs"] > 0


def test_a_free_run_prints_the_schedule_it_followed_and_replay_repeats_it(db_path: Path) -> None:
    free = json.loads(
        invoke(
            "run",
            "--buyers",
            "3",
            "--tickets",
            "1",
            "--lockstep",
            "--delay",
            "0",
            "--json",
            "--db",
            str(db_path),
        ).stdout
    )
    reads = free["schedule"].split()[:3]
    assert sorted(reads) == ["1r", "2r", "3r"]  # lockstep: every read before any write
    again = json.loads(
        invoke("replay", "--schedule", free["schedule"], "--json", "--db", str(db_path)).stdout
    )
    assert again["schedule"] == free["schedule"]
    for key in ("sold", "oversold", "double_booked", "lost_sales", "remaining"):
        assert again[key] == free[key]
