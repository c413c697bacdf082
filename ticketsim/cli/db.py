"""``show`` and ``reset``: the ticket db itself, read and checked, or made anew."""

from __future__ import annotations

import typer

from ticketsim.cli import output
from ticketsim.cli.options import (  # noqa: TC001 - typer reads them
    Db,
    EventName,
    FreshTickets,
    Json,
    Store,
)
from ticketsim.cli.root import command
from ticketsim.core import db as dbfile
from ticketsim.core.exits import ExitCode
from ticketsim.core.names import DEFAULT_DB


@command(epilog="Example: 'ticketsim show --json' prints the db and any problem in it.")
def show(db: Db = DEFAULT_DB, store: Store = None, json_out: Json = False) -> None:
    """Print the db (or --store): event, tickets, remaining, the ledger, and any
    inconsistency in it."""
    from ticketsim.analysis.checker import check_db  # noqa: PLC0415 - start-up time
    from ticketsim.core import paths  # noqa: PLC0415 - start-up time
    from ticketsim.views.render import SHOW_NOTE, db_view  # noqa: PLC0415 - start-up time

    if store is not None:
        from ticketsim.core import stores  # noqa: PLC0415 - start-up time
        from ticketsim.engine.databases import user_store  # noqa: PLC0415 - start-up time

        ticket_db = user_store(store, reads_only=True).snapshot()
        name = stores.parse(store).shown
    else:
        paths.vet(paths.source("--db", db, "create it with 'ticketsim reset' or 'ticketsim run'"))
        ticket_db, name = dbfile.load(db), str(db)
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
        output.console().print(db_view(ticket_db, problems, name))
    raise typer.Exit(ExitCode.VIOLATED if problems else ExitCode.OK)


@command(epilog="Example: 'ticketsim reset --tickets 100' puts 100 fresh tickets on sale.")
def reset(
    tickets: FreshTickets = 10,
    event: EventName = dbfile.DEFAULT_EVENT,
    db: Db = DEFAULT_DB,
    store: Store = None,
    json_out: Json = False,
) -> None:
    """Reset the db (or --store, only what ticketsim made there) to TICKETS fresh
    tickets and an empty ledger."""
    from ticketsim.core import paths, settings  # noqa: PLC0415 - start-up time
    from ticketsim.views.render import db_view  # noqa: PLC0415 - start-up time

    settings.require_int("tickets", tickets, 0, settings.MAX_TICKETS, "tickets")
    settings.require_text("event", event)
    fresh = dbfile.TicketDB.fresh(tickets, event=event)
    if store is not None:
        from ticketsim.core import stores  # noqa: PLC0415 - start-up time
        from ticketsim.engine.databases import user_store  # noqa: PLC0415 - start-up time

        name = stores.parse(store).shown
        user_store(store).load(fresh)
    else:
        paths.vet(paths.db(db))
        dbfile.make_room(db)  # as a sale resets it
        dbfile.write_atomic(db, fresh)
        name = str(db)
    if json_out:
        output.echo_json(fresh.to_json())
    else:
        output.console().print(db_view(fresh, [], name))
