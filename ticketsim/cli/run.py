"""``run`` and ``replay``: one sale, free or in one exact order of the buyers' steps,
reported, saved and drawn the same way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, NamedTuple, NoReturn

import typer

from ticketsim.cli import output
from ticketsim.cli.errors import BadInput
from ticketsim.cli.options import (
    MAX_REPEAT,
    Buyers,
    ClockSkew,
    Db,
    Delay,
    History,
    HostMode,
    HostsOpt,
    Json,
    Keep,
    Kill,
    KillHolder,
    Live,
    Lock,
    Lockstep,
    PartitionOpt,
    PauseHolder,
    Pool,
    Repeat,
    RunSeed,
    RunStrategyOpt,
    RunTickets,
    Schedule,
    ScheduleBuyers,
    ShowTimeline,
    SlowLink,
    StartMethodOpt,
    Store,
    StrategyOpt,
    Tickets,
    TimelineOpt,
    Timeout,
    Workers,
    run_strategy_of,
    start_method_of,
    store_strategy_of,
    strategy_of,
)
from ticketsim.cli.root import command
from ticketsim.cli.search import scenario_of
from ticketsim.cli.yours import (
    BuyerOpt,
    SetupOpt,
    SoldOpt,
    Yours,
    refuse_others,
    reported_yours,
)
from ticketsim.core.names import DEFAULT_DB, WorkerKind

if TYPE_CHECKING:
    from pathlib import Path

    from ticketsim.analysis.report import Report
    from ticketsim.core.events import Event
    from ticketsim.core.result import RunResult
    from ticketsim.core.settings import RunConfig


#: ``--store`` values that name ticketsim's own store (``ticketsim.core.stores.OWN``),
#: spelt here so that ``run --help`` need not import the library.
_OWN_STORES: Final = ("sqlite", "postgresql", "postgres", "redis")


class Outputs(NamedTuple):
    """Where a sale's outcome goes besides its report."""

    json_out: bool
    history: Path | None
    timeline: Path | None
    show_timeline: bool


@command(
    epilog=(
        "Examples: 'ticketsim run --buyers 50' oversells; "
        "'ticketsim run --buyers 50 --lock' does not; "
        "'ticketsim run --json --history run.jsonl' for scripts."
    )
)
def run(
    buyers: Buyers = 50,
    tickets: RunTickets = 10,
    strategy: RunStrategyOpt = None,
    lock: Lock = False,
    db: Db = DEFAULT_DB,
    store: Store = None,
    delay: Delay = 0.1,
    seed: RunSeed = None,
    timeout: Timeout = 30.0,
    start_method: StartMethodOpt = None,
    json_out: Json = False,
    keep: Keep = False,
    history: History = None,
    pool: Pool = None,
    workers: Workers = WorkerKind.PROCESSES,
    lockstep: Lockstep = False,
    kill_holder: KillHolder = False,
    kill: Kill = 0,
    pause_holder: PauseHolder = False,
    hosts: HostsOpt = None,
    host_mode: HostMode = "auto",
    partition: PartitionOpt = None,
    slow_link: SlowLink = None,
    clock_skew: ClockSkew = None,
    live: Live = False,
    timeline: TimelineOpt = None,
    show_timeline: ShowTimeline = False,
    buyer: BuyerOpt = None,
    setup: SetupOpt = None,
    sold: SoldOpt = None,
) -> None:
    """Run one sale: BUYERS processes try to buy TICKETS tickets from the db at once."""
    from ticketsim.core import settings  # noqa: PLC0415 - start-up time

    if buyer is not None:  # the user's own buyer, free: the race as it happens
        refuse_others(
            {"--strategy": strategy is not None, "--lock": lock, "--store": store is not None,
             "--hosts": hosts is not None, "--pool": pool is not None, "--keep": keep,
             "--kill": bool(kill), "--kill-holder": kill_holder, "--lockstep": lockstep,
             "--pause-holder": pause_holder, "--live": live,
             "--timeline": timeline is not None, "--show-timeline": show_timeline,
             "--partition": bool(partition), "--slow-link": bool(slow_link),
             "--clock-skew": bool(clock_skew), "--host-mode": host_mode != "auto",
             "--seed": seed is not None, "--delay": delay != 0.1, "--db": db != DEFAULT_DB,
             "--workers": workers is not WorkerKind.PROCESSES}
        )  # fmt: skip
        from ticketsim.core import paths  # noqa: PLC0415 - start-up time
        from ticketsim.engine import yours as engine  # noqa: PLC0415 - start-up time

        paths.vet(paths.output("--history", history))
        mine = Yours(buyer, setup, sold)
        race = mine.race(buyers, tickets, start_method_of(start_method), timeout)
        reported_yours(mine, race, engine.play(race, None), json_out, history=history, free=True)

    outputs = Outputs(json_out, history, timeline, show_timeline)
    if store is not None and workers is not WorkerKind.PROCESSES:
        # First: what a store's strategies would say points at strategies of processes.
        raise BadInput(
            f"--store={store}: a store's buyers are processes, and --workers {workers.value} "
            "run in ticketsim's own process; drop --store, or drop --workers"
        )
    chosen = store_strategy_of(run_strategy_of(strategy), lock, store)
    if store is not None and store.lower() == store and store in _OWN_STORES:
        store = None  # ticketsim's own: the strategy says which, and it starts it
    _vet(db, chosen, outputs, keep=keep, store=store)
    if partition is not None and len(partition) > 1:
        raise BadInput(
            f"--partition is given {len(partition)} times ({', '.join(partition)}); a sale "
            "cuts one host off: give it once"
        )
    cut = partition[0] if partition else None
    config = settings.RunConfig(
        buyers=buyers, tickets=tickets, strategy=chosen, db_path=db, delay=delay, seed=seed,
        timeout=timeout, start_method=start_method_of(start_method), keep=keep,
        lockstep=lockstep, pool=pool, kill_holder=kill_holder, kill=kill, store=store,
        pause_holder=pause_holder, hosts=hosts, host_mode=host_mode, partition=cut,
        slow_link=tuple(slow_link or ()), clock_skew=tuple(clock_skew or ()),
        worker_kind=workers.value,
    )  # fmt: skip
    if live and json_out:
        raise BadInput("--live draws on the terminal and --json prints data; give one of them")
    if config.hosts is not None:
        if live:
            raise BadInput("--live watches the buyers of one machine; drop it with --hosts")
        from ticketsim.engine.hosts import run_hosts  # noqa: PLC0415 - start-up time

        _reported(run_hosts(config), outputs)
    _reported(_watched(config, live=live, quiet=json_out), outputs)


@command(
    epilog=(
        "Example: 'ticketsim replay --schedule \"1r 2r 1w 2w\"' sells the last ticket "
        "twice, every time; add '--lock' and the schedule is refused as infeasible."
    )
)
def replay(
    schedule: Schedule,
    buyers: ScheduleBuyers = None,
    tickets: Tickets = 1,
    strategy: StrategyOpt = None,
    lock: Lock = False,
    db: Db = DEFAULT_DB,
    timeout: Timeout = 10.0,
    start_method: StartMethodOpt = None,
    json_out: Json = False,
    history: History = None,
    repeat: Repeat = 1,
    timeline: TimelineOpt = None,
    show_timeline: ShowTimeline = False,
    buyer: BuyerOpt = None,
    setup: SetupOpt = None,
    sold: SoldOpt = None,
) -> None:
    """Run one exact interleaving of the buyers' steps, and report it as 'run' does.

    Same report and JSON keys as 'run'; with --repeat, also how many runs
    reproduced the first one exactly (same db and history, apart from pids and times).
    """
    from ticketsim.core import settings  # noqa: PLC0415 - start-up time
    from ticketsim.engine import runner  # noqa: PLC0415 - start-up time
    from ticketsim.search.explore import signature  # noqa: PLC0415

    settings.require_int("repeat", repeat, 1, MAX_REPEAT, "runs")
    if buyer is not None:
        refuse_others(
            {"--strategy": strategy is not None, "--lock": lock, "--history": history is not None,
             "--timeline": timeline is not None, "--show-timeline": show_timeline,
             "--db": db != DEFAULT_DB}
        )  # fmt: skip
        mine, method = Yours(buyer, setup, sold), start_method_of(start_method)
        _replay_yours(mine, schedule, buyers, tickets, method, timeout, json_out, repeat)
    outputs = Outputs(json_out, history, timeline, show_timeline)
    chosen = strategy_of(strategy, lock)
    _vet(db, chosen, outputs)
    if buyers is None:
        buyers = _named_buyers(schedule)
    from ticketsim.engine.databases import PrivateServers  # noqa: PLC0415 - start-up time

    with PrivateServers() as servers:  # one server for every repeat
        scenario = scenario_of(chosen, buyers, tickets, db, start_method, timeout, servers)
        config = scenario.config(schedule)
        results = [runner.run_sale(config, servers=servers) for _ in range(repeat)]
    first = results[0]
    reproduced = sum(1 for r in results if signature(r) == signature(first))
    _reported(first, outputs, repeat=repeat, reproduced=reproduced)


def _replay_yours(
    mine: Yours,
    schedule: str,
    buyers: int | None,
    tickets: int,
    start_method: str | None,
    timeout: float,
    json_out: bool,
    repeat: int,
) -> NoReturn:
    """The user's buyer in one exact schedule, ``repeat`` times, each compared with the
    first: the same turns, and the same verdict."""
    from ticketsim.analysis.report import build_report  # noqa: PLC0415 - start-up time
    from ticketsim.core.settings import PROCESS_PER_BUYER_MAX  # noqa: PLC0415
    from ticketsim.engine import yours as engine  # noqa: PLC0415 - start-up time
    from ticketsim.errors import ConfigError  # noqa: PLC0415 - start-up time

    order = engine.parse_order(schedule, buyers if buyers is not None else PROCESS_PER_BUYER_MAX)
    many = buyers if buyers is not None else max(order, default=1)
    race = mine.race(many, tickets, start_method, timeout)
    played = [engine.play(race, order) for _ in range(repeat)]
    first = played[0]
    taken = first.order[: len(order)]
    if taken != order:  # a turn went elsewhere: this is not the schedule asked for
        differ = (n for n, (a, b) in enumerate(zip(taken, order, strict=False)) if a != b)
        turn = next(differ, len(taken))  # or the sale ended before the schedule did
        raise ConfigError(
            "schedule",
            schedule,
            f"turn {turn + 1} gives buyer {order[turn]} a move it could not make there (it "
            f"had ended, or found its lock held); give a schedule this code takes, as "
            f"ticketsim prints it, like {first.schedule()!r}",
        )
    verdict = build_report(first.result).verdict
    same = sum(
        1 for p in played if p.order == first.order and build_report(p.result).verdict == verdict
    )
    searched = f"reproduced {same}/{repeat}" if repeat > 1 else ""
    reported_yours(mine, race, first, json_out, searched=searched)


def _vet(
    db: Path, strategy: str, outputs: Outputs, *, keep: bool = False, store: str | None = None
) -> None:
    """Refuse the paths of a sale before it starts (a ``PathError``)."""
    from ticketsim.core import paths  # noqa: PLC0415 - start-up time

    paths.vet(
        *paths.of_sales(db, [strategy], keep=keep, store=store),
        paths.output("--history", outputs.history),
        paths.output("--timeline", outputs.timeline),
    )


def _named_buyers(schedule: str) -> int:
    """How many buyers ``schedule`` names (at least one), or why it is not a schedule."""
    from ticketsim.core import schedule as sched  # noqa: PLC0415 - start-up time
    from ticketsim.core.settings import PROCESS_PER_BUYER_MAX  # noqa: PLC0415
    from ticketsim.errors import ConfigError  # noqa: PLC0415 - start-up time

    try:
        named = sched.parse(
            schedule, PROCESS_PER_BUYER_MAX, complete=False, named_buyers=True
        ).buyers
    except sched.ScheduleError as exc:
        raise ConfigError("schedule", schedule, str(exc)) from None
    return max(named, 1)


def reported(result: RunResult, outputs: Outputs) -> NoReturn:
    """Report a sale as ``run`` does: what ``sale check`` shows too."""
    _reported(result, outputs)


def _reported(result: RunResult, outputs: Outputs, **extra: int) -> NoReturn:
    """Report a sale, save and draw it as asked, and exit with its verdict."""
    from ticketsim.analysis import history as historyfile  # noqa: PLC0415 - start-up time
    from ticketsim.analysis.report import build_report  # noqa: PLC0415 - start-up time

    report = build_report(result)
    output.show_report(report, outputs.json_out, **extra)
    if outputs.history is not None:  # after the report: a write that fails loses nothing more
        historyfile.save(outputs.history, result)
        output.wrote("history", outputs.history, data=outputs.json_out)
    repeat = extra.get("repeat", 1)
    if not outputs.json_out and repeat > 1:
        typer.echo(f"reproduced {extra['reproduced']}/{repeat}")
    _pictures(result, report, outputs)
    raise typer.Exit(int(report.exit_code))


def _pictures(result: RunResult, report: Report, outputs: Outputs) -> None:
    timeline, show_timeline = outputs.timeline, outputs.show_timeline and not outputs.json_out
    if timeline is None and not show_timeline:
        return
    from ticketsim.views import timeline as drawing  # noqa: PLC0415 - only when asked for

    if timeline is not None:
        drawing.write_timeline(timeline, result, report)
        output.wrote("timeline", timeline, data=outputs.json_out)
    if show_timeline:
        console = output.console()
        # The lanes' labels take about 12 columns; the rest is time.
        width = max(40, console.width - 14)
        console.print(drawing.terminal_timeline(result, report, width=width))


def _watched(config: RunConfig, *, live: bool, quiet: bool) -> RunResult:
    """Run the sale with a live view, a progress bar on stderr, or nothing to watch.

    The progress bar appears only when both streams are terminals and the output is
    not data (``--json``), so it never ends up in a file or a pipe.
    """
    from ticketsim.engine import runner  # noqa: PLC0415 - start-up time

    if live:
        return _live(config)
    if quiet or not output.terminal():
        return runner.run_sale(config)
    return _with_progress(config)


def _live(config: RunConfig) -> RunResult:
    from rich.live import Live  # noqa: PLC0415 - start-up time

    from ticketsim.analysis.report import build_report  # noqa: PLC0415 - start-up time
    from ticketsim.engine import runner  # noqa: PLC0415 - start-up time
    from ticketsim.views.render import LiveSale  # noqa: PLC0415 - start-up time

    view = LiveSale(config.strategy, config.buyers, config.tickets)
    console = output.console()
    with Live(view, console=console, refresh_per_second=12) as screen:
        result = runner.run_sale(config, watch=view.update)
        view.finish(build_report(result))
        screen.refresh()
    if not console.is_terminal:
        console.line()  # a terminal has moved on a line; a file or a pipe has not
    return result


def _with_progress(config: RunConfig) -> RunResult:
    from rich.progress import (  # noqa: PLC0415 - start-up time
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
    )

    from ticketsim.core.events import OUTCOMES  # noqa: PLC0415 - start-up time
    from ticketsim.engine import runner  # noqa: PLC0415 - start-up time

    progress = Progress(
        TextColumn("selling"), BarColumn(), MofNCompleteColumn(), TextColumn("buyers done"),
        console=output.console(stderr=True, highlight=True), transient=True,
    )  # fmt: skip
    with progress:
        task = progress.add_task("sale", total=config.buyers)

        def advance(event: Event) -> None:
            if event.step in OUTCOMES:
                progress.advance(task)

        return runner.run_sale(config, watch=advance)
