"""``compare``: the same sale under every strategy, side by side in one table."""

from __future__ import annotations

import typer

from ticketsim.cli import output
from ticketsim.cli.errors import BadInput
from ticketsim.cli.options import (
    Buyers,
    Csv,
    Db,
    Delay,
    Json,
    Plot,
    SharedSeed,
    StartMethodOpt,
    Store,
    Strategies,
    Tickets,
    Timeout,
    start_method_of,
)
from ticketsim.cli.root import command
from ticketsim.core.names import DEFAULT_DB


@command(
    "compare",
    epilog=(
        "Example: 'ticketsim compare --buyers 20 --tickets 5 --plot tradeoff.svg' shows "
        "that safety costs speed; '--strategy lock --strategy none' compares just two."
    ),
)
def compare_strategies(
    buyers: Buyers = 20,
    tickets: Tickets = 5,
    strategy: Strategies = None,
    delay: Delay = 0.01,
    seed: SharedSeed = None,
    start_method: StartMethodOpt = None,
    db: Db = DEFAULT_DB,
    store: Store = None,
    timeout: Timeout = 30.0,
    json_out: Json = False,
    csv_out: Csv = False,
    plot: Plot = None,
) -> None:
    """Run the same sale under every strategy (of the db file, or of --store) and
    compare them in one table.

    Sold, oversold, double-booked seats, lost sales, torn reads, time, throughput and
    verdict, one row per strategy: the trade-off "safety costs speed" at a glance.
    """
    import dataclasses  # noqa: PLC0415 - start-up time
    import random  # noqa: PLC0415 - start-up time

    from ticketsim.core import paths, settings  # noqa: PLC0415 - start-up time
    from ticketsim.search import compare as comparing  # noqa: PLC0415
    from ticketsim.views import compare as drawn  # noqa: PLC0415

    if json_out and csv_out:
        raise BadInput("--json and --csv both print the table; give one of them")
    if plot is not None and plot.suffix.lower() != ".svg":
        raise BadInput(f"--plot={plot}: give a .svg path")
    named = [s.value for s in strategy] if strategy else None
    compared = comparing.strategy_names(named, store)
    paths.vet(*paths.of_sales(db, compared, store=store), paths.output("--plot", plot))
    chosen = seed if seed is not None else random.SystemRandom().randrange(2**32)
    base = settings.RunConfig(
        buyers=buyers, tickets=tickets, delay=delay, seed=chosen, db_path=db,
        timeout=timeout, start_method=start_method_of(start_method),
    )  # fmt: skip
    if store is not None:  # checked against each strategy as its sale is set up
        from ticketsim.core import stores  # noqa: PLC0415 - start-up time

        stores.parse(store)
        base = dataclasses.replace(
            base, store=store, strategy=stores.NAIVE[stores.parse(store).kind]
        )
    rows = comparing.compare(base, named)
    title = f"{buyers} buyers, {tickets} tickets, delay {delay:g} s, seed {chosen}"
    if json_out:
        output.echo_json({"seed": chosen, "rows": [r.to_json() for r in rows]})
    elif csv_out:
        typer.echo(drawn.to_csv(rows), nl=False)
    else:
        output.console().print(drawn.table_view(rows, title))
    if plot is not None:  # after the table: a write that fails loses nothing more
        drawn.write_plot(plot, rows, title)
        output.wrote("plot", plot, data=json_out or csv_out)
    raise typer.Exit(comparing.exit_code(rows))
