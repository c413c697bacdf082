"""Rich views of ticketsim's data. Builds renderables; printing is the caller's job."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from ticketsim.analysis.checker import Kind, names
from ticketsim.core import catalog
from ticketsim.core.catalog import CLAIM_TITLES
from ticketsim.core.events import Step
from ticketsim.core.names import StoreKind
from ticketsim.core.printable import line, printable
from ticketsim.views.symbols import SYMBOLS, legend

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import RenderableType

    from ticketsim.analysis.checker import Violation
    from ticketsim.analysis.report import Report
    from ticketsim.core.db import TicketDB
    from ticketsim.core.events import Event
    from ticketsim.search.explore import Counterexample, Exploration, Hunt, Scenario

#: Explanations shown under the verdict; ``--json`` has them all.
STORIES_SHOWN: Final = 3
#: Longest schedule worth a line of its own (about 12 buyers); ``--json`` has any.
SCHEDULE_SHOWN: Final = 72


def _count(value: int | None, *, bad: bool = False) -> Text:
    if value is None:  # it depends on a db that could not be read back
        return Text("unknown", style="bold red")
    return Text(str(value), style="bold red" if bad and value else "")


def _yes_no(value: bool) -> Text:
    return Text("yes", style="green") if value else Text("no", style="red")


def strategies_view(rows: list[dict[str, Any]]) -> RenderableType:
    """``ticketsim strategies``: what each strategy protects, as yes/no columns."""
    others = [row for row in rows if "count" not in row]  # threads' and tasks' (--workers)
    rows = [row for row in rows if "count" in row]
    # Space between columns, no rules: with its headers wrapped a word a line, the whole
    # table fits the 80 columns of a terminal.
    table = Table(
        title="What each strategy protects",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=0,  # the box puts one space between columns: the database names are long
    )
    table.add_column(
        "strategy", style="bold", no_wrap=True, width=max(len(row["strategy"]) for row in rows)
    )
    table.add_column("safe", width=4)
    for title in CLAIM_TITLES.values():
        table.add_column(title, width=max(len(word) for word in title.split()))
    how = Table.grid(padding=(0, 1))
    how.add_column(style="bold", no_wrap=True)
    how.add_column()
    for row in rows:
        flags = [_yes_no(row[key]) for key in ("safe", *CLAIM_TITLES)]
        table.add_row(row["strategy"], *flags)
        how.add_row(row["strategy"], row["how"])
    # How each works goes under the table, not in a column of it: in a column it was
    # one word a line below about 150 columns, and a terminal has 80.
    parts: list[RenderableType] = [table, Text("\nHow each works", style="italic"), how]
    if others or any(row.get("workers", ["processes"]) != ["processes"] for row in rows):
        workers = Table.grid(padding=(0, 1))
        workers.add_column(style="bold", no_wrap=True)
        workers.add_column(no_wrap=True)
        workers.add_column()
        for row in [*rows, *others]:
            if row["workers"] != ["processes"]:
                kinds = ", ".join(row["workers"])
                said = "safe" if row["safe"] else "unsafe"
                workers.add_row(row["strategy"], said, kinds)
        parts += [Text("\nWith --workers (threads, asyncio)", style="italic"), workers]
        parts += _hows(others)
    return Group(*parts)


def _hows(rows: list[dict[str, Any]]) -> list[RenderableType]:
    """How each strategy of threads and tasks works, as the table's "how" lines."""
    if not rows:
        return []
    how = Table.grid(padding=(0, 1))
    how.add_column(style="bold", no_wrap=True)
    how.add_column()
    for row in rows:
        how.add_row(row["strategy"], row["how"])
    return [Text("\nHow each works", style="italic"), how]


def report_view(report: Report) -> RenderableType:
    """The report of one sale: the figures, the verdict, and how any violation happened."""
    if report.system is not None:  # a history another program wrote
        header = Text.assemble(
            ("system ", "dim"),
            (printable(report.system), "bold"),
            (f"  {report.buyers} buyers, {report.tickets} tickets", "dim"),
        )
    else:
        header = Text.assemble(
            ("strategy ", "dim"),
            (report.strategy, "bold"),
            (
                f"  {report.buyers} buyers, {report.tickets} tickets, delay {report.delay:g} s, ",
                "dim",
            ),
            # Threads and tasks start no process: what ran them, not a start method.
            (report.start_method if report.workers == "processes" else report.workers, "dim"),
            (f", seed {report.seed}", "dim"),
            (f"\non {report.crew}" if report.pool or report.workers != "processes" else "", "dim"),
        )
    table = Table(show_header=False, min_width=50)
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows: list[tuple[str, Text]] = [
        ('sold (told "you got a ticket")', _count(report.sold)),
        ("remaining in the db", _count(report.remaining)),
        ("sales in the ledger", _count(report.ledger_sales)),
        ("oversold", _count(report.oversold, bad=True)),
        ("double-booked seats", _count(report.double_booked, bad=True)),
        ("lost sales", _count(report.lost_sales, bad=True)),
        ("torn reads", _count(report.torn_reads, bad=True)),
        *(
            [
                ("retries (refused, tried again)", _count(report.retries)),
                ("gave up when refused", _count(report.gave_up, bad=True)),
            ]
            if catalog.info(report.strategy).store is not StoreKind.FILE
            else []
        ),
        ("saw a ticket, then refused", _count(report.saw_but_refused)),
        ("unfinished buyers", _count(report.unfinished, bad=True)),
        ("elapsed", Text(f"{report.elapsed_s:.3f} s")),
    ]
    if report.startup_s is not None:  # hosts that joined by hand kept it to themselves
        rows.append(("processes started in", Text(f"{report.startup_s:.3f} s")))
    for label, value in rows:
        table.add_row(label, value)
    parts: list[RenderableType] = [header, table]
    style = "bold green" if report.ok else "bold red"
    parts.append(Text(printable(report.verdict), style=style))
    stories = [v.explanation for v in report.violations][:STORIES_SHOWN]
    parts.extend(Text(f"  - {printable(story)}") for story in stories)
    hidden = len(report.violations) - len(stories)
    if hidden > 0:
        parts.append(Text(f"  ({hidden} more; --json lists them all)", style="dim"))
    parts.extend(
        Text(f"No outcome for {names(d.buyers)}: {printable(d.why)}", style="red")
        for d in report.died
    )
    if report.hosts is not None:
        parts.extend(
            Text(f"Hosts: {printable(line)}", style="cyan") for line in report.hosts.lines()
        )
    parts.extend(Text(f"Fault: {printable(fault)}", style="magenta") for fault in report.faults)
    if report.schedule and len(report.schedule) <= SCHEDULE_SHOWN:
        parts.append(Text(f"schedule: {report.schedule}", style="dim"))
    if report.lesson:
        parts.append(Text(f"Lesson: {printable(report.lesson)}", style="cyan"))
    if report.caveat:
        parts.append(Text(f"Note: {report.caveat}", style="dim"))
    if report.certain and not report.safe and report.system is None:
        parts.append(Text(_advice(report), style="yellow"))
    return Group(*parts)


def _advice(report: Report) -> str:
    """What to run instead of a strategy that broke an invariant: a safe one of its store."""
    store = catalog.info(report.strategy).store
    if store is StoreKind.FILE:
        fix = {"threads": "--strategy thread-lock", "asyncio": "--strategy task-lock"}
        return (
            "Nothing protected the read-decide-write section. Run it again with "
            f"{fix.get(report.workers, '--lock')}."
        )
    safe = [s for s in catalog.CATALOG.values() if s.store is store and s.safe]
    problem = "Nothing made this purchase atomic."
    if report.gave_up and all(v.kind is Kind.UNDERSOLD for v in report.violations):
        problem = "The store refused transactions, and nobody tried them again."
        safe = [s for s in safe if s.retries] or safe
    names_ = [s.name.value for s in safe]
    return f"{problem} Run it again with --strategy {names_[0]}" + (
        f" (or {', '.join(names_[1:])})." if len(names_) > 1 else "."
    )


def _search_view(
    scenario: Scenario,
    searched: list[RenderableType],
    stalled: Sequence[str],
    found: Counterexample | None,
    none_found: str,
    *,
    complete: bool = True,
    replayed: str = "",
) -> RenderableType:
    """What explore and hunt both show: the scenario, what was searched, what did not
    finish, then the simplest violating schedule or what not finding one means."""
    lines: list[RenderableType] = [
        Text.assemble(
            ("strategy ", "dim"),
            (scenario.strategy, "bold"),
            (f"  {scenario.buyers} buyers, {scenario.tickets} tickets", "dim"),
        ),
        *searched,
    ]
    lines.extend(Text(f"did not finish: {printable(note)}", style="red") for note in stalled)
    if found is None:
        lines.append(Text(none_found, style="bold green" if complete else "bold red"))
    else:
        lines += [
            Text(f"Counterexample: {found.schedule}", style="bold red"),
            Text(f"  {printable(found.explanation)}"),
            Text(f"  Replay it: {printable(found.replay)}", style="yellow"),
        ]
        if replayed:
            lines.append(Text(replayed))
    return Group(*lines)


def _schedules(count: int) -> str:
    return f"{count} schedule" if count == 1 else f"{count} schedules"


def exploration_view(result: Exploration) -> RenderableType:
    """``ticketsim explore``: how many orders exist, how many ran and broke, the first
    story and how often it reproduces."""
    s = result.scenario
    bound = result.preemption_bound
    if result.truncated:
        ended = "; stopped at --max-schedules with classes left"
    elif result.stopped_at_first:
        ended = "; stopped at the first counterexample (--all runs every class)"
    elif result.bounded:
        ended = f"; every class within --preemption-bound {bound}, not every class"
    else:
        ended = "; that is every class"
    searched: list[RenderableType] = [
        Text(
            f"{result.interleavings} interleavings of the buyers' steps, {result.feasible} "
            f"feasible under {s.strategy}; one of each class that can end differently is run "
            "(reordering reads that commute, or renaming buyers in the same state, changes "
            "nothing), fewest preemptions first"
            + (f", at most {bound}" if bound is not None else "")
        ),
        Text(
            f"explored {_schedules(result.explored)} in {result.elapsed_s:.2f} s "
            f"({result.schedules_per_s:.0f} schedules/s){ended}"
        ),
    ]
    if result.violating:
        kinds = ", ".join(f"{kind} {n}" for kind, n in result.by_kind.items())
        searched.append(
            Text(
                f"{result.violating} of the {_schedules(result.explored)} "
                f"{'breaks' if result.violating == 1 else 'break'} an invariant: {kinds}",
                style="red",
            )
        )
    none_found = "Every class of orders was run, and none broke an invariant."
    if not result.complete:
        unchecked = []
        if result.truncated:
            unchecked.append("classes were left unrun (--max-schedules)")
        if result.bounded:
            unchecked.append(
                f"classes with more than {bound} preemption(s) were left unrun (--preemption-bound)"
            )
        if result.stalled:
            unchecked.append(f"{len(result.stalled)} schedule(s) did not finish")
        none_found = (
            f"INCOMPLETE: {'; '.join(unchecked)}, so nothing is claimed of them; "
            "no schedule that finished broke an invariant"
        )
    replayed = (
        f"  Reproduced {result.reproduced} of {result.replays} replays" if result.replays else ""
    )
    return _search_view(
        s,
        searched,
        result.stalled,
        result.counterexample,
        none_found,
        complete=result.complete,
        replayed=replayed,
    )


def hunt_view(result: Hunt) -> RenderableType:
    """``ticketsim hunt``: what was searched and the simplest violating schedule found."""
    searched: list[RenderableType] = [
        Text(
            f"ran {result.hypothesis_runs} schedules drawn by hypothesis and "
            f"{result.pct_runs} PCT schedules (depth {result.depth}) in "
            f"{result.elapsed_s:.2f} s"
        )
    ]
    none_found = "No schedule that was tried broke an invariant."
    if result.stalled:
        none_found = (
            f"INCOMPLETE: {len(result.stalled)} schedule(s) did not finish and were not checked; "
            "no schedule that finished broke an invariant"
        )
    return _search_view(
        result.scenario,
        searched,
        result.stalled,
        result.counterexample,
        none_found,
        complete=not result.stalled,
    )


#: Buyers drawn one cell each in the live view; more are counted, not drawn.
LIVE_CELLS: Final = 100
_LIVE_LEGEND: Final = legend(Step)


class LiveSale:
    """What ``ticketsim run --live`` draws, updated with each event as it arrives."""

    def __init__(self, strategy: str, buyers: int, tickets: int) -> None:
        self.strategy, self.buyers, self.tickets = strategy, buyers, tickets
        self.remaining = tickets
        self.sold = 0
        self.state: dict[int, Step] = {}
        self.verdict: Text | None = None

    def update(self, event: Event) -> None:
        self.state[event.buyer] = event.step
        if event.step is Step.WRITE and event.value is not None:
            self.remaining = event.value
        elif event.step is Step.OK:
            self.sold += 1

    def finish(self, report: Report) -> None:
        style = "bold green" if report.ok else "bold red"
        self.verdict = Text(printable(report.verdict), style=style)

    def __rich__(self) -> RenderableType:
        oversold = max(0, self.sold - self.tickets)
        counters = Text.assemble(
            ("strategy ", "dim"), (self.strategy, "bold"),
            ("   remaining ", "dim"), (str(self.remaining), "bold"),
            ("   sold ", "dim"), (str(self.sold), "bold"),
            ("   oversold ", "dim"), (str(oversold), "bold red" if oversold else "bold"),
        )  # fmt: skip
        cells = Text()
        for number in range(1, min(self.buyers, LIVE_CELLS) + 1):
            step = self.state.get(number)
            if step is None:  # not started yet
                cells.append(" ")
            else:
                cells.append(SYMBOLS[step].char, style=SYMBOLS[step].style)
            if number % 50 == 0:
                cells.append("\n")
        if self.buyers > LIVE_CELLS:
            cells.append(f"  (+{self.buyers - LIVE_CELLS} buyers not drawn)", style="dim")
        parts: list[RenderableType] = [counters, cells, Text(_LIVE_LEGEND, style="dim")]
        if self.verdict is not None:
            parts.append(self.verdict)
        return Group(*parts)


def db_view(db: TicketDB, problems: list[Violation], path: str) -> RenderableType:
    """``ticketsim show``: the db in a few lines, and whatever the checker finds in it."""
    seats = sorted(sale.seat for sale in db.ledger)
    sold = ", ".join(str(s) for s in seats[:20]) + (" ..." if len(seats) > 20 else "")
    table = Table(show_header=False, title=line(path), title_justify="left")
    table.add_column("field")
    table.add_column("value")
    table.add_row("event", line(db.event))
    table.add_row("tickets", str(db.tickets))
    table.add_row("remaining", str(db.remaining))
    table.add_row("sales in the ledger", str(len(db.ledger)))
    table.add_row("seats sold", sold or "none")
    if db.ledger:
        for label, sale in (("first sale", db.ledger[0]), ("last sale", db.ledger[-1])):
            table.add_row(label, f"{line(sale.buyer)}, seat {sale.seat}")
    parts: list[RenderableType] = [table]
    if problems:
        parts.extend(
            Text(f"problem: {printable(p.explanation)}", style="bold red") for p in problems
        )
    else:
        parts.append(Text("consistent: remaining + sales = tickets, no seat twice", style="green"))
        parts.append(Text(SHOW_NOTE, style="dim"))
    return Group(*parts)


#: What ``show`` says of a consistent db: the db alone cannot show overselling.
SHOW_NOTE: Final = (
    'Overselling is invisible from the db alone: a buyer told "you got a ticket" whose sale '
    "was written over leaves no trace in it. To see it, save the history of a sale and "
    "check it: ticketsim run --history h.jsonl, then ticketsim check --history h.jsonl"
)
