"""The screens of ``ticketsim play``: plain text, at most 24 lines of 80 columns.

Plain text rather than rich: the game redraws the whole screen on every key, over ssh
too, and a screen of plain lines is what the pseudo-terminal tests read back.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Final

from ticketsim.search import play as game

if TYPE_CHECKING:
    from ticketsim.search.play import Level, State

WIDTH: Final = 80
HEIGHT: Final = 24
#: The office's program repeats per request: only the request at hand is shown.
_OFFICE_STEPS: Final = 5


def _fit(line: str, width: int = WIDTH - 1) -> str:
    return line if len(line) <= width else line[: width - 3] + "..."


def keys_line(level: Level) -> str:
    last = level.actors
    return f"keys: 1-{last} move  u undo  r restart  h help  q quit"


def _view(level: Level, state: State, actor: int) -> str:
    """What ``actor`` knows: what it saw, read, decided, was told."""
    me = state.actor(actor)
    parts = []
    if me.serving is not None:
        parts.append(f"serving buyer {me.serving}")
    if me.saw is not None:
        parts.append(f"saw {me.saw}")
    if me.read is not None:
        parts.append(f"{'counted' if level.isolation else 'read'} {me.read}")
    if me.refused and me.told is None and me.serving is not None:
        parts.append("decided: sold out")
    elif me.seat is not None and me.told is None:
        parts.append(f"will write {me.read - 1 if me.read else 0}, seat {me.seat}")
    if me.retries:
        parts.append(f"retried {me.retries}x")
    if me.told is not None and me.serving is None:
        parts.append(f"told: seat {me.told}" if me.told else "told: sold out")
    return ", ".join(parts) or "has not started"


def _program_lines(level: Level, state: State, actor: int) -> list[str]:
    program = level.program_of(actor)
    pc = state.actor(actor).pc
    first = 0
    if level.office and actor == level.buyers + 1:
        first = min(pc // _OFFICE_STEPS, level.buyers - 1) * _OFFICE_STEPS
        program = program[first : first + _OFFICE_STEPS]
    why = game.blocked(level, state, actor)
    lines = []
    for index, step in enumerate(program, start=first):
        skipped = index in state.actor(actor).skipped
        mark = "  --" if skipped else "  ok" if index < pc else "  ->" if index == pc else "    "
        text = f"{mark} {step.op.value:<8} {step.code}"
        if index == pc and why is not None:
            text += f"   [{why}]"
        lines.append(_fit(text))
    return lines


def _db_line(level: Level, state: State) -> str:
    ledger = " ".join(f"b{b}:s{s}" for b, s in state.ledger) or "empty"
    what = "sales rows" if level.isolation else "ledger"
    remaining = "(emptied by open('w'))" if state.emptied else str(state.remaining)
    line = f"db: remaining={remaining}  {what}: {ledger}"
    if level.office:
        line += f"  requests: {' '.join(f'b{b}' for b in state.queue) or 'none'}"
    elif any(s.op is game.Op.LOCK for s in level.program):
        held = " and ".join(f"buyer {h}" for h in state.holders) or "free"
        kind = "semaphore" if level.capacity > 1 else "lock"
        line += f"  {kind}: {held}"
    return _fit(line)


def screen(level: Level, state: State, message: str = "") -> list[str]:
    """The whole game screen: the level, the db, every buyer's view and program, the
    last message, the keys. At most :data:`HEIGHT` lines of :data:`WIDTH` columns."""
    lines = [_fit(f"ticketsim play - level {level.number}/{len(game.LEVELS)}: {level.title}")]
    lines += textwrap.wrap(level.intro, WIDTH - 1)[:2]
    sold = " ".join(f"b{b}:s{s}" for b, s in state.sold) or "nobody yet"
    lines.append(_db_line(level, state))
    lines.append(_fit(f"told a seat: {sold}   tickets on sale: {level.tickets}"))
    for actor in range(1, level.actors + 1):
        lines.append(_fit(f"[{actor}] {level.name_of(actor)}: {_view(level, state, actor)}"))
        lines += _program_lines(level, state, actor)
    room = HEIGHT - 1 - len(lines) - 1
    said = textwrap.wrap(message, WIDTH - 1) if message else []
    lines += said[: max(room, 1)]
    lines.append(keys_line(level))
    return lines[:HEIGHT]


def help_lines(level: Level) -> list[str]:
    return [
        f"ticketsim play - how to play level {level.number}",
        "",
        "You are the scheduler. Each buyer runs the program shown under it, one step",
        "at a time; press a buyer's number to let it take its next step ('->').",
        "A buyer waiting for a lock, a semaphore or an answer cannot move.",
        "Win by making the sale break an invariant: sell more tickets than there are",
        "(oversold), sell one seat twice, lose a sale (lost update), or read a",
        "half-written db (torn read). Some levels are protected: try anyway, and the",
        "game says why no order breaks them.",
        "",
        "  1-9  move that buyer      u  undo the last move    r  restart",
        "  h ?  this help            q  quit",
        "",
        "Any key goes back to the game.",
    ]


def levels_lines() -> list[str]:
    rows = []
    for each in game.LEVELS:
        real = each.strategy or "no real strategy"
        goal = "protected" if each.protected else "break it"
        rows.append(_fit(f"{each.number:>2}  {each.title:<32} {goal:<10} {real}"))
    return rows
