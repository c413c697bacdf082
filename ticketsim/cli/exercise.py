"""``exercise``: broken buyers for students to fix, each fix checked over every
interleaving, with a hint at the step where it breaks."""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - typer reads the annotations at run time
from typing import Annotated

import typer

from ticketsim.cli import output
from ticketsim.cli.root import app
from ticketsim.core.exits import help_table

exercise_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help=(
        "Broken buyers for students to fix: list them, show one, and check a fix over "
        "every interleaving of its steps."
    ),
)
app.add_typer(exercise_app, name="exercise")

Number = Annotated[int, typer.Argument(min=1, help="The exercise's number (see 'list').")]


@exercise_app.command("list", epilog=help_table("exercise list"))
def list_() -> None:
    """The exercises, one a line."""
    from ticketsim.search.exercises import EXERCISES  # noqa: PLC0415 - start-up time

    for item in EXERCISES:
        typer.echo(f"{item.number}. {item.title}")


@exercise_app.command("show", epilog=help_table("exercise show"))
def show(number: Number) -> None:
    """What to fix, and the broken buyer to start from (save it as a .py file)."""
    from ticketsim.search.exercises import exercise  # noqa: PLC0415 - start-up time

    item = exercise(number)
    typer.echo(f"# Exercise {item.number}: {item.title}\n#")
    for line in _wrapped(item.story):
        typer.echo(f"# {line}")
    typer.echo(f"# Check your fix: ticketsim exercise check {item.number} FILE.py\n")
    typer.echo(item.broken, nl=False)


def _wrapped(text: str) -> list[str]:
    import textwrap  # noqa: PLC0415 - start-up time

    return textwrap.wrap(text, 76)


@exercise_app.command("check", epilog=help_table("exercise check"))
def check(
    number: Number,
    file: Annotated[Path, typer.Argument(help="Your buyer: a .py file defining buy(path, buyer).")],
) -> None:
    """Play your buyer in every interleaving of its marked steps; say where it breaks."""
    from ticketsim.core.exits import ExitCode  # noqa: PLC0415 - start-up time
    from ticketsim.core.printable import line  # noqa: PLC0415 - start-up time
    from ticketsim.search.exercises import PREEMPTIONS, check_file  # noqa: PLC0415

    checked = check_file(number, file)
    if checked.broken is not None and checked.report is not None:
        # The student's words (what its buyer raised, its marks' names) are shown
        # escaped, as a db's names are.
        typer.echo(line(checked.report.verdict))
        for event in checked.broken.result.history:
            if event.error is not None:  # what the buyer itself raised, in its words
                typer.echo(line(f"buyer-{event.buyer}: {event.note}"))
        typer.echo(line(f"it breaks in: {checked.broken.schedule()}"))
        typer.echo(f"hint: {checked.hint}")
        output.flushed(0)
        raise typer.Exit(int(checked.report.exit_code))
    if not checked.complete:
        typer.echo(
            f"{checked.runs} interleavings kept every invariant, but not all of them were "
            "played: nothing is claimed about the rest"
        )
        raise typer.Exit(int(ExitCode.STALLED))
    typer.echo(
        f"every interleaving of your buyer with at most {PREEMPTIONS} preemptions "
        f"({checked.runs}) kept every invariant: well done"
    )
