"""The command line through typer's CliRunner: reports, exit codes and bad input."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from ticketsim import __version__
from ticketsim.cli import app
from ticketsim.core import catalog
from ticketsim.core import db as dbfile
from ticketsim.core.catalog import CATALOG, CLAIM_TITLES, WORLDS
from ticketsim.core.events import OUTCOMES, from_json
from ticketsim.core.names import StoreKind

if TYPE_CHECKING:
    from pathlib import Path

    from typer.testing import Result

runner = CliRunner()
FAST = ["--delay", "0", "--timeout", "20"]


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env=env, catch_exceptions=False, prog_name="ticketsim")


def test_lock_run_reports_ok_as_json(db_path: Path) -> None:
    result = invoke(
        "run", "--buyers", "12", "--tickets", "4", "--lock", "--json", "--db", str(db_path), *FAST
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in (
        "strategy",
        "buyers",
        "tickets",
        "sold",
        "oversold",
        "remaining",
        "ok",
        "violations",
        "elapsed_s",
    ):
        assert key in report
    assert report["strategy"] == "lock"
    assert report["sold"] == 4
    assert report["oversold"] == 0
    assert report["remaining"] == 0
    assert report["refused"] == 8
    assert 0 <= report["saw_but_refused"] <= 8  # how many looked in time is up to the OS
    assert report["ok"] is True
    assert report["violations"] == []
    assert dbfile.load(db_path).remaining == 0


def test_forced_race_exits_1_and_explains_itself(db_path: Path) -> None:
    result = invoke(
        "run",
        "--buyers",
        "3",
        "--tickets",
        "1",
        "--lockstep",
        "--json",
        "--db",
        str(db_path),
        *FAST,
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["sold"] == 3
    assert report["oversold"] == 2
    assert report["double_booked"] == 1
    assert report["lost_sales"] == 2
    assert report["ok"] is False
    kinds = [v["kind"] for v in report["violations"]]
    assert kinds == ["oversold", "double-booked", "lost-sale"]
    assert report["violations"][1]["explanation"] == (
        "Lost update: All 3 buyers (buyer-1, buyer-2 and buyer-3) read remaining=1 before "
        "any of them wrote it back; all were sold seat 1."
    )


def test_the_rich_report_shows_the_oversell_and_the_way_out(db_path: Path) -> None:
    result = invoke(
        "run", "--buyers", "2", "--tickets", "1", "--lockstep", "--db", str(db_path), *FAST
    )
    assert result.exit_code == 1
    assert "OVERSOLD: 2 sold for 1 ticket(s), 1 too many" in result.stdout
    assert "buyer-1 and buyer-2 both read remaining=1 before either wrote it back" in (
        " ".join(result.stdout.split())
    )
    assert "Run it again with --lock" in result.stdout


def test_the_rich_report_of_a_safe_run(db_path: Path) -> None:
    result = invoke("run", "--buyers", "3", "--tickets", "2", "--lock", "--db", str(db_path), *FAST)
    assert result.exit_code == 0
    assert "OK: sold 2 of 2 ticket(s) to 3 buyer(s); every invariant held" in result.stdout
    assert "strategy lock" in result.stdout


def test_history_is_written_as_json_lines_and_checks_the_same_offline(db_path: Path) -> None:
    history = db_path.parent / "run.jsonl"
    result = invoke(
        "run",
        "--buyers",
        "4",
        "--tickets",
        "2",
        "--lock",
        "--json",
        "--db",
        str(db_path),
        "--history",
        str(history),
        *FAST,
    )
    assert result.exit_code == 0
    head, *rows = [json.loads(line) for line in history.read_text().splitlines()]
    assert (head["type"], head["strategy"], head["buyers"]) == ("sale", "lock", 4)
    events = [from_json(row) for row in rows]
    assert sorted(e.buyer for e in events if e.step in OUTCOMES) == [1, 2, 3, 4]
    assert [e.t for e in events] == sorted(e.t for e in events)
    assert {row["type"] for row in rows} == {"invoke", "step", "ok", "fail"}
    again = invoke("check", "--history", str(history), "--db", str(db_path), "--json")
    assert again.exit_code == 0
    live, audited = json.loads(result.stdout), json.loads(again.stdout)
    assert audited == live


def test_db_comes_from_the_environment(db_path: Path) -> None:
    result = invoke(
        "run",
        "--buyers",
        "2",
        "--tickets",
        "5",
        "--lock",
        *FAST,
        env={"TICKETSIM_DB": str(db_path)},
    )
    assert result.exit_code == 0
    assert dbfile.load(db_path).remaining == 3


def test_keep_sells_from_the_db_as_it_is(db_path: Path) -> None:
    dbfile.write_atomic(db_path, dbfile.TicketDB.fresh(3))
    result = invoke(
        "run",
        "--buyers",
        "5",
        "--tickets",
        "50",
        "--lock",
        "--keep",
        "--json",
        "--db",
        str(db_path),
        *FAST,
    )
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert (report["tickets"], report["sold"], report["remaining"]) == (3, 3, 0)


def test_version_and_bare_command() -> None:
    assert invoke("--version").stdout.strip() == f"ticketsim {__version__}"
    bare = invoke()
    assert bare.exit_code == 0
    assert "run" in bare.stdout


def test_help_has_an_example() -> None:
    result = invoke("run", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "Usage: ticketsim run" in text
    assert "'ticketsim run --buyers 50 --lock' does not" in text


BAD_INPUT = [
    (["--buyers", "0"], "--buyers=0: choose from 1 to 1000"),
    (["--buyers", "-4"], "--buyers=-4"),
    (["--buyers", "abc"], "--buyers='abc'"),
    (["--buyers", "10000000"], "--buyers=10000000"),
    (["--tickets", "-1"], "--tickets=-1"),
    (["--delay", "-0.5"], "--delay=-0.5"),
    (["--delay", "soon"], "--delay='soon'"),
    (["--timeout", "0"], "--timeout=0.0"),
    (["--strategy", "mutex"], "--strategy='mutex'"),
    (["--start-method", "vfork"], "--start-method='vfork'"),
    (["--lock", "--strategy", "none"], "--lock and --strategy=none disagree"),
    (["--lockstep", "--lock"], "--lockstep=True"),
    (["--keep"], "--db="),
    (["--history", "/nonexistent-folder/h.jsonl"], "--history=/nonexistent-folder/h.jsonl"),
    (["--bogus"], "No such option: --bogus"),
    (["--workers", "asyncio", "--lock"], "--workers='asyncio': --strategy lock blocks"),
    (["--workers", "threads", "--pool", "2"], "--workers='threads': --pool drives buyer"),
    (["--strategy", "thread-lock"], "--workers='processes': --strategy thread-lock is made"),
    (["--workers", "fibers"], "--workers"),
]


@pytest.mark.parametrize(
    ("args", "message"), BAD_INPUT, ids=[" ".join(args) for args, _ in BAD_INPUT]
)
def test_bad_input_is_one_line_exit_2_and_leaves_the_db_alone(
    db_path: Path, args: list[str], message: str
) -> None:
    # A db made by hand, which a run would reset (with --keep, one that is no db): it
    # must stay exactly like this.
    made = '{"event": "Mine", "tickets": 3, "remaining": 3, "ledger": []}\n'
    db_path.write_text("not a db\n" if args == ["--keep"] else made)
    before = db_path.read_bytes()
    result = invoke("run", "--db", str(db_path), *args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ticketsim: error: ")
    assert message in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert db_path.read_bytes() == before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: None, "no such file"),
        (lambda p: p.write_text("[1, 2]"), "top level must be a JSON object"),
        (
            lambda p: p.write_text('{"event": "x", "tickets": 2, "remaining": 5, "ledger": []}'),
            "more than the 2 tickets",
        ),
    ],
    ids=["directory", "missing", "a-list", "remaining-above-tickets"],
)
def test_keep_with_an_unusable_db(db_path: Path, make: object, message: str) -> None:
    make(db_path)  # type: ignore[operator]
    snapshot = db_path.read_bytes() if db_path.is_file() else None
    result = invoke("run", "--keep", "--lock", "--db", str(db_path), *FAST)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    if snapshot is not None:
        assert db_path.read_bytes() == snapshot


def test_a_db_in_a_missing_folder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "tickets.json"
    result = invoke("run", "--lock", "--db", str(path), *FAST)
    assert result.exit_code == 2
    assert "does not exist; create it first" in result.stderr
    assert not path.parent.exists()


def test_strategies_table_as_json_matches_the_library() -> None:
    from ticketsim.engine.strategies import STRATEGIES

    result = invoke("strategies", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    # The strategies of buyer processes, then those of threads and tasks (--workers).
    worlds = [name.value for name in WORLDS]
    assert [r["strategy"] for r in rows] == [name.value for name in STRATEGIES] + worlds
    for row in rows:
        strategy = catalog.info(row["strategy"])
        assert row["safe"] is strategy.safe
        assert row["workers"] == [kind.value for kind in strategy.workers]
        for key in CLAIM_TITLES:
            # Threads' and tasks' claim only what their tests observe: safe or not.
            claimed = None if row["strategy"] in worlds else getattr(strategy.claims, key)
            assert row.get(key) is claimed
        assert (row["store"], row["retries"]) == (strategy.store.value, strategy.retries)
        assert row["how"]


@pytest.mark.parametrize("columns", ["80", "200"])
def test_strategies_table_for_people(columns: str) -> None:

    result = invoke("strategies", env={"COLUMNS": columns})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= int(columns)
    assert "…" not in result.stdout  # nothing cut short
    for word in ("separate", "programs", "killed", "holder", "durable"):
        assert word in result.stdout
    for name, strategy in CATALOG.items():
        # one row of yes/no per strategy, in the order of the claims
        row = next(line.split() for line in lines if line.split()[:1] == [name.value])
        flags = [strategy.safe, *(getattr(strategy.claims, key) for key in CLAIM_TITLES)]
        assert row[1:] == ["yes" if flag else "no" for flag in flags]
    assert " ".join(result.stdout.split()).count("locked read, then a locked write") == 1


@pytest.mark.parametrize("strategy", ["value", "array", "manager", "office", "filelock"])
def test_every_strategy_runs_from_the_command_line_on_a_pool(db_path: Path, strategy: str) -> None:
    result = invoke(
        "run",
        "--strategy",
        strategy,
        "--buyers",
        "9",
        "--tickets",
        "4",
        "--pool",
        "3",
        "--json",
        "--db",
        str(db_path),
        *FAST,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["sold"], report["remaining"], report["pool"]) == (4, 0, 3)


def test_an_in_memory_strategy_says_what_a_crash_would_cost(db_path: Path) -> None:
    result = invoke(
        "run", "--strategy", "value", "--buyers", "2", "--tickets", "1", "--db", str(db_path), *FAST
    )
    assert result.exit_code == 0
    assert "written once, when the sale ends" in " ".join(result.stdout.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pool", "0"], "--pool=0"),
        (["--pool", "-2"], "--pool=-2"),
        (["--pool", "2", "--lockstep", "--buyers", "3"], "--lockstep=True"),
        (["--strategy", "value", "--lockstep"], "--lockstep=True"),
    ],
    ids=["pool-0", "pool-negative", "lockstep-pool-too-small", "lockstep-guarded"],
)
def test_bad_pool_and_lockstep_settings(db_path: Path, args: list[str], message: str) -> None:
    result = invoke("run", "--db", str(db_path), *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert not db_path.exists()


def test_an_internal_error_is_one_line_unless_debug(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ticketsim.engine.runner

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the sky fell")

    monkeypatch.setattr(ticketsim.engine.runner, "run_sale", broken)
    result = invoke("run", "--lock", "--db", str(db_path), *FAST)
    assert result.exit_code == 70
    assert result.stderr.strip() == (
        "ticketsim: error: internal error: RuntimeError: the sky fell; this is a bug in "
        "ticketsim, run again with --debug for the traceback"
    )
    with pytest.raises(RuntimeError, match="the sky fell"):
        invoke("--debug", "run", "--lock", "--db", str(db_path), *FAST)


def test_reset_and_show_round_trip(db_path: Path) -> None:
    reset = invoke("reset", "--tickets", "7", "--event", "Opera", "--json", "--db", str(db_path))
    assert reset.exit_code == 0
    shown = invoke("show", "--json", "--db", str(db_path))
    assert shown.exit_code == 0
    data = json.loads(shown.stdout)
    from ticketsim.views.render import SHOW_NOTE

    # Issue 14: a consistent db comes with what the db alone cannot show.
    assert data == {**json.loads(reset.stdout), "problems": [], "note": SHOW_NOTE}
    assert (data["event"], data["tickets"], data["remaining"]) == ("Opera", 7, 7)
    people = invoke("show", "--db", str(db_path))
    assert "consistent" in people.stdout


def test_show_names_what_is_wrong_with_a_db(db_path: Path) -> None:
    db_path.write_text(
        '{"event": "x", "tickets": 2, "remaining": 2, "ledger": [\n'
        '{"buyer": "buyer-1", "seat": 1, "pid": 1, "time": 0}]}'
    )
    result = invoke("show", "--json", "--db", str(db_path))
    assert result.exit_code == 1
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["kind"] == "count-mismatch"
    missing = invoke("show", "--db", str(db_path.parent / "nope.json"))
    assert missing.exit_code == 2
    assert "no such file" in missing.stderr


def test_reset_refuses_bad_counts(db_path: Path) -> None:
    result = invoke("reset", "--tickets", "-3", "--db", str(db_path))
    assert result.exit_code == 2
    assert "--tickets=-3" in result.stderr
    assert not db_path.exists()


def test_the_live_view_ends_with_the_verdict_and_the_report(db_path: Path) -> None:
    result = invoke(
        "run", "--live", "--lock", "--buyers", "6", "--tickets", "2", "--db", str(db_path), *FAST
    )
    assert result.exit_code == 0
    assert "remaining 0" in result.stdout
    assert "sold 2" in result.stdout
    assert result.stdout.count("OK: sold 2 of 2 ticket(s) to 6 buyer(s)") >= 1
    # Not a terminal: the live frame ends its line before the report starts.
    assert "\nstrategy lock  6 buyers" in result.stdout


@pytest.mark.parametrize("command", ["hunt", "replay", "explore"])
def test_a_controlled_sale_too_big_is_refused_by_its_size(command: str, db_path: Path) -> None:
    extra = ["--schedule", "1r 1w"] if command == "replay" else []
    result = invoke(command, "--buyers", "201", *extra, "--db", str(db_path))
    assert result.exit_code == 2
    assert result.stderr.startswith("ticketsim: error: --buyers=201: ")
    assert "--schedule" not in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_live_and_json_do_not_mix(db_path: Path) -> None:
    result = invoke("run", "--live", "--json", "--db", str(db_path))
    assert result.exit_code == 2
    assert "give one of them" in result.stderr


def test_a_progress_bar_never_pollutes_json(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ticketsim.cli import output

    monkeypatch.setattr(output, "terminal", lambda: True)
    result = invoke(
        "run", "--lock", "--buyers", "5", "--tickets", "2", "--json", "--db", str(db_path), *FAST
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["sold"] == 2
    assert "selling" not in result.stdout + result.stderr
    shown = invoke("run", "--lock", "--buyers", "5", "--tickets", "2", "--db", str(db_path), *FAST)
    assert shown.exit_code == 0
    assert "OK: sold 2 of 2" in shown.stdout
    assert "selling" not in shown.stdout  # the bar goes to stderr, never into the report


def test_the_demo_runs_to_the_end(db_path: Path) -> None:
    result = invoke("demo", "--yes", "--db", str(db_path))
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    for title in (
        "1. The race",
        "2. The fix, and what it costs",
        "3. The Value misconception",
        "4. The seat map",
        "5. Two programs, one db",
        "6. A killed lock holder",
        "End of the lesson",
    ):
        assert title in text
    # Whether the two lock programs overlap is timing (tests/engine/test_claims.py forces it);
    # the file lock protects them whatever the timing.
    assert "two programs with lock:" in text
    assert "two programs with filelock: 1 buyer(s) told they got the last ticket" in text
    assert "STALLED" in text


def test_compare_json_has_a_row_per_strategy_with_the_promised_verdicts(db_path: Path) -> None:
    from ticketsim.engine.strategies import STRATEGIES
    from ticketsim.search.compare import VERDICTS

    plot = db_path.parent / "tradeoff.svg"
    result = invoke(
        "compare",
        "--buyers",
        "4",
        "--tickets",
        "2",
        "--delay",
        "0",
        "--json",
        "--start-method",
        "fork",
        "--seed",
        "3",
        "--plot",
        str(plot),
        "--db",
        str(db_path),
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["seed"] == 3
    rows = data["rows"]
    # Without --store, the db file's strategies (tests/cli/test_stores.py: a store's).
    assert [r["strategy"] for r in rows] == [
        name.value for name in STRATEGIES if CATALOG[name].store is StoreKind.FILE
    ]
    for row in rows:
        if CATALOG[row["strategy"]].safe:
            assert (row["verdict"], row["sold"], row["oversold"]) == ("OK", 2, 0)
        else:  # unforced, an unprotected sale may race in any way, or not at all
            assert row["verdict"] in VERDICTS
    assert plot.read_text().startswith("<svg") or "<svg" in plot.read_text()[:200]


def test_compare_csv_for_two_strategies(db_path: Path) -> None:
    result = invoke(
        "compare",
        "--strategy",
        "lock",
        "--strategy",
        "value",
        "--buyers",
        "3",
        "--tickets",
        "1",
        "--csv",
        "--delay",
        "0",
        "--db",
        str(db_path),
    )
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("strategy,safe,sold,oversold")
    assert [line.split(",")[0] for line in lines[1:]] == ["lock", "value"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "--csv"], "give one of them"),
        (["--plot", "chart.png"], "give a .svg path"),
        (["--strategy", "mutex"], "--strategy='mutex'"),
        (["--buyers", "0"], "--buyers=0"),
    ],
    ids=["json-and-csv", "png", "unknown-strategy", "no-buyers"],
)
def test_compare_refuses_bad_settings(db_path: Path, args: list[str], message: str) -> None:
    result = invoke("compare", "--db", str(db_path), *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert not db_path.exists()


def test_run_and_replay_draw_the_timeline(db_path: Path) -> None:
    page = db_path.parent / "race.html"
    result = invoke(
        "run",
        "--buyers",
        "3",
        "--tickets",
        "1",
        "--lockstep",
        "--timeline",
        str(page),
        "--show-timeline",
        "--db",
        str(db_path),
        *FAST,
    )
    assert result.exit_code == 1
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert "buyer-3" in result.stdout
    assert "race window" in result.stdout  # the terminal legend
    again = db_path.parent / "replay.html"
    replayed = invoke(
        "replay",
        "--schedule",
        "1r 2r 1w 2w",
        "--timeline",
        str(again),
        "--json",
        "--db",
        str(db_path),
    )
    assert replayed.exit_code == 1
    assert json.loads(replayed.stdout)["schedule"] == "1r 2r 1w 2w"  # no timeline in JSON
    assert 'class="lane' in again.read_text()
    bad = invoke("run", "--timeline", "/nonexistent-folder/t.html", "--db", str(db_path))
    assert bad.exit_code == 2
    assert "--timeline=/nonexistent-folder/t.html" in bad.stderr


def test_a_strategy_named_twice_names_the_option_the_user_gave(db_path: Path) -> None:
    # The library's setting is a list, ``strategies``; the option is --strategy, repeated.
    result = invoke("compare", "--strategy", "lock", "--strategy", "lock", "--db", str(db_path))
    assert result.exit_code == 2
    assert "--strategy='lock': is named twice" in result.stderr
    assert "--strategies" not in result.stderr
    assert not db_path.exists()
