"""``strategies``: what each strategy protects, as the catalog claims it."""

from __future__ import annotations

from ticketsim.cli import output
from ticketsim.cli.options import Json  # noqa: TC001 - typer reads it
from ticketsim.cli.root import command


@command(
    "strategies",
    epilog="Example: 'ticketsim strategies --json' for the same table as data.",
)
def list_strategies(json_out: Json = False) -> None:
    """What each strategy protects (every yes and no is checked by the test suite)."""
    from ticketsim.core.catalog import (  # noqa: PLC0415 - start-up time
        CATALOG,
        CLAIM_TITLES,
        WORLDS,
    )
    from ticketsim.views.render import strategies_view  # noqa: PLC0415 - start-up time

    rows = [info.describe() for info in CATALOG.values()]
    # Threads' and tasks' strategies claim what their tests observe, and no more: safe
    # or not; the columns of killed and separate programs are about buyer processes.
    rows += [
        {key: value for key, value in info.describe().items() if key not in CLAIM_TITLES}
        for info in WORLDS.values()
    ]
    if json_out:
        output.echo_json(rows)
    else:
        output.console().print(strategies_view(rows))
