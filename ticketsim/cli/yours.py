"""``--buyer``: ``run``, ``replay`` and ``explore`` of the user's own buyer function,
by import path, reported as ticketsim's own sales are."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, NamedTuple, NoReturn

import typer

from ticketsim.cli import output

if TYPE_CHECKING:
    from pathlib import Path

    from ticketsim.engine.yours import Played, Race

BuyerOpt = Annotated[
    str | None,
    typer.Option(
        "--buyer",
        help=(
            "Your own buyer, as package.module:function: buy(handle, buyer) returns the seat "
            "it sold or None, its steps marked with ticketsim.race.step (see README)."
        ),
        show_default=False,
    ),
]
SetupOpt = Annotated[
    str | None,
    typer.Option(
        "--setup",
        help="With --buyer: module:function that makes a fresh store and returns its handle.",
        show_default=False,
    ),
]
SoldOpt = Annotated[
    str | None,
    typer.Option(
        "--sold",
        help="With --buyer: module:function(handle) listing (buyer, seat) for every sale made.",
        show_default=False,
    ),
]


class Yours(NamedTuple):
    """The user's buyer as the command line named it."""

    buyer: str
    setup: str | None
    sold: str | None

    def race(self, buyers: int, tickets: int, start_method: str | None, timeout: float) -> Race:
        from ticketsim.core import settings  # noqa: PLC0415 - start-up time
        from ticketsim.engine import yours  # noqa: PLC0415 - start-up time

        settings.require_int("buyers", buyers, 1, settings.PROCESS_PER_BUYER_MAX, "buyers")
        settings.require_int("tickets", tickets, 0, settings.MAX_TICKETS, "tickets")
        settings.require_timeout("timeout", timeout)
        if self.setup is None:
            from ticketsim.cli.errors import BadInput  # noqa: PLC0415 - start-up time

            raise BadInput("--buyer needs --setup module:function, which makes its store")
        return yours.Race(
            yours.load_function("buyer", self.buyer),
            yours.load_function("setup", self.setup),
            buyers=buyers,
            tickets=tickets,
            sold=None if self.sold is None else yours.load_function("sold", self.sold),
            name=self.buyer,
            start_method=start_method,
            timeout=timeout,
        )

    def replay_command(self, played: Played, race: Race) -> str:
        import shlex  # noqa: PLC0415 - start-up time

        words = ["ticketsim", "replay", "--buyer", self.buyer, "--setup", self.setup or ""]
        words += ["--sold", self.sold] if self.sold else []
        words += ["--buyers", str(race.buyers), "--tickets", str(race.tickets)]
        words += ["--timeout", f"{race.timeout:g}"]
        words += ["--start-method", race.start_method] if race.start_method else []
        words += ["--schedule", " ".join(str(b) for b in played.order)]
        return shlex.join(words)


def refuse_others(given: dict[str, bool]) -> None:
    """Options of ticketsim's own sales make no sense with --buyer."""
    from ticketsim.cli.errors import BadInput  # noqa: PLC0415 - start-up time

    others = [name for name, on in given.items() if on]
    if others:
        raise BadInput(
            f"{', '.join(others)} set up ticketsim's own sales; with --buyer your code is the "
            "sale: drop them"
        )


def reported_yours(
    yours: Yours,
    race: Race,
    played: Played,
    json_out: bool,
    *,
    searched: str = "",
    history: Path | None = None,
    free: bool = False,
) -> NoReturn:
    """The sale's report, the schedule it took, and how to play it again; its exit code.
    With ``history``, the sale's history is saved there (``ticketsim check`` reads it)."""
    from ticketsim.analysis import history as historyfile  # noqa: PLC0415 - start-up time
    from ticketsim.analysis.report import build_report  # noqa: PLC0415 - start-up time

    report = build_report(played.result)
    # A free sale's order is the order its marks arrived in, while the buyers ran at
    # once: no replay of it is exact, so none is offered.
    again = None if free else yours.replay_command(played, race)
    extra: dict[str, str | None] = {"schedule_played": played.schedule(), "replay": again}
    if searched:
        extra["searched"] = searched
    output.show_report(report, json_out, **extra)
    if history is not None:  # after the report: a write that fails loses nothing more
        historyfile.save(history, played.result)
        output.wrote("history", history, data=json_out)
    if not json_out:
        from ticketsim.core.printable import line  # noqa: PLC0415 - start-up time

        # The marks' names are the user's code's: shown with their control characters
        # (and what no encoding can write) escaped, as a db's names are.
        if searched:
            typer.echo(line(searched))
        if free:
            typer.echo(line(f"marks, in the order they arrived: {played.schedule()}"))
        else:
            typer.echo(line(f"schedule: {played.schedule()}"))
            typer.echo(line(f"play it again: {again}"))
    raise typer.Exit(int(report.exit_code))
