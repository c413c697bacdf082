"""ticketsim.search.compare: the same sale under every strategy, and its table, CSV and chart."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from rich.console import Console
from rich.text import Text

import ticketsim.core._files
from ticketsim.analysis.checker import Kind, Violation
from ticketsim.analysis.report import Report
from ticketsim.core import _owned
from ticketsim.core.catalog import CATALOG
from ticketsim.core.names import StoreKind
from ticketsim.core.paths import SVG_MARK
from ticketsim.core.settings import RunConfig
from ticketsim.engine.runner import run_sale
from ticketsim.engine.strategies import STRATEGIES, StrategyName
from ticketsim.errors import ConfigError
from ticketsim.search import compare as comparing
from ticketsim.search.compare import COLUMNS, VERDICTS, Row, compare
from ticketsim.servers import _folder
from ticketsim.views.compare import Comparison, svg_chart, table_view, to_csv, write_plot

if TYPE_CHECKING:
    from ticketsim.core.result import RunResult

SEED = 20240611
BUYERS, TICKETS = 4, 2
#: The db file's: each oversells the same way under lockstep (the databases' lessons
#: differ, and are forced one by one in tests/engine/test_databases.py).
UNSAFE = [
    name.value
    for name, strategy in CATALOG.items()
    if not strategy.safe and strategy.store is StoreKind.FILE
]
SVG = "{http://www.w3.org/2000/svg}"


def _base(db_path: Path, **changes: object) -> RunConfig:
    config = RunConfig(
        buyers=BUYERS,
        tickets=TICKETS,
        delay=0.0,
        seed=SEED,
        start_method="fork",
        db_path=db_path,
        timeout=20.0,
    )
    return replace(config, **changes)  # type: ignore[arg-type]


def _row(strategy: str, **changes: object) -> Row:
    row = Row(
        strategy=strategy,
        safe=True,
        sold=2,
        oversold=0,
        double_booked=0,
        lost_sales=0,
        torn_reads=0,
        elapsed_s=0.012345,
        throughput=162.008,
        verdict="OK",
        ok=True,
        exit_code=0,
    )
    return replace(row, **changes)  # type: ignore[arg-type]


def _rows() -> list[Row]:
    """Hand-built rows with awkward values: exact floats, a name XML and CSV must escape."""
    return [
        _row("none", safe=False, sold=4, oversold=2, double_booked=1, lost_sales=3,
             torn_reads=1, throughput=1234.5678, verdict="OVERSOLD", ok=False),
        _row("lock", throughput=0.1 + 0.2),
        _row('<b>&"odd", name', oversold=7, throughput=0.0, verdict="VIOLATED", ok=False),
        _row("array-unlocked", safe=False, sold=3, oversold=1, throughput=5e6,
             verdict="OVERSOLD", ok=False),
    ]  # fmt: skip


# -- compare: real sales ------------------------------------------------------------


def _server_folders_of_this_process() -> set[Path]:
    """The folders of the private servers this process started and has not removed (the
    session's own, and any a comparison left): other processes' are not this test's."""
    return {
        folder
        for root in _owned.roots()
        for folder in Path(root).glob(f"{_folder.PREFIX}*.{os.getpid()}.*")
    }


@pytest.mark.parametrize(
    ("named", "lockstep", "ok"),
    [
        # lockstep forces the race (a safe strategy refuses it): the unsafe ones oversell.
        (["pg-naive", "pg-write-skew", "redis-naive", "sqlite-naive"], True, False),
        (["pg-update", "pg-for-update", "redis-lua", "sqlite-update"], False, True),
    ],
)
def test_database_strategies_named_share_one_private_server_each(
    db_path: Path, named: list[str], lockstep: bool, ok: bool
) -> None:
    before = _server_folders_of_this_process()
    rows = compare(_base(db_path, lockstep=lockstep), named)
    assert [row.strategy for row in rows] == named
    assert [row.ok for row in rows] == [ok] * len(named)
    assert _server_folders_of_this_process() == before  # the servers went with the comparison


def test_every_strategy_runs_in_order_and_the_safe_ones_keep_their_promise(
    db_path: Path,
) -> None:
    started: list[str] = []
    rows = compare(_base(db_path), progress=started.append)
    on_file = [info for info in CATALOG.values() if info.store is StoreKind.FILE]
    names = [info.name.value for info in on_file]  # no --store: the db file's strategies
    assert [row.strategy for row in rows] == names
    assert started == names
    for row, strategy in zip(rows, on_file, strict=True):
        assert row.safe is strategy.safe
        assert row.verdict in VERDICTS
        assert row.ok is (row.verdict == "OK")
        assert 0 <= row.sold <= BUYERS
        assert row.elapsed_s >= 0
        assert row.throughput >= 0
        if strategy.safe:
            assert row.ok, row
            assert row.verdict == "OK"
            assert row.sold == min(TICKETS, BUYERS)
            assert (row.oversold, row.double_booked, row.lost_sales) == (0, 0, 0)
            assert row.throughput > 0
        else:
            # Without a forced interleaving, whether they oversell, double-book or lose a
            # sale is a matter of timing; but the sale runs to its end.
            assert row.verdict not in {"STALLED", "INCOMPLETE", "DB WRITE FAILED"}
    # The real rows go through every view.
    assert len(to_csv(rows).splitlines()) == len(rows) + 1
    chart = ET.fromstring(svg_chart(rows, "all of them"))
    assert len(chart.findall(f".//{SVG}rect[@class='bar oversold']")) == len(rows)


def test_lockstep_makes_every_unsafe_strategy_oversell(db_path: Path) -> None:
    rows = compare(_base(db_path, lockstep=True), UNSAFE)
    assert [row.strategy for row in rows] == ["none", "value-unlocked", "array-unlocked"]
    for row in rows:
        assert row.safe is False
        assert row.sold == BUYERS
        assert row.oversold == BUYERS - TICKETS
        assert row.verdict == "OVERSOLD"
        assert row.ok is False


def test_named_strategies_run_alone_in_the_order_given(db_path: Path) -> None:
    started: list[str] = []
    rows = compare(_base(db_path), ["office", StrategyName.LOCK], started.append)
    assert [row.strategy for row in rows] == ["office", "lock"]
    assert started == ["office", "lock"]
    assert all(type(row.strategy) is str for row in rows)
    assert all(row.ok and row.sold == TICKETS for row in rows)


def test_every_run_gets_the_same_scenario_and_one_shared_seed(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs: list[RunConfig] = []

    def recording(config: RunConfig, **options: Any) -> RunResult:
        configs.append(config)
        return run_sale(config, **options)

    monkeypatch.setattr(comparing, "run_sale", recording)
    base = _base(db_path, seed=None, strategy="office", pool=2)
    compare(base, ["lock", "value"])
    assert [c.strategy for c in configs] == ["lock", "value"]
    seeds = {c.seed for c in configs}
    assert len(seeds) == 1
    assert None not in seeds
    assert all(replace(c, strategy="office", seed=None) == base for c in configs)


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (["lock", "nope"], "strategy='nope'"),
        (["semaphore", "lock", "semaphore"], "strategies='semaphore'.*named twice"),
        ([], "name at least one strategy"),
    ],
)
def test_a_bad_list_of_strategies_is_refused_before_anything_runs(
    db_path: Path, names: list[str], match: str
) -> None:
    started: list[str] = []
    with pytest.raises(ConfigError, match=match):
        compare(_base(db_path), names, started.append)
    assert started == []
    assert not db_path.exists()


@pytest.mark.parametrize(
    ("changes", "names", "match"),
    [
        # lockstep forces the race, and a safe strategy refuses it: all strategies include some.
        ({"lockstep": True}, None, "lockstep=True"),
        ({"lockstep": True}, ["none", "lock"], "strategy 'lock' lets one buyer read at a time"),
        ({"keep": True}, None, "keep=True.*same fresh tickets"),
        # A schedule in which buyer 2 reads while buyer 1 is inside: infeasible under a lock.
        ({"schedule": "1r 2r 1w 2w"}, ["none", "filelock"], "infeasible under filelock"),
    ],
)
def test_settings_a_strategy_refuses_stop_the_comparison_before_it_starts(
    db_path: Path, changes: dict[str, object], names: list[str] | None, match: str
) -> None:
    started: list[str] = []
    with pytest.raises(ConfigError, match=match):
        compare(_base(db_path, **changes), names, started.append)
    assert started == []
    assert not db_path.exists()


# -- Row ----------------------------------------------------------------------------


def _report(**changes: object) -> Report:
    report = Report(
        strategy="lock",
        safe=True,
        buyers=4,
        tickets=2,
        sold=2,
        refused=2,
        saw_but_refused=1,
        unfinished=0,
        remaining=0,
        ledger_sales=2,
        oversold=0,
        double_booked=0,
        lost_sales=0,
        torn_reads=0,
        elapsed_s=0.123456789,
        delay=0.0,
        seed=1,
        start_method="fork",
        db="tickets.json",
        stalled=None,
        violations=(),
    )
    return replace(report, **changes)  # type: ignore[arg-type]


_LOST = Violation(Kind.LOST_SALE, "buyer-1 was told yes: no ledger entry", ("buyer-1",))
_OVER = Violation(Kind.OVERSOLD, "3 sold for 2 tickets")


@pytest.mark.parametrize(
    ("changes", "verdict"),
    [
        ({}, "OK"),
        ({"sold": 3, "oversold": 1, "violations": (_OVER,)}, "OVERSOLD"),
        ({"lost_sales": 1, "violations": (_LOST,)}, "LOST UPDATE"),  # issue 14: its own word
        ({"stalled": "no progress for 20.0 s: 1 buyer(s) still owed 'ready'"}, "STALLED"),
        ({"io_error": "[Errno 28] No space left on device: 'x'"}, "DB WRITE FAILED"),
    ],
)
def test_a_row_carries_the_verdict_word_and_the_reports_figures(
    changes: dict[str, object], verdict: str
) -> None:
    report = _report(**changes)
    row = Row.from_report(report)
    assert row.verdict == verdict
    assert report.verdict.startswith(f"{verdict}: ")
    assert row.ok is report.ok
    for name in ("strategy", "safe", "sold", "oversold", "double_booked", "lost_sales"):
        assert getattr(row, name) == getattr(report, name)
    assert row.torn_reads == report.torn_reads
    # As `ticketsim run --json` gives them.
    assert row.elapsed_s == report.to_json()["elapsed_s"] == 0.123457
    assert row.throughput == report.to_json()["throughput"] == round(report.throughput, 3)


def test_row_to_json_is_plain_data_with_the_csv_columns() -> None:
    for row in _rows():
        data = row.to_json()
        assert tuple(data) == COLUMNS
        assert json.loads(json.dumps(data)) == data
        assert Row(**data) == row


# -- CSV ----------------------------------------------------------------------------


def test_csv_round_trips_through_a_dict_reader() -> None:
    rows = _rows()
    text = to_csv(rows)
    assert text.startswith(",".join(COLUMNS) + "\n")
    assert text.endswith("\n")
    assert "\r" not in text
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    records = list(reader)
    assert len(records) == len(rows)
    for record, row in zip(records, rows, strict=True):
        assert record["strategy"] == row.strategy
        assert record["verdict"] == row.verdict
        for name in ("safe", "ok"):
            assert record[name] == ("true" if getattr(row, name) else "false")
        for name in ("sold", "oversold", "double_booked", "lost_sales", "torn_reads"):
            assert int(record[name]) == getattr(row, name)
        assert float(record["elapsed_s"]) == row.elapsed_s
        assert float(record["throughput"]) == row.throughput  # exactly: 0.1 + 0.2 too


def test_csv_of_no_rows_is_the_header() -> None:
    assert to_csv([]) == ",".join(COLUMNS) + "\n"


# -- the chart ----------------------------------------------------------------------


def _bars(chart: ET.Element, measure: str) -> list[ET.Element]:
    return chart.findall(f".//{SVG}rect[@class='bar {measure}']")


def _title(element: ET.Element) -> str:
    title = element.find(f"{SVG}title")
    assert title is not None
    return title.text or ""


def test_the_chart_is_one_bar_per_strategy_per_measure_with_exact_values() -> None:
    rows = _rows()
    text = svg_chart(rows, "4 buyers <2 tickets> & a race")
    chart = ET.fromstring(text)
    assert chart.tag == f"{SVG}svg"
    assert _title(chart) == "4 buyers <2 tickets> & a race"
    oversold, throughput = _bars(chart, "oversold"), _bars(chart, "throughput")
    assert [bar.get("data-strategy") for bar in oversold] == [row.strategy for row in rows]
    assert [bar.get("data-strategy") for bar in throughput] == [row.strategy for row in rows]
    for row, o_bar, t_bar in zip(rows, oversold, throughput, strict=True):
        assert _title(o_bar) == f"{row.strategy}: {row.oversold} oversold"
        assert _title(t_bar) == f"{row.strategy}: {row.throughput!r} sales per second"
    assert _title(throughput[1]) == "lock: 0.30000000000000004 sales per second"
    # Each measure has its own scale: bar lengths are proportional to the values.
    for bars, values in (
        (oversold, [row.oversold for row in rows]),
        (throughput, [row.throughput for row in rows]),
    ):
        widths = [float(bar.get("width", "nan")) for bar in bars]
        longest = max(range(len(values)), key=values.__getitem__)
        for width, value in zip(widths, values, strict=True):
            assert width == pytest.approx(widths[longest] * value / values[longest], abs=0.01)
    # Both axes are labelled.
    labels = [t.text or "" for t in chart.iter(f"{SVG}text") if t.get("class") == "axis-label"]
    assert len(labels) == 2
    assert "sold beyond the stock" in labels[0]
    assert "sales per second" in labels[1]


def test_the_chart_escapes_names_and_stands_alone() -> None:
    text = svg_chart(_rows(), 'a "title" <with> & marks')
    chart = ET.fromstring(text)
    names = [t.text for t in chart.iter(f"{SVG}text") if t.get("class") == "strategy"]
    assert '<b>&"odd", name' in names
    assert "<b>" not in text
    assert "&lt;b&gt;&amp;&quot;odd&quot;, name" in text
    for external in ("href", "<script", "@import", "url(", "@font-face"):
        assert external not in text
    assert 'xmlns="http://www.w3.org/2000/svg"' in text


def test_the_chart_survives_characters_xml_cannot_hold_and_values_it_cannot_draw() -> None:
    rows = [_row("bad\x00name\x1b"), _row("nan", throughput=float("nan"))]
    chart = ET.fromstring(svg_chart(rows, "title\x07"))
    assert [float(bar.get("width", "-1")) for bar in _bars(chart, "throughput")][1] == 0.0
    assert _title(_bars(chart, "throughput")[1]) == "nan: nan sales per second"


def test_a_chart_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="no rows"):
        svg_chart([], "empty")


# -- the table ----------------------------------------------------------------------


def test_the_table_shows_every_strategy_and_colours_the_verdict() -> None:
    rows = [_row(name.value) for name in STRATEGIES]
    rows[0] = replace(rows[0], oversold=2, verdict="OVERSOLD", ok=False)
    view = table_view(rows, title="4 buyers, 2 tickets")
    console = Console(record=True, width=160)
    console.print(view)
    text = console.export_text()
    for name in STRATEGIES:
        assert f" {name.value} " in text
    for heading in ("sold", "oversold", "double-booked", "lost sales", "torn reads"):
        assert heading in text
    assert "OVERSOLD" in text
    assert "0.012 s" in text
    assert "162.0/s" in text
    assert isinstance(view, Comparison)
    verdicts = list(view.table(narrow=False).columns[-1].cells)
    assert all(isinstance(cell, Text) for cell in verdicts)
    styles = [str(cell.style) for cell in verdicts if isinstance(cell, Text)]
    assert styles == ["bold red"] + ["bold green"] * (len(rows) - 1)


# -- write_plot ---------------------------------------------------------------------


def test_write_plot_writes_the_svg_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "chart.svg"
    write_plot(target, _rows(), "race")
    assert os.listdir(tmp_path) == ["chart.svg"]
    assert target.read_text(encoding="utf-8") == svg_chart(_rows(), "race")
    ET.parse(target)
    # Rewriting keeps the file's permission bits; an upper-case suffix is SVG too.
    target.chmod(0o640)
    write_plot(str(target), _rows()[:1], "again")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert "again" in target.read_text(encoding="utf-8")
    write_plot(tmp_path / "CHART.SVG", _rows(), "race")
    assert sorted(os.listdir(tmp_path)) == ["CHART.SVG", "chart.svg"]


@pytest.mark.parametrize("name", ["chart.png", "chart.PNG", "chart.pdf", "chart"])
def test_write_plot_refuses_anything_but_svg_and_writes_nothing(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match=r"use a \.svg path"):
        write_plot(tmp_path / name, _rows(), "race")
    assert os.listdir(tmp_path) == []


def test_a_failed_write_plot_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "chart.svg"
    old = f"<svg>{SVG_MARK}an old plot</svg>"
    target.write_text(old, encoding="utf-8")

    def failing(source: str, destination: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ticketsim.core._files, "commit", failing)
    with pytest.raises(OSError, match="No space left"):
        write_plot(target, _rows(), "race")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["chart.svg"]
    assert target.read_text(encoding="utf-8") == old


def test_running_a_comparison_needs_no_drawing_library() -> None:
    # The views import rich and this module; this module imports neither.
    code = "import sys, ticketsim.search.compare; print('rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
