"""``play``: the student is the scheduler of a small sale, one buyer's step per key."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ticketsim.cli import output
from ticketsim.cli.options import TimelineOpt
from ticketsim.cli.options import _path_arg as path_arg
from ticketsim.cli.root import command

if TYPE_CHECKING:
    from ticketsim.search.play import Level, State

SaveOpt = Annotated[
    Path | None,
    typer.Option(
        "--save",
        help="Write the game's moves and its two-step schedule here (JSON), when it is won.",
        parser=path_arg,
        metavar="PATH",
    ),
]
LevelOpt = Annotated[int, typer.Option("--level", help="The level to play (see --list).")]
ListOpt = Annotated[bool, typer.Option("--list", help="List the levels and exit.")]
MovesOpt = Annotated[
    str | None,
    typer.Option(
        "--moves",
        help="Play these moves (buyer numbers, like '1 1 2 2') without a terminal, "
        "and print the screen and the outcome.",
    ),
]

#: Clear the screen and put the cursor home: the whole screen is redrawn on every key.
_CLEAR = "\x1b[H\x1b[2J"


@command(
    epilog="Example: 'ticketsim play --level 2' in a terminal; 'ticketsim play --level 1 "
    '--moves "1 1 2 2 1 1 2 2"\' plays those moves without one.'
)
def play(
    level: LevelOpt = 1,
    list_levels: ListOpt = False,
    moves: MovesOpt = None,
    save: SaveOpt = None,
    timeline: TimelineOpt = None,
) -> None:
    """A game: you are the scheduler. Pick which buyer takes its next step until the sale
    oversells, loses an update, sells a seat twice or reads a torn db; protected levels
    show why no order can.

    Keys: 1-9 move a buyer, u undo, r restart, h or ? help, q quit. A won game prints the
    'ticketsim replay' command that plays the same order with real processes."""
    from ticketsim.cli.errors import BadInput  # noqa: PLC0415 - start-up time
    from ticketsim.search import play as game  # noqa: PLC0415 - start-up time
    from ticketsim.views.play import levels_lines  # noqa: PLC0415 - start-up time

    if list_levels:
        for line in levels_lines():
            typer.echo(line)
        return
    try:
        chosen = game.level(level)
    except ValueError as exc:
        raise BadInput(f"--level={level}: there are levels 1 to {len(game.LEVELS)}; "
                       "see 'ticketsim play --list'") from exc  # fmt: skip
    _vet_outputs(save, timeline)
    if moves is not None:
        state = _scripted(chosen, moves)
        final = False
    else:
        if not output.typed_into():
            raise BadInput(
                "stdin is not a terminal: play reads its keys from one; run it in a "
                "terminal, or give the moves with --moves '1 1 2 2'"
            )
        state, final = _interactive(chosen)
    code = _ending(chosen, state, save, timeline, shown=final)
    raise typer.Exit(code)


def _vet_outputs(save: Path | None, timeline: Path | None) -> None:
    """Refuse the output paths before the game, not after it is won: a path not fit to
    write, or a --save that names a file ticketsim did not write."""
    import json  # noqa: PLC0415 - start-up time

    from ticketsim.cli.errors import BadInput  # noqa: PLC0415 - start-up time
    from ticketsim.core import paths  # noqa: PLC0415 - start-up time

    paths.vet(paths.output("--save", save), paths.output("--timeline", timeline))
    if save is not None and save.exists():
        try:
            saved = json.loads(save.read_text(encoding="utf-8"))
            ours = isinstance(saved, dict) and "ticketsim_play" in saved
        except (OSError, ValueError):
            ours = False
        if not ours:
            raise BadInput(
                f"--save={save}: the file exists and is not a game ticketsim saved; "
                "give a new path, or move the file away"
            )


def _scripted(level: Level, moves: str) -> State:
    """The state after ``moves``; a bad or impossible move is refused (exit 2)."""
    import re  # noqa: PLC0415 - start-up time

    from ticketsim.cli.errors import BadInput  # noqa: PLC0415 - start-up time
    from ticketsim.search import play as game  # noqa: PLC0415 - start-up time

    state = game.start(level)
    for index, token in enumerate(t for t in re.split(r"[\s,]+", moves.strip()) if t):
        where = f"--moves={moves!r}: move {index + 1} ({token!r})"
        # isdigit() takes '²' too, which int() refuses.
        if not (token.isascii() and token.isdigit()) or not 1 <= int(token) <= level.actors:
            raise BadInput(f"{where} is not a buyer's number: give numbers 1 to {level.actors}")
        if game.over(level, state):
            raise BadInput(f"{where} comes after the game ended at move {index}; drop the rest")
        why = game.blocked(level, state, int(token))
        if why is not None:
            raise BadInput(f"{where}: {level.name_of(int(token))} cannot move ({why})")
        state = game.advance(level, state, int(token))
    return state


def _message(level: Level, state: State) -> str:
    """What the screen says under the buyers."""
    from ticketsim.search import play as game  # noqa: PLC0415 - start-up time

    broke = game.broken(level, state)
    if broke:
        return "You broke the sale: " + "; ".join(b.kind for b in broke) + "."
    if game.over(level, state):
        if level.protected:
            return "The sale held. " + _proof(level)
        return "The sale held this time. Try another order: u undo, r restart."
    if state.note:
        return state.note
    if not state.moves:
        return "Your move: press a buyer's number."
    return ""


def _proof(level: Level) -> str:
    from ticketsim.search import play as game  # noqa: PLC0415 - start-up time

    found, states = game.search(level)
    if found is not None:  # a level marked protected that is not: say so, never claim it
        return "Yet some order breaks it: " + " ".join(map(str, found))
    return (
        f"No order of these steps breaks it (all {states} states they can reach were "
        f"checked), because {level.why_safe}"
    )


def _interactive(level: Level) -> tuple[State, bool]:
    """Play in the terminal until the sale breaks, or the student quits (q, Ctrl-D, or
    the end of stdin); the last state, and whether its screen is still shown."""
    import termios  # noqa: PLC0415 - only in a terminal
    import tty  # noqa: PLC0415 - only in a terminal

    from ticketsim.search import play as game  # noqa: PLC0415 - start-up time
    from ticketsim.views.play import help_lines, screen  # noqa: PLC0415 - start-up time

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    # cbreak, not raw: a key arrives without Enter, and Ctrl-C still interrupts.
    tty.setcbreak(fd)
    state, said, helping = game.start(level), "", False
    try:
        while True:
            lines = (
                help_lines(level)
                if helping
                else screen(level, state, said or _message(level, state))
            )
            _draw(lines)
            if game.broken(level, state):
                return state, True
            try:
                key = os.read(fd, 1).decode("ascii", "replace").lower()
            except OSError:  # the terminal went away (a pty whose other end closed)
                key = ""
            on_screen, said, helping = not helping, "", False
            if key in ("", "q", "\x04"):
                return state, on_screen
            if key in ("h", "?"):
                helping = True
            else:
                state, said = _key(level, state, key)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _key(level: Level, state: State, key: str) -> tuple[State, str]:
    """The game after ``key`` (not help, not quit), and what to say about it."""
    from ticketsim.search import play as game  # noqa: PLC0415 - start-up time

    if key == "u":
        return (game.undo(level, state) if state.moves else state), ""
    if key == "r":
        return game.start(level), ""
    if not (key.isdigit() and 1 <= int(key) <= level.actors):
        return state, f"No such key {key!r}: press 1 to {level.actors}, or h for help."
    if game.over(level, state):
        return state, "The sale is over: u undo, r restart, q quit."
    why = game.blocked(level, state, int(key))
    if why is not None:
        return state, f"{level.name_of(int(key))} cannot move: {why}."
    return game.advance(level, state, int(key)), ""


def _draw(lines: list[str]) -> None:
    sys.stdout.write(_CLEAR + "\n".join(lines) + "\n")
    sys.stdout.flush()


def _ending(
    level: Level, state: State, save: Path | None, timeline: Path | None, *, shown: bool
) -> int:
    """Say how the game ended; for a won one, its replay, saved and drawn as asked. The
    exit code: 1 when the sale broke (as for any sale that breaks), else 0."""
    import textwrap  # noqa: PLC0415 - start-up time

    from ticketsim.core.exits import ExitCode  # noqa: PLC0415 - start-up time
    from ticketsim.search import play as game  # noqa: PLC0415 - start-up time
    from ticketsim.views.play import screen  # noqa: PLC0415 - start-up time

    if not shown or not sys.stdout.isatty():
        for line in screen(level, state, _message(level, state)):
            typer.echo(line)
    played = " ".join(map(str, state.moves)) or "none"
    broke = game.broken(level, state)
    if not broke:
        held = "the game is not over" if not game.over(level, state) else "the sale held"
        typer.echo(f"{len(state.moves)} move(s) played ({played}); {held}.")
        for name, path in (("--save", save), ("--timeline", timeline)):
            if path is not None:
                typer.echo(f"{name}: nothing written: only a won game is saved or drawn.")
        return int(ExitCode.OK)
    typer.echo(f"You broke the sale in {len(state.moves)} moves: {played}")
    for each in broke:
        typer.echo(textwrap.fill(f"- {each.kind}: {each.explanation}", 79, subsequent_indent="  "))
    schedule, why_not = game.faithful(level, state.moves)
    command_line = None if schedule is None else game.replay_command(level, schedule)
    if schedule is None:
        typer.echo(textwrap.fill(f"No replay with real processes: {why_not}", 79))
    else:
        typer.echo(f"As ticketsim's two-step schedule: {schedule}")
        typer.echo("Play it again with real processes:")
        typer.echo(command_line)
    if save is not None:
        text = None if schedule is None else str(schedule)
        kinds = tuple(b.kind for b in broke)
        _save(save, game.Saved(level.number, state.moves, text, command_line, kinds))
    if timeline is not None:
        if schedule is None:
            typer.echo("--timeline: nothing written: this game has no replay to draw.")
        else:
            _timeline(level, schedule, timeline)
    return int(ExitCode.VIOLATED)


def _save(path: Path, saved: object) -> None:
    import json  # noqa: PLC0415 - start-up time

    from ticketsim.core import paths  # noqa: PLC0415 - start-up time
    from ticketsim.search.play import Saved  # noqa: PLC0415 - start-up time

    assert isinstance(saved, Saved)
    paths.write_output("--save", path, json.dumps(saved.to_json(), indent=2) + "\n")
    output.wrote("game", path, data=False)


def _timeline(level: Level, schedule: object, path: Path) -> None:
    """Run the replay with real processes, in a db of its own, and draw it."""
    import tempfile  # noqa: PLC0415 - start-up time
    from pathlib import Path  # noqa: PLC0415 - start-up time

    from ticketsim.analysis.report import build_report  # noqa: PLC0415 - start-up time
    from ticketsim.core.schedule import Schedule  # noqa: PLC0415 - start-up time
    from ticketsim.search import play as game  # noqa: PLC0415 - start-up time
    from ticketsim.views.timeline import write_timeline  # noqa: PLC0415 - start-up time

    assert isinstance(schedule, Schedule)
    with tempfile.TemporaryDirectory(prefix="ticketsim-play-") as folder:
        result = game.replay(level, schedule, Path(folder) / "tickets.json")
    report = build_report(result)
    typer.echo(f"The real sale: {report.verdict}")
    write_timeline(path, result, report)
    output.wrote("timeline", path, data=False)
