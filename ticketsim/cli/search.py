"""``explore``, ``hunt`` and ``check``: searching the schedules of a sale for one that
breaks an invariant, and checking a sale already run, offline."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, Protocol

import typer

from ticketsim.cli import output
from ticketsim.cli.options import (
    Buyers,
    Db,
    Depth,
    EveryClass,
    Json,
    Lock,
    MaxExamples,
    MaxSchedules,
    PctRuns,
    PctSeed,
    PreemptionBound,
    Replays,
    SavedHistory,
    StartMethod,
    StartMethodOpt,
    Store,
    StrategyOpt,
    Tickets,
    Timeout,
    start_method_of,
    strategy_of,
)
from ticketsim.cli.root import command
from ticketsim.cli.yours import (
    BuyerOpt,
    SetupOpt,
    SoldOpt,
    Yours,
    refuse_others,
    reported_yours,
)
from ticketsim.core.names import DEFAULT_DB, StrategyName

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from rich.console import RenderableType

    from ticketsim.core.exits import ExitCode
    from ticketsim.core.names import StoreKind
    from ticketsim.search.explore import Scenario


class _Sale(NamedTuple):
    """The sale a search runs every schedule on, as the options give it."""

    strategy: StrategyName | None
    lock: bool
    buyers: int
    tickets: int
    db: Path
    start_method: StartMethod | None
    timeout: float


class _Found(Protocol):
    """What a search finds: a verdict and its JSON."""

    @property
    def exit_code(self) -> ExitCode: ...

    def to_json(self) -> dict[str, Any]: ...


@command(
    epilog=(
        "Example: 'ticketsim explore --buyers 2 --tickets 1' finds the lost update; "
        "'ticketsim explore --buyers 3 --lock' shows that no order breaks the lock."
    )
)
def explore(
    buyers: Buyers = 2,
    tickets: Tickets = 1,
    strategy: StrategyOpt = None,
    lock: Lock = False,
    db: Db = DEFAULT_DB,
    max_schedules: MaxSchedules = 1000,
    preemption_bound: PreemptionBound = None,
    every: EveryClass = False,
    replays: Replays = 10,
    timeout: Timeout = 10.0,
    start_method: StartMethodOpt = None,
    json_out: Json = False,
    buyer: BuyerOpt = None,
    setup: SetupOpt = None,
    sold: SoldOpt = None,
) -> None:
    """Run the orders of the buyers' steps that can end differently, simplest first, until
    one breaks an invariant (or, with --all, every one), and replay it."""
    from ticketsim.core import settings  # noqa: PLC0415 - start-up time
    from ticketsim.search import explore as searching  # noqa: PLC0415 - start-up time
    from ticketsim.views.render import exploration_view  # noqa: PLC0415 - start-up time

    if buyer is not None:
        refuse_others(
            {
                "--strategy": strategy is not None,
                "--lock": lock,
                "--db": db != DEFAULT_DB,
            }
        )
        if every or replays != 10:
            from ticketsim.cli.errors import BadInput  # noqa: PLC0415 - start-up time

            given = " ".join(
                ([f"--all={every}"] if every else [])
                + ([f"--replays={replays}"] if replays != 10 else [])
            )
            raise BadInput(
                f"{given}: with --buyer, explore stops at the first schedule that breaks "
                "your invariant and prints its replay command; drop "
                + ("them" if every and replays != 10 else "it")
            )
        mine, method = Yours(buyer, setup, sold), start_method_of(start_method)
        bounds = (max_schedules, preemption_bound)
        _explore_yours(mine, buyers, tickets, bounds, method, timeout, json_out)

    _searched(
        _Sale(strategy, lock, buyers, tickets, db, start_method, timeout),
        partial(settings.require_exploration, buyers, max_schedules, preemption_bound, replays),
        partial(
            searching.explore,
            max_schedules=max_schedules,
            preemption_bound=preemption_bound,
            every=every,
            replays=replays,
        ),
        exploration_view,
        json_out=json_out,
    )


def _hunt_yours(
    mine: Yours,
    buyers: int,
    tickets: int,
    max_examples: int,
    seed: int,
    start_method: str | None,
    timeout: float,
    json_out: bool,
) -> None:
    """Schedules of the user's buyer drawn by hypothesis, a breaking one shrunk."""
    from ticketsim.core import settings  # noqa: PLC0415 - start-up time
    from ticketsim.core.exits import ExitCode  # noqa: PLC0415 - start-up time
    from ticketsim.search import yours  # noqa: PLC0415 - start-up time

    settings.require_int("max_examples", max_examples, 1, settings.MAX_RUNS, "examples")
    race = mine.race(buyers, tickets, start_method, timeout)
    found = yours.hunt(race, max_examples=max_examples, seed=seed)
    if found.counterexample is not None:
        searched = f"drawn and shrunk by hypothesis ({found.runs} schedules played)"
        reported_yours(mine, race, found.counterexample, json_out, searched=searched)
    # As a hunt of a built-in strategy: every schedule it meant to play was played and
    # broke nothing, which is all it says (a stalled one is a counterexample above).
    said = (
        f"{found.runs} drawn schedules of {mine.buyer} kept every invariant; the others "
        "were not played, and nothing is claimed about them"
    )
    if json_out:
        output.echo_json({"runs": found.runs, "complete": False, "verdict": said,
                          "exit_code": int(ExitCode.OK)})  # fmt: skip
    else:
        typer.echo(said)
    raise typer.Exit(int(ExitCode.OK))


def _explore_yours(
    mine: Yours,
    buyers: int,
    tickets: int,
    bounds: tuple[int, int | None],
    start_method: str | None,
    timeout: float,
    json_out: bool,
) -> None:
    """Every schedule of the user's buyer, up to ``max_schedules``: the first that breaks
    an invariant reported as a sale is, or what was checked, complete or not."""
    from ticketsim.core import settings  # noqa: PLC0415 - start-up time
    from ticketsim.core.exits import ExitCode  # noqa: PLC0415 - start-up time
    from ticketsim.search import yours  # noqa: PLC0415 - start-up time

    max_schedules, preemptions = bounds
    settings.require_int("max_schedules", max_schedules, 1, settings.MAX_RUNS, "schedules")
    if preemptions is not None:
        settings.require_int("preemption_bound", preemptions, 0, 100, "preemptions")
    race = mine.race(buyers, tickets, start_method, timeout)
    found = yours.explore(race, max_runs=max_schedules, preemptions=preemptions)
    if found.counterexample is not None:
        searched = f"found in schedule {found.runs} played (fewest switches first)"
        reported_yours(mine, race, found.counterexample, json_out, searched=searched)
    if not found.complete:
        said = (
            f"{found.runs} schedules of {mine.buyer} kept every invariant; the search stopped "
            f"at --max-schedules {max_schedules} before the rest, which were not checked"
        )
    elif found.bounded:
        said = (
            f"INCOMPLETE: every schedule of {mine.buyer} with at most {preemptions} "
            f"preemption(s) ({found.runs}) kept every invariant; those with more were not "
            "played (--preemption-bound), so nothing is claimed of them"
        )
    else:
        said = f"every schedule of {mine.buyer} ({found.runs}) kept every invariant"
    complete = found.complete and not found.bounded
    code = ExitCode.OK if complete else ExitCode.STALLED
    if json_out:
        output.echo_json({"runs": found.runs, "complete": complete, "bounded": found.bounded,
                          "verdict": said, "exit_code": int(code)})  # fmt: skip
    else:
        typer.echo(said)
    raise typer.Exit(int(code))


@command(epilog="Example: 'ticketsim hunt --buyers 6 --tickets 3' for sales too large to explore.")
def hunt(
    buyers: Buyers = 4,
    tickets: Tickets = 2,
    strategy: StrategyOpt = None,
    lock: Lock = False,
    db: Db = DEFAULT_DB,
    max_examples: MaxExamples = 50,
    pct_runs: PctRuns = 50,
    depth: Depth = 2,
    seed: PctSeed = 0,
    timeout: Timeout = 10.0,
    start_method: StartMethodOpt = None,
    json_out: Json = False,
    buyer: BuyerOpt = None,
    setup: SetupOpt = None,
    sold: SoldOpt = None,
) -> None:
    """Search schedules of a larger sale for one that breaks an invariant, and shrink it."""
    from ticketsim.core import settings  # noqa: PLC0415 - start-up time
    from ticketsim.search import explore as searching  # noqa: PLC0415 - start-up time
    from ticketsim.views.render import hunt_view  # noqa: PLC0415 - start-up time

    if buyer is not None:
        refuse_others(
            {
                "--strategy": strategy is not None,
                "--lock": lock,
                "--db": db != DEFAULT_DB,
                "--pct-runs": pct_runs != 50,
                "--depth": depth != 2,
            }
        )
        mine, method = Yours(buyer, setup, sold), start_method_of(start_method)
        _hunt_yours(mine, buyers, tickets, max_examples, seed, method, timeout, json_out)
    _searched(
        _Sale(strategy, lock, buyers, tickets, db, start_method, timeout),
        partial(settings.require_hunt, max_examples, pct_runs, depth, seed),
        partial(
            searching.hunt, max_examples=max_examples, pct_runs=pct_runs, depth=depth, seed=seed
        ),
        hunt_view,
        json_out=json_out,
    )


def _searched(
    sale: _Sale,
    check: Callable[[], None],
    search: Callable[[Scenario], _Found],
    view: Callable[[Any], RenderableType],
    *,
    json_out: bool,
) -> NoReturn:
    """Refuse what cannot be searched before anything runs, then search, print what was
    found and exit with its verdict."""
    from ticketsim.core import paths  # noqa: PLC0415 - start-up time

    chosen = strategy_of(sale.strategy, sale.lock)
    paths.vet(*paths.of_sales(sale.db, [chosen]))
    check()
    scenario = scenario_of(
        chosen, sale.buyers, sale.tickets, sale.db, sale.start_method, sale.timeout
    )
    found = search(scenario)  # a search starts its database's server once, for every run
    if json_out:
        output.echo_json(found.to_json())
    else:
        output.console().print(view(found))
    raise typer.Exit(int(found.exit_code))


def scenario_of(
    strategy: str,
    buyers: int,
    tickets: int,
    db: Path,
    start_method: StartMethod | None,
    timeout: float,
    servers: Mapping[StoreKind, str] | None = None,
) -> Scenario:
    """The sale of a controlled run (replay or a search), refused before any runs."""
    from ticketsim.search.explore import Scenario  # noqa: PLC0415 - imports hypothesis lazily

    scenario = Scenario(
        strategy=strategy,
        buyers=buyers,
        tickets=tickets,
        db_path=db,
        start_method=start_method_of(start_method),
        timeout=timeout,
        servers={} if servers is None else servers,
    )
    scenario.check()  # before any search starts
    return scenario


@command(
    epilog="Example: 'ticketsim run --history run.jsonl' now, 'ticketsim check --history "
    "run.jsonl' later."
)
def check(
    history: SavedHistory, db: Db = DEFAULT_DB, store: Store = None, json_out: Json = False
) -> None:
    """Re-check a saved db (or --store) and history offline, with the same checker as 'run'.

    Same report and JSON keys as 'run'.
    """
    from ticketsim.analysis import history as historyfile  # noqa: PLC0415 - start-up time
    from ticketsim.analysis.report import build_report  # noqa: PLC0415 - start-up time
    from ticketsim.core import paths  # noqa: PLC0415 - start-up time

    saved = paths.source("--history", history, "write one with ticketsim run --history")
    paths.vet(saved)
    if historyfile.names_a_system(history):  # another program's: its own record, no db
        report = build_report(historyfile.load(history))
    elif store is not None:
        from ticketsim.core import stores  # noqa: PLC0415 - start-up time
        from ticketsim.engine.databases import user_store  # noqa: PLC0415 - start-up time

        paths.vet(saved)
        state = (stores.parse(store).shown, user_store(store, reads_only=True).snapshot())
        report = build_report(historyfile.load(history, db, store=state))
    else:
        paths.vet(saved, paths.source("--db", db, "give the db the history was written against"))
        # A db that is not the history's is a DbError, naming --db.
        report = build_report(historyfile.load(history, db))
    output.show_report(report, json_out)
    raise typer.Exit(int(report.exit_code))
