"""Every exit code ticketsim can end with, what each means, and which command can
return which: the one table that ``--help``, README.md and the tests read.

Kept apart from the report so that the command line can name its codes at start-up
without importing the checker.
"""

from __future__ import annotations

import textwrap
from enum import IntEnum
from typing import Final


class ExitCode(IntEnum):
    """What ``ticketsim`` exits with."""

    OK = 0  #: every invariant held
    VIOLATED = 1  #: an invariant was violated (the point of the ``none`` demo)
    BAD_INPUT = 2  #: a bad argument, path, db or store; nothing ran and the db is untouched
    #: the sale or search did not finish (stalled, cut short, buyers died unplanned)
    #: and found no certain violation
    STALLED = 3
    #: the system refused (disk full or read-only, process or file limit, a failed write,
    #: a server that is down)
    IO_ERROR = 4
    INTERNAL_ERROR = 70  #: a bug in ticketsim itself (EX_SOFTWARE)
    HUNG_UP = 129  #: ended by SIGHUP (128 + 1)
    INTERRUPTED = 130  #: ended by Ctrl-C (128 + SIGINT)
    STDOUT_CLOSED = 141  #: stdout was closed before the output was written (128 + SIGPIPE)
    TERMINATED = 143  #: ended by SIGTERM (128 + 15)


#: What each code means, in the words of ``--help`` and README.md.
MEANING: Final = {
    ExitCode.OK: "every invariant held (for a search: none of what it checked broke one)",
    ExitCode.VIOLATED: "an invariant was violated: the checker is certain of it",
    ExitCode.BAD_INPUT: (
        "bad input: an argument, a path (not a regular file, two paths naming one file, "
        "a name too long) or a db; one line on stderr names it, nothing ran, every file "
        "is as it was"
    ),
    ExitCode.STALLED: (
        "did not finish: the sale stalled, a buyer died or gave up without being killed or cut off "
        "on purpose, or a search was cut short; no certain violation was found and "
        "nothing is claimed about what was not checked"
    ),
    ExitCode.IO_ERROR: (
        "the system refused: a disk full or read-only, the process or file limit, a "
        "database server that is down or cannot be started, a SQLite file another program "
        "keeps locked; the db keeps its last good state"
    ),
    ExitCode.INTERNAL_ERROR: "a bug in ticketsim itself; --debug shows the traceback",
    ExitCode.HUNG_UP: "ended by SIGHUP; every process it started was ended",
    ExitCode.INTERRUPTED: "ended by Ctrl-C; every process it started was ended",
    ExitCode.STDOUT_CLOSED: "stdout was closed (a pipe's reader left); nothing more is said",
    ExitCode.TERMINATED: "ended by SIGTERM; every process it started was ended",
}

#: Every command can end with these: a bad argument (click refuses an unknown option
#: before the command runs), a full stdout, a bug, a signal, a closed stdout.
_ANY: Final = frozenset(
    {
        ExitCode.OK,
        ExitCode.BAD_INPUT,
        ExitCode.IO_ERROR,
        ExitCode.INTERNAL_ERROR,
        ExitCode.HUNG_UP,
        ExitCode.INTERRUPTED,
        ExitCode.STDOUT_CLOSED,
        ExitCode.TERMINATED,
    }
)
#: A sale or a search: its verdict can also be a violation, or a run that did not finish.
_JUDGED: Final = _ANY | {ExitCode.VIOLATED, ExitCode.STALLED}

#: The codes each command can return, in order.
BY_COMMAND: Final[dict[str, tuple[ExitCode, ...]]] = {
    command: tuple(sorted(codes))
    for command, codes in {
        "run": _JUDGED,
        "replay": _JUDGED,
        "check": _JUDGED,
        "explore": _JUDGED,
        "hunt": _JUDGED,
        "compare": _JUDGED,
        "show": _ANY | {ExitCode.VIOLATED},
        "reset": _ANY,
        "demo": _ANY,
        "play": _ANY | {ExitCode.VIOLATED},
        "strategies": _ANY,
        "sale open": _ANY,
        "sale start": _ANY,
        "sale check": _JUDGED,
        "buyers": _ANY | {ExitCode.STALLED},
        "exercise list": _ANY,
        "exercise show": _ANY,
        "exercise check": _JUDGED,
    }.items()
}


#: Where a command's code means more than the general words of :data:`MEANING`.
OWN_MEANING: Final[dict[str, dict[ExitCode, str]]] = {
    "compare": {
        ExitCode.OK: (
            "every strategy did what it claims: each safe one kept every invariant (the "
            "unsafe ones' violations are what the table is for)"
        ),
        ExitCode.VIOLATED: "a strategy that claims to be safe broke an invariant",
    },
    "show": {
        ExitCode.OK: "the checker finds nothing wrong in the db itself",
        ExitCode.VIOLATED: "the checker finds an inconsistency in the db",
    },
    "reset": {ExitCode.OK: "the db holds the fresh tickets"},
    "demo": {ExitCode.OK: "the lesson ran to its end, or was ended with Ctrl-D at a pause"},
    "play": {
        ExitCode.OK: "the game ended with the sale intact (held, quit, or not over yet)",
        ExitCode.VIOLATED: "the order played broke an invariant: the level is won",
    },
    "strategies": {ExitCode.OK: "the table was printed"},
    "sale open": {ExitCode.OK: "the store holds the new sale; its id is printed"},
    "sale start": {ExitCode.OK: "the sale is open: the buyers waiting at its gate go"},
    "exercise check": {
        ExitCode.OK: "every interleaving of the fix kept every invariant",
        ExitCode.VIOLATED: "an interleaving breaks the fix: the output says which, and where",
    },
    "buyers": {
        ExitCode.OK: "every buyer of this host learnt its outcome and recorded it in the store",
        ExitCode.STALLED: (
            "some buyer of this host has no outcome (the sale never started, or stalled); "
            "'sale check' says what the whole sale did"
        ),
    },
}


def meaning(command: str, code: ExitCode) -> str:
    """What ``code`` means when ``command`` exits with it."""
    return OWN_MEANING.get(command, {}).get(code, MEANING[code])


def help_table(command: str) -> str:
    """The "Exit codes" paragraph of ``command``'s ``--help``: one code a line.

    The ``\\b`` line tells click not to rewrap it.
    """
    rows = [
        textwrap.fill(
            meaning(command, code),
            width=78,
            initial_indent=f"  {int(code):>3}  ",
            subsequent_indent=" " * 7,
        )
        for code in BY_COMMAND[command]
    ]
    return "\b\nExit codes:\n" + "\n".join(rows)
