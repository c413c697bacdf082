"""Where the command line's output goes: rich consoles made on first use, one-line
messages on stderr, and a stdout that may be closed at start or whose reader may leave.

A closed stdout ends the command quietly with exit 141, as a shell expects of a program
killed by SIGPIPE; a full or failing one is the machine's fault (exit 4).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import sys
from typing import TYPE_CHECKING, Any, Final, NoReturn

import typer

from ticketsim.core.exits import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

    from ticketsim.analysis.report import Report


class Escaped(BaseException):
    """An error typer would hide, carried past its handlers: it turns a broken pipe
    into a silent exit 1, and an ``EOFError`` (a helper process gone) into "Aborted"."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


#: rich's tables fail (an assertion) on a terminal of a few columns; below this many,
#: output is drawn as if the terminal were this wide, and the terminal wraps it.
_MIN_COLUMNS: Final = 20


def console(*, stderr: bool = False, highlight: bool = False, soft_wrap: bool = False) -> Console:
    """A rich console; rich is imported on first use, not at start-up."""
    from rich.console import Console  # noqa: PLC0415 - start-up time (see ticketsim.cli)

    # emoji=False: a name in the db or a history such as ":fire:" is shown as written.
    made = Console(stderr=stderr, highlight=highlight, soft_wrap=soft_wrap, emoji=False)
    made.width = max(made.width, _MIN_COLUMNS)
    if not stderr:
        # rich exits 1 on a broken pipe; ticketsim ends quietly with 141 (see root.main).
        made.on_broken_pipe = _broken_pipe  # type: ignore[method-assign]
    return made


def _broken_pipe() -> NoReturn:
    raise Escaped(BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE)))


def terminal() -> bool:
    """Whether both output streams are terminals, so that drawing progress is seen."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def typed_into() -> bool:
    """Whether a person can type into stdin: not when it is a file or a pipe, nor when
    it is closed (``sys.stdin`` is then ``None``)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):  # closed under Python's feet
        return False


def echo_json(data: Any) -> None:
    """Print ``data`` as the command's one JSON document."""
    typer.echo(json.dumps(data, indent=2))


def show_report(report: Report, json_out: bool, **extra: Any) -> None:
    """Print the report of a sale, as a table or as JSON with ``extra`` keys, and say on
    stderr when the db could not be written at the end of it."""
    if json_out:
        echo_json({**report.to_json(), **extra})
    else:
        from ticketsim.views.render import report_view  # noqa: PLC0415 - rich, only to draw

        console().print(report_view(report))
    if report.io_error is not None:
        stderr_line(
            f"ticketsim: error: could not write the db {report.db}: {report.io_error}; "
            "it keeps its last good state"
        )


def wrote(what: str, path: os.PathLike[str] | str, *, data: bool) -> None:
    """Say where a file was written, ``timeline: /abs/path.html``, so that a teacher finds
    it; on stderr when stdout carries data (``--json``, ``--csv``), which must stay parseable."""
    from ticketsim.core.printable import line as one_line  # noqa: PLC0415 - start-up time

    said = f"{what}: {os.path.abspath(path)}"
    if data:
        stderr_line(said)
    else:
        typer.echo(one_line(said))


def stderr_line(line: str) -> None:
    """Write one line on stderr: plain text, no rich, so that it also works while an
    interrupt is handled or rich cannot be imported; a closed stderr is not an error."""
    from ticketsim.core.printable import line as one_line  # noqa: PLC0415 - start-up time

    # Messages echo paths and values that came from the user or a file.
    text = one_line(line) + "\n"
    with contextlib.suppress(OSError, ValueError, AttributeError):  # closed, or None
        sys.stderr.write(text)
        sys.stderr.flush()


#: Set once stdout has been found closed: nothing more is written to it.
_stdout_closed: list[bool] = [False]


def stdout_gone() -> bool:
    """Whether stdout was closed at start, or its reader has gone (a broken pipe)."""
    if _stdout_closed[0]:
        return True
    try:
        fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else 1
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        gone = any(events & (select.POLLERR | select.POLLNVAL) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        gone = True  # no stdout at all
    if gone:
        _quiet_stdout()
    return gone


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, as Python's documentation advises on SIGPIPE, so that
    the interpreter's last flush at exit finds nowhere to fail."""
    _stdout_closed[0] = True
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        if null != 1:
            os.close(null)


def flushed(code: int) -> int:
    """Deliver what is left of the output; the exit code once it is out (or is not)."""
    if _stdout_closed[0]:
        return ExitCode.STDOUT_CLOSED
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except BrokenPipeError:
        _quiet_stdout()
        return ExitCode.STDOUT_CLOSED
    except OSError as exc:  # a full or failing device: the machine's fault
        _quiet_stdout()  # the rest of the output would fail the same way
        stderr_line(
            f"ticketsim: error: could not write the output to stdout: {exc.strerror or exc}; "
            "send it to another file or device"
        )
        return ExitCode.IO_ERROR
    return code


def check_stdout_open() -> None:
    """A stdout closed at start (``>&-``): hold its fd with /dev/null, so that no file
    ticketsim opens becomes fd 1 by chance, and end quietly like a broken pipe."""
    try:
        os.fstat(1)
    except OSError:
        _quiet_stdout()
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stdout, for the whole run
