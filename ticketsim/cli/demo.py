"""``demo``: the guided lesson, one real sale a step, with a pause between steps."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ticketsim.cli import output
from ticketsim.cli.options import Db, Yes  # noqa: TC001 - typer reads them
from ticketsim.cli.root import command
from ticketsim.core.names import DEFAULT_DB

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rich.console import Console

    from ticketsim.core.names import StoreKind
    from ticketsim.search.demo import Lesson


@command(epilog="Example: 'ticketsim demo --yes' runs the whole lesson without pausing.")
def demo(yes: Yes = False, db: Db = DEFAULT_DB) -> None:
    """A guided lesson: the race, the lock and its cost, the Value misconception, the seat
    map, two programs on one db, a killed lock holder, write skew in PostgreSQL, a Redis
    lock whose lease runs out. Each step is a real sale."""
    from ticketsim.core import paths  # noqa: PLC0415 - start-up time
    from ticketsim.engine.databases import PrivateServers  # noqa: PLC0415 - start-up time
    from ticketsim.search.demo import lessons  # noqa: PLC0415

    paths.vet(paths.db(db, lock=True))  # lessons 5 and 6 use a file lock
    console = output.console()
    with PrivateServers() as servers:
        _lessons(console, lessons(db), servers, pause=not yes and output.typed_into())


def _lessons(
    console: Console, plan: tuple[Lesson, ...], servers: Mapping[StoreKind, str], *, pause: bool
) -> None:
    """Each lesson in turn, its database sales on ``servers``; Ctrl-D at a pause ends it."""
    from ticketsim.search.demo import run_step  # noqa: PLC0415 - start-up time
    from ticketsim.views.render import report_view  # noqa: PLC0415 - start-up time

    for lesson in plan:
        console.rule(lesson.title)
        console.print(lesson.before)
        outcome = run_step(lesson, servers)
        if outcome.unavailable is not None:
            console.print(f"Skipped: {outcome.unavailable}", style="yellow")
            continue
        for report in outcome.reports:
            console.print(report_view(report))
        for strategy, sold, ledger in outcome.programs:
            console.print(
                f"two programs with {strategy}: {sold} buyer(s) told they got the last "
                f"ticket; {ledger} sale(s) in the shared ledger",
                style="bold green" if sold == 1 else "bold red",
            )
        console.print(lesson.after, style="italic")
        if pause and not _next_step():
            console.print("Lesson ended at your request.", style="italic")
            return
    console.rule("End of the lesson")


def _next_step() -> bool:
    """Wait for Enter; ``False`` when the student ends the lesson with Ctrl-D.

    ``input`` rather than click's prompt, which turns Ctrl-C and Ctrl-D alike into an
    ``Abort``: Ctrl-C here ends as any interrupt does, exit 130 and one line.
    """
    try:
        input("Enter for the next step ")
    except EOFError:
        return False
    return True
