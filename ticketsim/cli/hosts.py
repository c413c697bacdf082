"""``sale open``, ``buyers``, ``sale start`` and ``sale check``: one sale in a store,
with buyers joining it from any host, checked as ``run`` checks its own."""

from __future__ import annotations

from typing import Annotated

import typer

from ticketsim.cli import output
from ticketsim.cli.errors import BadInput
from ticketsim.cli.options import (
    Delay,
    History,
    Json,
    ShowTimeline,
    StartMethodOpt,
    StrategyOpt,
    TimelineOpt,
    Timeout,
    start_method_of,
)
from ticketsim.cli.root import app
from ticketsim.cli.run import Outputs, reported
from ticketsim.core.exits import help_table

sale_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help=(
        "One sale kept in a PostgreSQL or Redis store, for buyers on many hosts: "
        "open it, join it with 'ticketsim buyers' from each host, start it, check it."
    ),
)
app.add_typer(sale_app, name="sale")

StoreURL = Annotated[
    str,
    typer.Option(
        "--store",
        help="The PostgreSQL or Redis that keeps the sale: postgresql://user@host/db, redis://host:6379/0.",
        show_default=False,
    ),
]
SaleId = Annotated[
    str | None,
    typer.Option(
        "--sale",
        help="The sale's id, as 'sale open' printed it (default: the store's sale).",
        show_default=False,
    ),
]
SaleTickets = Annotated[
    int, typer.Option("--tickets", min=0, max=1_000_000, help="Tickets on sale.")
]
Count = Annotated[
    int, typer.Option("--count", min=1, max=120, help="Buyer processes to start on this host.")
]
HostName = Annotated[
    str | None,
    typer.Option(
        "--host",
        help="This host's name in the history (default: the machine's hostname).",
        show_default=False,
    ),
]
Skew = Annotated[
    str,
    typer.Option(
        "--clock-skew",
        help=(
            "Set this host's clock off in the times it records, like +2s (the store's clock "
            "orders the history)."
        ),
    ),
]
Board = Annotated[str | None, typer.Option("--board", hidden=True)]
CutFolder = Annotated[str | None, typer.Option("--cut-folder", hidden=True)]
CutHere = Annotated[bool, typer.Option("--cut-here", hidden=True)]
StoreOnStdin = Annotated[bool, typer.Option("--store-on-stdin", hidden=True)]
Wait = Annotated[
    float | None,
    typer.Option(
        "--wait",
        min=0.0,
        max=3600.0,
        help=(
            "Wait at most this many seconds for the hosts to report (default: the sale's patience)."
        ),
        show_default=False,
    ),
]


def _epilog(name: str, example: str) -> str:
    return f"{example}\n\n{help_table(name)}"


@sale_app.command(
    "open",
    epilog=_epilog(
        "sale open",
        "Example: 'ticketsim sale open --store postgresql://localhost/shop --strategy pg-update'",
    ),
)
def sale_open(
    store: StoreURL,
    strategy: StrategyOpt = None,
    tickets: SaleTickets = 10,
    delay: Delay = 0.1,
    timeout: Timeout = 30.0,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Open a new sale even if hosts of the store's sale have not reported.",
        ),
    ] = False,
) -> None:
    """Put fresh tickets and a new sale in the store, and print the sale's id."""
    from ticketsim.core import stores  # noqa: PLC0415 - start-up time
    from ticketsim.engine import hosts  # noqa: PLC0415 - start-up time

    at = hosts.place(store)
    chosen = strategy.value if strategy is not None else stores.NAIVE[at.kind].value
    card = hosts.open_sale(
        at, chosen, tickets, delay=delay, seed=None, timeout=timeout, replace=replace
    )
    typer.echo(card.id)


@sale_app.command(
    "start",
    epilog=_epilog("sale start", "Example: 'ticketsim sale start --store redis://localhost/0'"),
)
def sale_start(store: StoreURL, sale: SaleId = None) -> None:
    """Open the sale's gate: every buyer that joined it goes at once."""
    from ticketsim.engine import hosts  # noqa: PLC0415 - start-up time

    hosts.start_sale(hosts.place(store), sale)
    typer.echo("started")


@sale_app.command(
    "check",
    epilog=_epilog(
        "sale check", "Example: 'ticketsim sale check --store postgresql://localhost/shop --json'"
    ),
)
def sale_check(
    store: StoreURL,
    sale: SaleId = None,
    wait: Wait = None,
    json_out: Json = False,
    history: History = None,
    timeline: TimelineOpt = None,
    show_timeline: ShowTimeline = False,
) -> None:
    """Wait for every host to report, then check the sale's history as 'run' does."""
    from ticketsim.core import paths, settings  # noqa: PLC0415 - start-up time
    from ticketsim.engine import hosts  # noqa: PLC0415 - start-up time

    if wait is not None:
        settings.require_seconds("wait", wait, 0.0, settings.MAX_TIMEOUT_S)
    paths.vet(paths.output("--history", history), paths.output("--timeline", timeline))
    result = hosts.check_sale(hosts.place(store), sale, wait=wait)
    reported(result, Outputs(json_out, history, timeline, show_timeline))


@app.command(
    "buyers",
    epilog=_epilog(
        "buyers",
        "Example: 'ticketsim buyers --store postgresql://db.example/shop --count 50' on "
        "each host, then 'ticketsim sale start' anywhere.",
    ),
)
def buyers(
    store: Annotated[
        str | None, typer.Option("--store", help=StoreURL.__metadata__[0].help, show_default=False)
    ] = None,
    sale: SaleId = None,
    count: Count = 10,
    host: HostName = None,
    clock_skew: Skew = "0s",
    start_method: StartMethodOpt = None,
    board: Board = None,
    cut_folder: CutFolder = None,
    cut_here: CutHere = False,
    store_on_stdin: StoreOnStdin = False,
) -> None:
    """Join the store's sale from this host with COUNT buyers, which wait for 'sale start'."""
    import socket  # noqa: PLC0415 - start-up time

    from ticketsim.core import boards  # noqa: PLC0415 - start-up time
    from ticketsim.core import hosts as hostspecs  # noqa: PLC0415 - start-up time
    from ticketsim.core.exits import ExitCode  # noqa: PLC0415 - start-up time
    from ticketsim.core.names import StoreKind  # noqa: PLC0415 - start-up time
    from ticketsim.engine import hosts  # noqa: PLC0415 - start-up time
    from ticketsim.errors import ConfigError  # noqa: PLC0415 - start-up time

    name = host if host is not None else socket.gethostname().split(".")[0] or "host"
    if not boards.HOST_NAME.fullmatch(name):
        raise ConfigError(
            "host",
            name,
            "start with a letter or digit, then use letters, digits, '.', '_' and '-' (at most 63)",
        )
    skew = hostspecs.duration("clock_skew", clock_skew, clock_skew, signed=True)
    if store_on_stdin:
        store = hosts.store_from_stdin()
    if board is not None:
        at = hosts.Place(StoreKind.FILE, board)
    elif store is not None:
        at = hosts.place(store)
    else:
        raise BadInput("give the store that keeps the sale: --store URL")
    from ticketsim.sale.cut import CutAfterRead  # noqa: PLC0415 - start-up time

    served = hosts.serve_buyers(
        at,
        sale=sale,
        count=count,
        host=name,
        skew=skew,
        start_method=start_method_of(start_method),
        pacer=None if cut_folder is None else CutAfterRead(cut_folder, cut_here),
    )
    typer.echo(
        f"{served.host}: buyers {served.first}-{served.first + served.count - 1}: "
        f"{served.ok} got a ticket, {served.sold_out} found it sold out, "
        f"{served.unknown} unknown" + (f" ({served.stalled})" if served.stalled else "")
    )
    output.flushed(0)
    raise typer.Exit(int(ExitCode.STALLED) if served.unknown else 0)
