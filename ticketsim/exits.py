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
    BAD_INPUT = 2  #: a bad argument, path or db; nothing ran and the db is untouched
    #: the sale or search did not finish (stalled, cut short, buyers died unplanned)
    #: and found no certain violation
    STALLED = 3
    #: the system refused (disk full or read-only, process or file limit, a failed write)
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
        "did not finish: the sale stalled, a buyer died or gave up without being killed "
        "on purpose, or a search was cut short; no certain violation was found and "
        "nothing is claimed about what was not checked"
    ),
    ExitCode.IO_ERROR: (
        "the system refused: a disk full or read-only, the process or file limit; the "
        "db keeps its last good state"
    ),
    ExitCode.INTERNAL_ERROR: "a bug in ticketsim itself; --debug shows the traceback",
    ExitCode.HUNG_UP: "ended by SIGHUP; every process it started was ended",
    ExitCode.INTERRUPTED: "ended by Ctrl-C; every process it started was ended",
    ExitCode.STDOUT_CLOSED: "stdout was closed (a pipe's reader left); nothing more is said",
    ExitCode.TERMINATED: "ended by SIGTERM; every process it started was ended",
}

#: Every command can end with these: a bug, a signal, a closed stdout.
_ANY: Final = (
    ExitCode.INTERNAL_ERROR,
    ExitCode.HUNG_UP,
    ExitCode.INTERRUPTED,
    ExitCode.STDOUT_CLOSED,
    ExitCode.TERMINATED,
)
_SALE: Final = (
    ExitCode.OK,
    ExitCode.VIOLATED,
    ExitCode.BAD_INPUT,
    ExitCode.STALLED,
    ExitCode.IO_ERROR,
)

#: The codes each command can return.
BY_COMMAND: Final[dict[str, tuple[ExitCode, ...]]] = {
    "run": (*_SALE, *_ANY),
    "replay": (*_SALE, *_ANY),
    "check": (*_SALE, *_ANY),
    "explore": (*_SALE, *_ANY),
    "hunt": (*_SALE, *_ANY),
    "compare": (ExitCode.OK, ExitCode.BAD_INPUT, ExitCode.IO_ERROR, *_ANY),
    "show": (ExitCode.OK, ExitCode.VIOLATED, ExitCode.BAD_INPUT, ExitCode.IO_ERROR, *_ANY),
    "reset": (ExitCode.OK, ExitCode.BAD_INPUT, ExitCode.IO_ERROR, *_ANY),
    "demo": (ExitCode.OK, ExitCode.BAD_INPUT, ExitCode.IO_ERROR, *_ANY),
    "strategies": (ExitCode.OK, *_ANY),
}


def help_table(command: str) -> str:
    """The "Exit codes" paragraph of ``command``'s ``--help``: one code a line.

    The ``\\b`` line tells click not to rewrap it.
    """
    rows = [
        textwrap.fill(
            MEANING[code], width=78, initial_indent=f"  {int(code):>3}  ", subsequent_indent=" " * 7
        )
        for code in BY_COMMAND[command]
    ]
    return "\b\nExit codes:\n" + "\n".join(rows)
