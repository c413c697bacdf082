"""``show`` and ``reset``: the ticket db itself, read and checked, or made anew."""

from __future__ import annotations

import typer

from ticketsim.cli import output
from ticketsim.cli.options import Db, EventName, FreshTickets, Json  # noqa: TC001 - typer reads them
from ticketsim.cli.root import command
from ticketsim.core import db as dbfile
from ticketsim.core.exits import ExitCode
from ticketsim.core.names import DEFAULT_DB


@command(epilog="Example: 'ticketsim show --json' prints the db and any problem in it.")
def show(db: Db = DEFAULT_DB, json_out: Json = False) -> None:
    """Print the db: event, tickets, remaining, the ledger, and any inconsistency in it."""
    from ticketsim.analysis.checker import check_db  # noqa: PLC0415 - start-up time
    from ticketsim.core import paths  # noqa: PLC0415 - start-up time
    from ticketsim.views.render import SHOW_NOTE, db_view  # noqa: PLC0415 - start-up time

    paths.vet(paths.source("--db", db, "create it with 'ticketsim reset' or 'ticketsim run'"))
    ticket_db = dbfile.load(db)
    problems = check_db(ticket_db)
    if json_out:
        output.echo_json(
            {
                **ticket_db.to_json(),
                "problems": [p.to_json() for p in problems],
                "note": None if problems else SHOW_NOTE,
            }
        )
    else:
        output.console().print(db_view(ticket_db, problems, str(db)))
    raise typer.Exit(ExitCode.VIOLATED if problems else ExitCode.OK)


@command(epilog="Example: 'ticketsim reset --tickets 100' puts 100 fresh tickets on sale.")
def reset(
    tickets: FreshTickets = 10,
    event: EventName = dbfile.DEFAULT_EVENT,
    db: Db = DEFAULT_DB,
    json_out: Json = False,
) -> None:
    """Reset the db to TICKETS fresh tickets and an empty ledger."""
    from ticketsim.core import paths, settings  # noqa: PLC0415 - start-up time
    from ticketsim.views.render import db_view  # noqa: PLC0415 - start-up time

    paths.vet(paths.db(db))
    settings.require_int("tickets", tickets, 0, settings.MAX_TICKETS, "tickets")
    fresh = dbfile.TicketDB.fresh(tickets, event=event)
    dbfile.make_room(db)  # as a sale resets it
    dbfile.write_atomic(db, fresh)
    if json_out:
        output.echo_json(fresh.to_json())
    else:
        output.console().print(db_view(fresh, [], str(db)))
