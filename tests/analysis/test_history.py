"""History files: a saved sale loads back exactly as it ran, and a hostile file is one
clear :class:`HistoryError` (exit 2 from ``ticketsim check``), never a crash."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest
import sales
from typer.testing import CliRunner

from ticketsim.analysis import history
from ticketsim.analysis.checker import check
from ticketsim.analysis.report import build_report
from ticketsim.cli import app
from ticketsim.core.catalog import CATALOG
from ticketsim.core.db import Sale, TicketDB, write_atomic
from ticketsim.core.events import Event, Step
from ticketsim.core.result import RunResult
from ticketsim.core.settings import RunConfig
from ticketsim.engine.runner import run_sale
from ticketsim.errors import DbError

if TYPE_CHECKING:
    from typer.testing import Result

Head = dict[str, Any]
Rows = list[dict[str, Any]]
#: Builds the thing at ``path`` (a file, a folder, or nothing) from a valid header and rows.
Make = Callable[[Path, Head, Rows], None]

cli = CliRunner()
KINDS = {"invoke", "step", "ok", "fail", "info"}
#: RunConfig fields a history carries over (seed is compared with the drawn one).
CONFIG_FIELDS = ("strategy", "buyers", "tickets", "delay", "timeout", "pool", "lockstep")
RACE_KINDS = ["oversold", "double-booked", "lost-sale"]


def sale(db_path: Path, **options: Any) -> RunResult:
    return run_sale(
        RunConfig(db_path=db_path, delay=0.0, timeout=20.0, start_method="fork", **options)
    )


def invoke(*args: str) -> Result:
    return cli.invoke(app, list(args), catch_exceptions=False, prog_name="ticketsim")


class Saved(NamedTuple):
    """One small real lock sale, saved: the material every hand-built file starts from."""

    result: RunResult
    db_path: Path
    history_path: Path
    header: Head
    rows: Rows


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Saved:
    folder = tmp_path_factory.mktemp("saved")
    db_path = folder / "tickets.json"
    result = sale(db_path, strategy="lock", tickets=2, buyers=3)
    assert result.stalled is None
    path = folder / "sale.jsonl"
    history.save(path, result)
    rows = [event.to_json() for event in result.history]
    return Saved(result, db_path, path, history.header(result), rows)


# --- round trips ----------------------------------------------------------------------

ROUND_TRIPS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "lock": ({"strategy": "lock", "tickets": 2, "buyers": 3}, []),
    "forced-race": ({"strategy": "none", "lockstep": True, "tickets": 1, "buyers": 3}, RACE_KINDS),
    "controlled": (
        {"strategy": "none", "schedule": "1r 2r 1w 2w", "tickets": 1, "buyers": 2},
        RACE_KINDS,
    ),
}


@pytest.mark.parametrize(
    ("options", "kinds"), list(ROUND_TRIPS.values()), ids=list(ROUND_TRIPS.keys())
)
def test_a_saved_sale_loads_back_as_it_ran(
    db_path: Path, options: dict[str, Any], kinds: list[str]
) -> None:
    result = sale(db_path, **options)
    assert result.stalled is None
    assert sorted({e.buyer for e in result.history if e.step is Step.READY}) == list(
        range(1, options["buyers"] + 1)
    )
    path = db_path.parent / "sale.jsonl"
    history.save(path, result)
    assert list(path.parent.glob(".sale.jsonl.*")) == []  # no temp file left behind

    loaded = history.load(path, db_path)

    assert loaded.history == result.history
    assert loaded.initial == result.initial
    assert loaded.final == result.final
    assert loaded.final is not None
    assert loaded.final_error is None
    for name in CONFIG_FIELDS:
        assert getattr(loaded.config, name) == getattr(result.config, name), name
    assert loaded.config.seed == result.seed
    assert loaded.seed == result.seed
    assert loaded.config.db_path == db_path
    assert loaded.start_method == result.start_method == "fork"
    assert loaded.opened_at == result.opened_at
    assert loaded.elapsed_s == result.elapsed_s
    assert loaded.stalled == result.stalled
    assert loaded.schedule == result.schedule
    live = build_report(result).to_json()
    assert build_report(loaded).to_json() == live
    assert [v["kind"] for v in live["violations"]] == kinds


def test_a_controlled_run_keeps_its_schedule(db_path: Path) -> None:
    result = sale(db_path, strategy="none", schedule="1r 2r 1w 2w", buyers=2, tickets=1)
    path = db_path.parent / "sale.jsonl"
    history.save(path, result)
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[0])["schedule"] == (
        "1r 2r 1w 2w"
    )
    loaded = history.load(path, db_path)
    assert loaded.schedule == "1r 2r 1w 2w"
    assert loaded.config.schedule == "1r 2r 1w 2w"
    assert str(loaded.config.steps()) == "1r 2r 1w 2w"
    # Both buyers read before either wrote, in the order the schedule gave.
    reads = [e.buyer for e in loaded.history if e.step is Step.READ]
    writes = [e.buyer for e in loaded.history if e.step is Step.WRITE]
    assert (reads, writes) == ([1, 2], [1, 2])


def _lock_sale(db_path: Path, buyers: int) -> RunResult:
    """A safe lock sale of ``buyers`` for half as many tickets, built without running it:
    the critical sections one after another, the first half of the buyers buy."""
    tickets = buyers // 2
    events: list[Event] = []
    ledger: list[Sale] = []
    t = 100.0
    for number in range(1, buyers + 1):
        pid = 7000 + number % 4
        left = max(tickets - number + 1, 0)
        steps: list[tuple[Step, int | None, int | None]] = [
            (Step.READY, None, None),
            (Step.CHECK, tickets, None),
            (Step.WAIT, None, None),
            (Step.ENTER, None, None),
            (Step.READ, left, None),
        ]
        if left:
            steps.append((Step.WRITE, left - 1, number))
            ledger.append(Sale(f"buyer-{number}", number, pid, 1.7e9 + number))
        steps.append((Step.LEAVE, None, None))
        steps.append((Step.OK, None, number) if left else (Step.FAIL, None, None))
        for step, value, seat in steps:
            t += 1.25e-5
            events.append(Event(number, step, t, pid, value, seat))
    config = RunConfig(
        buyers=buyers, tickets=tickets, strategy="lock", db_path=db_path, delay=0.0, pool=4
    )
    return RunResult(
        config=config,
        start_method="fork",
        seed=1,
        initial=TicketDB.fresh(tickets),
        final=TicketDB(tickets=tickets, remaining=0, ledger=tuple(ledger)),
        final_error=None,
        history=tuple(events),
        opened_at=100.0,
        elapsed_s=t - 100.0,
    )


def test_a_history_of_thousands_of_events_round_trips(db_path: Path) -> None:
    """Written in pieces, read back line by line: nothing lost or reordered at a seam."""
    result = _lock_sale(db_path, buyers=3001)  # 22,507 events: several pieces
    assert result.final is not None
    write_atomic(db_path, result.final)
    path = db_path.parent / "big.jsonl"
    history.save(path, result)
    lines = [json.dumps(history.header(result))]
    lines += [json.dumps(event.to_json()) for event in result.history]
    assert path.read_text(encoding="utf-8") == "\n".join(lines) + "\n"
    loaded = history.load(path, db_path)
    assert loaded.history == result.history
    assert loaded.final == result.final
    assert check(loaded.initial, loaded.final, loaded.history, buyers=3001, safe=True) == []


def test_every_line_of_a_saved_history_is_a_typed_json_object(saved: Saved) -> None:
    text = saved.history_path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    lines = text.splitlines()
    assert all(line.strip() for line in lines)
    rows = [json.loads(line) for line in lines]
    assert all(isinstance(row, dict) for row in rows)
    head, *events = rows
    assert head["type"] == "sale"
    assert head["format"] == "ticketsim-history/2" == history.FORMAT
    assert head == history.header(saved.result)
    assert len(events) == len(saved.result.history)
    assert {row["type"] for row in events} <= KINDS
    # A lock sale of 2 tickets to 3 buyers: every buyer starts, two succeed, one is refused.
    assert {row["type"] for row in events} == {"invoke", "step", "ok", "fail"}
    assert [row["type"] for row in events] == [e.kind for e in saved.result.history]
    assert events == saved.rows


# --- hostile and corrupt files --------------------------------------------------------


def _jsonl(*items: object) -> bytes:
    """One line per item: bytes as they are, anything else as JSON."""
    return b"".join(
        (item if isinstance(item, bytes) else json.dumps(item).encode()) + b"\n" for item in items
    )


def _file(build: Callable[[Head, Rows], bytes]) -> Make:
    def make(path: Path, head: Head, rows: Rows) -> None:
        path.write_bytes(build(head, rows))

    return make


def _header(**changes: object) -> Make:
    return _file(lambda head, rows: _jsonl({**head, **changes}, *rows))


def _second_event(replacement: Callable[[dict[str, Any]], object]) -> Make:
    """The header, the first event, then the second event replaced: the bad line is 3."""
    return _file(lambda head, rows: _jsonl(head, rows[0], replacement(rows[1]), *rows[2:]))


def _event(**changes: object) -> Make:
    return _second_event(lambda row: {**row, **changes})


def _missing(path: Path, head: Head, rows: Rows) -> None:
    del path, head, rows


def _directory(path: Path, head: Head, rows: Rows) -> None:
    path.mkdir()


class Case(NamedTuple):
    id: str
    make: Make
    line: int
    message: str
    #: Patch history.MAX_LINE_BYTES to this (to test the limit without writing huge files).
    max_line: int | None = None


CASES = [
    Case("missing-file", _missing, 0, "no such file"),
    Case("directory", _directory, 0, "is a directory"),
    Case("empty", _file(lambda h, r: b""), 0, "is empty"),
    Case("whitespace-only", _file(lambda h, r: b"\n   \n\t\r\n\n"), 0, "is empty"),
    Case(
        "not-json-on-line-1",
        _file(lambda h, r: _jsonl(b"ticketsim history, honest", *r)),
        1,
        "not a JSON object",
    ),
    Case(
        "utf8-bom-before-the-header",
        _file(lambda h, r: b"\xef\xbb\xbf" + _jsonl(h, *r)),
        1,
        "not a JSON object",
    ),
    Case("header-is-a-list", _file(lambda h, r: _jsonl([h], *r)), 1, "must be a JSON object"),
    Case(
        "event-first",
        _file(lambda h, r: _jsonl(r[0], h, *r[1:])),
        1,
        "the first line must describe the sale (ticketsim-history/2)",
    ),
    Case(
        "wrong-format",
        _header(format="ticketsim-history/3"),
        1,
        "the first line must describe the sale (ticketsim-history/2)",
    ),
    Case(
        "no-format",
        _file(lambda h, r: _jsonl({k: v for k, v in h.items() if k != "format"}, *r)),
        1,
        "the first line must describe the sale",
    ),
    Case("buyers-0", _header(buyers=0), 1, "the sale's buyers=0: choose from 1 to"),
    Case("buyers-a-string", _header(buyers="3"), 1, "the sale's buyers='3': must be a whole"),
    Case("strategy-mutex", _header(strategy="mutex"), 1, "the sale's strategy='mutex'"),
    Case("delay-huge", _header(delay=10**400), 1, "must be a number of seconds"),
    Case("timeout-huge", _header(timeout=10**400), 1, "must be a number of seconds"),
    Case("schedule-a-number", _header(schedule=5), 1, "schedule=5: must be text"),
    Case("schedule-a-list", _header(schedule=["1r"]), 1, "must be text like '1r 2r 1w 2w'"),
    Case("seed-a-string", _header(seed="abc"), 1, "the sale's seed='abc'"),
    Case("seed-a-bool", _header(seed=True), 1, "the sale's seed=True"),
    Case("elapsed-negative", _header(elapsed_s=-1), 1, "neither can be negative"),
    Case("startup-negative", _header(startup_s=-0.5), 1, "neither can be negative"),
    Case("lockstep-a-string", _header(lockstep="yes"), 1, "lockstep='yes': must be true or"),
    Case("strategy-a-list", _header(strategy=["lock"]), 1, "the sale's settings do not fit"),
    Case("delay-negative", _header(delay=-1), 1, "the sale's delay=-1: choose at least 0"),
    Case("timeout-true", _header(timeout=True), 1, "the sale's timeout=True"),
    Case("pool-0", _header(pool=0), 1, "the sale's pool=0"),
    Case("start-method-vfork", _header(start_method="vfork"), 1, "start_method='vfork'"),
    Case("schedule-empty", _header(schedule=""), 1, "the sale's schedule=''"),
    Case(
        "schedule-beyond-the-buyers",
        _header(schedule="1r 9r"),
        1,
        "names buyer 9, but buyers=3",
    ),
    Case("initial-a-list", _header(initial=[]), 1, "the initial db: the top level must be"),
    Case("initial-missing", _header(initial=None), 1, "the initial db: the top level must be"),
    Case(
        "initial-remaining-a-string",
        _file(lambda h, r: _jsonl({**h, "initial": {**h["initial"], "remaining": "5"}}, *r)),
        1,
        'the initial db: remaining must be a whole number, got "5"',
    ),
    Case(
        "opened-at-huge-int",
        _header(opened_at=10**400),
        1,
        "opened_at, elapsed_s and startup_s must be numbers of seconds",
    ),
    Case(
        "opened-at-a-string",
        _header(opened_at="yesterday"),
        1,
        "opened_at, elapsed_s and startup_s must be numbers of seconds",
    ),
    Case(
        "elapsed-s-true",
        _header(elapsed_s=True),
        1,
        "opened_at, elapsed_s and startup_s must be numbers of seconds",
    ),
    Case(
        "opened-at-nan-literal",
        _header(opened_at=math.nan),
        1,
        "NaN is not a number JSON allows",
    ),
    Case("stalled-a-number", _header(stalled=3), 1, "stalled must be null or a string"),
    Case("event-a-list", _second_event(lambda row: [row]), 3, "must be a JSON object"),
    Case(
        "event-with-a-misspelt-field",
        _event(sear=1),
        3,
        "'sear' is not a field of an event; use type, buyer, step, t",
    ),
    Case("event-a-string", _second_event(lambda row: "ready"), 3, "must be a JSON object"),
    Case("unknown-step", _event(step="dance"), 3, "step='dance' is not one of the steps"),
    Case("no-step", _event(step=None), 3, "step=None is not one of the steps"),
    Case(
        "second-sale-header",
        _file(lambda h, r: _jsonl(h, h, *r)),
        2,
        "step=None is not one of the steps",
    ),
    Case("buyer-0", _event(buyer=0), 3, "buyer=0 must be a buyer number from 1"),
    Case("buyer-a-float", _event(buyer=1.0), 3, "buyer=1.0 must be a buyer number from 1"),
    Case("buyer-beyond-the-sale", _event(buyer=4), 3, "buyer=4 but the sale had 3"),
    Case("t-huge-int", _event(t=10**400), 3, "must be a number of seconds"),
    Case("t-a-string", _event(t="now"), 3, "t='now' must be a number of seconds"),
    Case("t-true", _event(t=True), 3, "t=True must be a number of seconds"),
    Case("pid-a-bool", _event(pid=True), 3, "pid=True must be a whole number"),
    Case("seat-a-float", _event(seat=1.5), 3, "seat=1.5 must be a whole number"),
    Case("value-a-string", _event(value="1"), 3, "value='1' must be a whole number"),
    Case("note-a-number", _event(note=5), 3, "note=5 must be a string"),
    Case(
        "nested-too-deeply",
        _second_event(lambda row: b"[" * 50_000),
        3,
        "nested too deeply",
    ),
    Case(
        "nested-too-deeply-on-line-1",
        _file(lambda h, r: _jsonl(b"[" * 50_000, *r)),
        1,
        "nested too deeply",
    ),
    Case(
        "line-too-long",
        _event(note="x" * 2000),
        3,
        "longer than 1024 bytes",
        max_line=1024,
    ),
    Case(
        "invalid-utf8",
        _second_event(
            lambda row: json.dumps({**row, "note": "@@"}).encode().replace(b"@@", b"\xff\xfe")
        ),
        3,
        "can't decode byte 0xff",
    ),
    # The second event is buyer 1's check, a step: its type cannot say it ended.
    Case("type-of-another-step", _event(type="ok"), 3, "type='ok' does not go with step="),
    Case("nan-literal", _event(t=math.nan), 3, "NaN is not a number JSON allows"),
    Case("infinity-literal", _event(t=math.inf), 3, "Infinity is not a number JSON allows"),
    Case(
        "too-large-for-a-float",
        _second_event(lambda row: json.dumps({**row, "t": 0.25}).replace("0.25", "1e400").encode()),
        3,
        "1e400 is too large a number to keep as written",
    ),
    Case(
        "minus-infinity-literal",
        _event(value=-math.inf),
        3,
        "-Infinity is not a number JSON allows",
    ),
    Case(
        "blank-lines-still-count",
        _file(lambda h, r: _jsonl(h, b"", b"   ", {**r[0], "step": "dance"}, *r[1:])),
        4,
        "step='dance' is not one of the steps",
    ),
]
CASE_BY_ID = {case.id: case for case in CASES}


def _build(case: Case, folder: Path, saved: Saved) -> Path:
    path = folder / "sale.jsonl"
    case.make(path, copy.deepcopy(saved.header), copy.deepcopy(saved.rows))
    return path


def test_the_hand_built_base_file_loads(saved: Saved, tmp_path: Path) -> None:
    """Each case below changes one thing in this file; unchanged, it loads."""
    path = tmp_path / "sale.jsonl"
    _header()(path, saved.header, saved.rows)
    assert path.read_bytes() == saved.history_path.read_bytes()
    loaded = history.load(path, saved.db_path)
    assert loaded.history == saved.result.history
    assert len(saved.rows) >= 3


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_hostile_history_is_one_clear_error(
    case: Case, saved: Saved, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if case.max_line is not None:
        monkeypatch.setattr(history, "MAX_LINE_BYTES", case.max_line)
    path = _build(case, tmp_path, saved)
    with pytest.raises(history.HistoryError) as caught:
        history.load(path, saved.db_path)
    error = caught.value
    assert error.path == str(path)
    assert error.line == case.line, error
    assert case.message in error.reason
    where = f"line {case.line}: " if case.line else ""
    assert str(error) == f"{path}: {where}{error.reason}"
    assert isinstance(error, ValueError)


def test_the_line_limit_is_not_hit_by_a_line_just_under_it(
    saved: Saved, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "MAX_LINE_BYTES", 1024)
    path = tmp_path / "sale.jsonl"
    # The header and events are far below 1024 bytes; a 600-byte note still fits.
    _event(note="x" * 600)(path, saved.header, saved.rows)
    loaded = history.load(path, saved.db_path)
    assert [e.note for e in loaded.history].count("x" * 600) == 1


# --- the check command ----------------------------------------------------------------

CLI_CASES = [
    "missing-file",
    "empty",
    "event-first",
    "strategy-mutex",
    "buyer-beyond-the-sale",
    "nested-too-deeply",
    "invalid-utf8",
]


def _db_copy(saved: Saved, folder: Path) -> Path:
    db = folder / "tickets.json"
    shutil.copyfile(saved.db_path, db)
    return db


@pytest.mark.parametrize("case_id", CLI_CASES, ids=CLI_CASES)
def test_check_with_a_corrupt_history_is_one_line_and_exit_2(
    case_id: str, saved: Saved, tmp_path: Path
) -> None:
    case = CASE_BY_ID[case_id]
    path = _build(case, tmp_path, saved)
    db = _db_copy(saved, tmp_path)
    before = db.read_bytes()
    result = invoke("check", "--history", str(path), "--db", str(db))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"ticketsim: error: --history={path}: ")
    assert case.message in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert db.read_bytes() == before


def test_check_without_the_db_names_it(saved: Saved, tmp_path: Path) -> None:
    missing = tmp_path / "gone.json"
    result = invoke("check", "--history", str(saved.history_path), "--db", str(missing))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"ticketsim: error: --db={missing}: ")
    assert "no such file" in lines[0]
    assert "Traceback" not in result.output
    assert not missing.exists()


def test_check_of_a_valid_history_against_a_sound_db_is_ok(saved: Saved, tmp_path: Path) -> None:
    db = _db_copy(saved, tmp_path)
    result = invoke("check", "--history", str(saved.history_path), "--db", str(db), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["violations"] == []
    assert (report["sold"], report["refused"], report["remaining"]) == (2, 1, 0)


def test_check_against_a_db_corrupted_afterwards_reports_it_unreadable(
    saved: Saved, tmp_path: Path
) -> None:
    db = _db_copy(saved, tmp_path)
    db.write_text("{", encoding="utf-8")
    result = invoke("check", "--history", str(saved.history_path), "--db", str(db), "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert [v["kind"] for v in report["violations"]] == ["unreadable-db"]
    assert "not valid JSON" in report["violations"][0]["explanation"]
    assert report["remaining"] is None
    assert report["ok"] is False
    assert report["exit_code"] == 1


def test_a_saved_forced_race_checks_the_same_as_it_ran(db_path: Path) -> None:
    result = sale(db_path, strategy="none", lockstep=True, tickets=1, buyers=3)
    live = build_report(result).to_json()
    assert live["exit_code"] == 1
    path = db_path.parent / "race.jsonl"
    history.save(path, result)
    checked = invoke("check", "--history", str(path), "--db", str(db_path), "--json")
    assert checked.exit_code == 1, checked.output
    audited = json.loads(checked.stdout)
    assert audited["violations"] == live["violations"]
    assert [v["kind"] for v in audited["violations"]] == RACE_KINDS
    assert audited == live


def test_a_history_of_the_first_format_reads_back_with_its_causes(tmp_path: Path) -> None:
    """Format 1 said why an event had no outcome only in its note; such a file still
    checks as it did: a failed write is a failed write, a planned kill is planned."""
    db_path = tmp_path / "t.json"
    result = _lock_sale(db_path, 4)
    killed = Event(3, Step.LOST, 200.0, 7003, note="killed on purpose: SIGKILLed before it")
    failed = Event(4, Step.ERROR, 201.0, 7000, note=f"DbWriteError: {db_path}: disk full")
    other = Event(2, Step.ERROR, 202.0, 7002, note="the sale did not open within 9 s")
    kept = [e for e in result.history if e.buyer in (1, 2) and e.step not in (Step.OK, Step.FAIL)]
    result = dataclasses.replace(result, history=(*kept, killed, failed, other))
    write_atomic(db_path, result.final or result.initial)
    path = tmp_path / "old.jsonl"
    lines = history.dumps(result).splitlines()
    head = json.loads(lines[0])
    assert head["format"] == history.FORMAT
    head["format"] = "ticketsim-history/1"
    path.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    loaded = history.load(path, db_path)
    errors = {e.buyer: e.error for e in loaded.history if e.step in (Step.LOST, Step.ERROR)}
    assert errors == {3: "killed-on-purpose", 4: "DbWriteError", 2: None}
    report = build_report(loaded)
    assert report.killed_on_purpose == ("buyer-3",)
    assert report.io_error == "disk full"
    # The same lines under the current format mean what their fields say, nothing more.
    head["format"] = history.FORMAT
    path.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    assert all(e.error is None for e in history.load(path, db_path).history)


_EVERY_SALE = [(name.value, "processes") for name in CATALOG] + [
    *((name, "threads") for name in ("none", "lock", "thread-office")),
    *((name, "asyncio") for name in ("task-none", "task-lock", "task-office")),
]


@pytest.mark.parametrize(("strategy", "workers"), _EVERY_SALE, ids=str)
def test_the_db_of_every_kind_of_sale_is_the_one_its_history_explains(
    db_path: Path, strategy: str, workers: str
) -> None:
    """Each sale's own db is taken for its history's (the ledger's writers are the
    history's buyers and processes), whoever wrote its sales (the office, a pool)."""
    result = sales.sale(
        db_path, strategy=strategy, tickets=2, buyers=3, worker_kind=workers, delay=0.001
    )
    path = db_path.parent / "sale.jsonl"
    history.save(path, result)
    loaded = history.load(path, db_path)
    assert build_report(loaded).to_json() == build_report(result).to_json()


def test_a_db_reset_and_sold_from_since_is_not_the_historys(db_path: Path) -> None:
    """Its new sales are all by processes the history never saw: the history's lost
    nothing, and 'check' said LOST UPDATE, exit 1."""
    first = sale(db_path, strategy="lock", tickets=3, buyers=3)
    path = db_path.parent / "sale.jsonl"
    history.save(path, first)
    sale(db_path, strategy="lock", tickets=3, buyers=3)  # resets the db, sells it again
    with pytest.raises(DbError, match="none of the 3 sale"):
        history.load(path, db_path)
