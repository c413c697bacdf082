"""Histories from anywhere: a history another program wrote, naming its own system,
checked by ``ticketsim check`` and read by the public ``ticketsim.history``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sales import script

from ticketsim import history
from ticketsim.analysis.checker import Kind
from ticketsim.analysis.report import build_report
from ticketsim.core.exits import ExitCode

CHECKOUT = Path(__file__).parent / "foreign" / "checkout.py"


def _written(tmp_path: Path, *flags: str) -> Path:
    """A history written by a script that does not import ticketsim."""
    out = tmp_path / "checkout.jsonl"
    subprocess.run([sys.executable, str(CHECKOUT), str(out), *flags], check=True, timeout=60)
    code = CHECKOUT.read_text(encoding="utf-8")
    assert "import ticketsim" not in code
    assert "from ticketsim" not in code
    return out


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [script(), "check", "--history", str(path), "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_racy_checkout_of_someone_elses_is_caught(tmp_path: Path) -> None:
    done = _check(_written(tmp_path, "--racy"))
    assert done.returncode == ExitCode.VIOLATED, done.stderr
    report = json.loads(done.stdout)
    assert report["system"] == "a checkout"
    assert report["oversold"] == 2
    assert {v["kind"] for v in report["violations"]} >= {"oversold", "double-booked"}
    assert any(v["explanation"].startswith("Lost update") for v in report["violations"])


def test_a_guarded_checkout_of_someone_elses_passes(tmp_path: Path) -> None:
    done = _check(_written(tmp_path))
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["sold"] == 2
    assert report["ok"]


def test_the_library_reads_and_writes_it_back(tmp_path: Path) -> None:
    path = _written(tmp_path, "--racy")
    result = history.load(path)
    assert result.system == "a checkout"
    assert result.safe
    again = tmp_path / "again.jsonl"
    again.write_text(history.dump(result), encoding="utf-8")
    reread = history.load(again)
    assert reread.history == result.history
    assert reread.final == result.final
    assert build_report(reread).violations == build_report(result).violations


def test_without_its_final_state_only_the_history_is_checked(tmp_path: Path) -> None:
    path = _written(tmp_path, "--racy")
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")  # no final line
    report = build_report(history.load(path))
    assert {v.kind for v in report.violations} == {Kind.OVERSOLD, Kind.DOUBLE_BOOKED}
    assert report.remaining is None


def test_a_final_line_with_a_field_it_does_not_have_is_refused(tmp_path: Path) -> None:
    """It was taken, the extra field dropped; the schema allows none."""
    path = _written(tmp_path, "--racy")
    lines = path.read_text(encoding="utf-8").splitlines()
    final = json.loads(lines[-1])
    assert final["type"] == "final"
    lines[-1] = json.dumps({**final, "remaining": 0})
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = _check(path)
    assert done.returncode == ExitCode.BAD_INPUT, done.stdout + done.stderr
    assert f"line {len(lines)}: 'remaining' is not a field of the final line" in done.stderr


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"system": ""}, "system=''"),
        ({"system": "x" * 101}, "1 to 100 characters"),
        ({"safe": "yes"}, "safe='yes'"),
        ({"strategy": "lock"}, "not both"),
        ({"buyers": 2}, "buyer=3 but the sale had 2"),
    ],
)
def test_a_bad_history_of_someone_elses_is_one_line(
    tmp_path: Path, change: dict[str, object], words: str
) -> None:
    path = _written(tmp_path, "--racy")
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] = json.dumps({**json.loads(lines[0]), **change})
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = _check(path)
    assert done.returncode == ExitCode.BAD_INPUT, done.stdout
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert words in done.stderr
    assert "Traceback" not in done.stderr


def test_the_schema_says_what_the_reader_reads() -> None:
    """docs/history.schema.json and the code that reads histories name the same things."""
    from ticketsim.core import db as dbfile
    from ticketsim.core.events import Event, Step

    root = Path(__file__).parents[2]
    schema = json.loads((root / "docs" / "history.schema.json").read_text(encoding="utf-8"))
    defs = schema["$defs"]
    assert defs["event"]["properties"]["step"]["enum"] == [step.value for step in Step]
    fields = set(Event.__dataclass_fields__) | {"type"}
    assert set(defs["event"]["properties"]) == fields
    assert set(defs["db"]["required"]) == dbfile._KEYS - {"format"}
    for line in _written_lines():
        kind = str(line["type"]) if line["type"] in ("sale", "final") else "event"
        assert set(defs[kind]["required"]) <= set(line), line
        assert set(line) <= set(defs[kind]["properties"]), line


def _written_lines() -> list[dict[str, object]]:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = _written(Path(folder), "--racy")
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _system_history(tmp_path: Path, buyers: int, tickets: int, *events: dict[str, object]) -> Path:
    """A history of a system's, its buyers' events as given (each gets ``pid`` 7 and
    ``type`` from its step), and a final db holding the sales its ``ok`` events claim."""
    head = {"type": "sale", "format": "ticketsim-history/2", "system": "shop",
            "buyers": buyers, "tickets": tickets, "safe": True}  # fmt: skip
    kinds = {"ready": "invoke", "ok": "ok", "fail": "fail", "error": "info", "lost": "info"}
    rows = [{"type": kinds.get(str(e["step"]), "step"), "pid": 7, **e} for e in events]
    sold = [
        {"buyer": f"buyer-{e['buyer']}", "seat": e["seat"], "pid": 7, "time": 1.0}
        for e in events
        if e["step"] == "ok"
    ]
    final = {"format": "ticketsim/1", "event": "Gig", "tickets": tickets,
             "remaining": tickets - len(sold), "ledger": sold}  # fmt: skip
    path = tmp_path / "shop.jsonl"
    lines = [head, *rows, {"type": "final", "db": final}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def test_a_buyer_cut_off_on_purpose_is_owed_nothing_whatever_its_ending_says(
    tmp_path: Path,
) -> None:
    """Its unknown ending, an ``error`` or a ``lost``, is a planned fault: the sale is OK
    for the buyers left, and the buyer is named as cut off, never as killed too."""
    for ending in ("error", "lost"):
        path = _system_history(
            tmp_path, 2, 2,
            {"buyer": 1, "step": "ready", "t": 1.0}, {"buyer": 2, "step": "ready", "t": 1.0},
            {"buyer": 1, "step": "ok", "t": 2.0, "seat": 1},
            {"buyer": 2, "step": ending, "t": 2.0, "error": "cut-off-on-purpose"},
        )  # fmt: skip
        report = build_report(history.load(path))
        assert report.ok, (ending, report.verdict)
        assert report.cut_off == ("buyer-2",)
        assert report.killed_on_purpose == ()


def test_a_buyer_told_sold_out_is_never_a_planned_fault(tmp_path: Path) -> None:
    """A ``fail`` carries an outcome: whatever its ``error`` says, a buyer told "sold out"
    while its ticket was left is undersold."""
    path = _system_history(
        tmp_path, 1, 1,
        {"buyer": 1, "step": "ready", "t": 1.0},
        {"buyer": 1, "step": "fail", "t": 2.0, "error": "cut-off-on-purpose"},
    )  # fmt: skip
    report = build_report(history.load(path))
    assert report.exit_code == ExitCode.VIOLATED, report.verdict
    assert Kind.UNDERSOLD in {v.kind for v in report.violations}
    assert report.cut_off == ()


_READY_1 = {"buyer": 1, "step": "ready", "t": 1.0}
_OK_1 = {"buyer": 1, "step": "ok", "t": 2.0, "seat": 1}


@pytest.mark.parametrize(
    ("events", "words"),
    [
        ((_READY_1, _OK_1, {"buyer": 1, "step": "fail", "t": 3.0}), "ends a second time"),
        ((_READY_1, _OK_1, _OK_1), "ends a second time"),
        ((_READY_1, _OK_1, {"buyer": 1, "step": "read", "t": 3.0}), "comes after its end"),
        ((_OK_1,), "was never invoked"),
    ],
    ids=["two-outcomes", "a-line-twice", "a-step-after-its-end", "never-invoked"],
)
def test_a_history_whose_buyer_is_not_one_purchase_is_refused(
    tmp_path: Path, events: tuple[dict[str, object], ...], words: str
) -> None:
    """Which of a buyer's two outcomes would a verdict believe? Such a history was
    called OK (or oversold, for a line given twice): it is refused, naming its line."""
    done = _check(_system_history(tmp_path, 1, 1, *events))
    assert done.returncode == ExitCode.BAD_INPUT, done.stdout + done.stderr
    assert words in done.stderr
    assert ": line " in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_history_whose_initial_or_final_db_cannot_be_its_sales_is_refused(
    tmp_path: Path,
) -> None:
    """An initial db with more left than it has tickets made an oversale look like two
    sales of two; a final db with tickets the sale never had, or without a sale the
    sale opened with, is not this sale's."""
    path = _system_history(
        tmp_path, 2, 1,
        {"buyer": 1, "step": "ready", "t": 1.0}, {"buyer": 2, "step": "ready", "t": 1.0},
        _OK_1, {"buyer": 2, "step": "ok", "t": 2.0, "seat": 2},
    )  # fmt: skip
    lines = path.read_text(encoding="utf-8").splitlines()
    head = json.loads(lines[0])
    variants = {
        "remaining 2 of 1": {"tickets": 1, "remaining": 2},
        "tickets=3, the sale tickets=1": {"tickets": 3, "remaining": 3},
    }
    for words, counts in variants.items():
        initial = {"format": "ticketsim/1", "event": "Gig", "ledger": [], **counts}
        path.write_text("\n".join([json.dumps({**head, "initial": initial}), *lines[1:]]) + "\n")
        done = _check(path)
        assert done.returncode == ExitCode.BAD_INPUT, (words, done.stdout + done.stderr)
        assert "the initial db" in done.stderr, done.stderr
    final = json.loads(lines[-1])
    final["db"]["tickets"] = 5
    path.write_text("\n".join([*lines[:-1], json.dumps(final)]) + "\n", encoding="utf-8")
    done = _check(path)
    assert done.returncode == ExitCode.BAD_INPUT, done.stdout + done.stderr
    assert "the final db is not this sale's: it has tickets=5" in done.stderr


def test_a_seat_the_sale_does_not_have_is_a_violation_even_without_a_final_db(
    tmp_path: Path,
) -> None:
    path = _system_history(tmp_path, 1, 1, _READY_1, {**_OK_1, "seat": 99})
    lines = path.read_text(encoding="utf-8").splitlines()[:-1]  # no final state given
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = build_report(history.load(path))
    assert report.exit_code == ExitCode.VIOLATED, report.verdict
    assert [v.kind for v in report.violations] == [Kind.SEAT_CONFLICT]
    assert "buyer-1 was told it got seat 99, outside seats 1-1" in report.violations[0].explanation
    # There is no ledger to blame: the verdict said "the ledger holds a seat twice".
    assert report.verdict == "VIOLATED: a seat was sold twice, or a sale named no seat on sale"


def test_a_sale_made_in_the_name_of_a_buyer_told_sold_out_is_not_one_made_elsewhere(
    tmp_path: Path,
) -> None:
    """Sales the history does not report may be another program's, and count as sold;
    but not one in the very name and process of a buyer the sale told "sold out"."""
    path = _system_history(tmp_path, 1, 1, _READY_1, {"buyer": 1, "step": "fail", "t": 2.0})
    lines = path.read_text(encoding="utf-8").splitlines()
    final = json.loads(lines[-1])
    final["db"] |= {
        "remaining": 0,
        "ledger": [{"buyer": "buyer-1", "seat": 1, "pid": 7, "time": 1.0}],
    }
    path.write_text("\n".join([*lines[:-1], json.dumps(final)]) + "\n", encoding="utf-8")
    report = build_report(history.load(path))
    assert report.exit_code == ExitCode.VIOLATED, report.verdict
    assert Kind.UNDERSOLD in {v.kind for v in report.violations}


@pytest.mark.parametrize(
    ("text", "words"),
    [("", "is empty"), ('{"type": "step"}\n', "line 1: the first line must describe the sale")],
    ids=["empty", "no-sale-line"],
)
def test_check_names_what_is_wrong_with_the_history_before_looking_for_a_db(
    tmp_path: Path, text: str, words: str
) -> None:
    """No db was given, and none is needed until the history says it is ticketsim's:
    a history that says nothing is refused for what it is, not for a missing db."""
    path = tmp_path / "h.jsonl"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [script(), "check", "--history", str(path)],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == ExitCode.BAD_INPUT, done.stderr
    assert f"--history={path}: {words}" in done.stderr
    assert "--db" not in done.stderr


def test_a_final_ledger_whose_sales_no_event_names_is_not_the_sales(tmp_path: Path) -> None:
    """A final ledger whose pids are not the ones the events gave the buyers holds
    none of their sales: the checker called that a certain LOST UPDATE (exit 1)."""
    write = {"buyer": 1, "step": "write", "t": 1.5, "seat": 1}
    path = _system_history(tmp_path, 1, 1, _READY_1, write, _OK_1)
    lines = path.read_text(encoding="utf-8").splitlines()
    final = json.loads(lines[-1])
    final["db"]["ledger"][0]["pid"] = 4242  # the OS's pid; the events said 7
    path.write_text("\n".join([*lines[:-1], json.dumps(final)]) + "\n", encoding="utf-8")
    done = _check(path)
    assert done.returncode == ExitCode.BAD_INPUT, done.stdout + done.stderr
    assert "the final db is not this sale's: none of the 1 sale(s)" in done.stderr
