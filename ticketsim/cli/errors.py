"""The one place where an error becomes an exit code and one line on stderr.

Commands call the library and let its errors go up; :func:`end` looks the error up in
:func:`refusals` (bad input, exit 2; the system refused, exit 4), then in the system
calls' refusals no check could catch, and calls anything else a bug (exit 70). Errors in
what the user typed that click finds end here too (:func:`usage`), as one line naming
the bad value, before any process starts or any file is written.
"""

from __future__ import annotations

import errno
import functools
import sys
from typing import TYPE_CHECKING, Any, Final, NoReturn, Protocol, cast

import typer

from ticketsim.cli import output
from ticketsim.core.exits import ExitCode
from ticketsim.core.frozen import frozen
from ticketsim.errors import (
    ConfigError,
    DbError,
    DbWriteError,
    NoVerdict,
    PathError,
    ServerUnavailable,
    StoreError,
    SystemRefused,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


class BadInput(Exception):
    """A combination of options the command line refuses by itself, before it calls the
    library; the message names the options or the value and says what to do (exit 2)."""


def fail(message: str, code: int | None = None) -> NoReturn:
    """Print ``message`` as the one line of an error and exit with ``code``
    (default: :attr:`ExitCode.BAD_INPUT <ticketsim.core.exits.ExitCode.BAD_INPUT>`)."""

    output.stderr_line(f"ticketsim: error: {message}")
    sys.exit(ExitCode.BAD_INPUT if code is None else code)


@frozen
class Refusal:
    """How the command line reports one type of error: its exit code and its line."""

    code: ExitCode
    line: Callable[[Any], str]


#: Settings whose option is not their name: the library takes a list of strategies,
#: the command line one --strategy option given again for each.
#: Settings whose option is not ``--`` and their name: ``exercise``'s arguments have none.
_OPTIONS: Final = {"strategies": "--strategy", "file": "FILE", "exercise": "NUMBER"}


def option(name: str) -> str:
    """The option a setting of the library is given with (``start_method``: ``--start-method``)."""
    return _OPTIONS.get(name) or "--" + name.replace("_", "-")


@functools.cache
def refusals() -> dict[type[Exception], Refusal]:
    """Every error that is not ticketsim's fault, with what it ends a command with.

    Made on the first error: ``HistoryError`` lives in a module ``--help`` does not import.
    """
    from ticketsim.analysis.history import HistoryError  # noqa: PLC0415 - start-up time

    return {
        BadInput: Refusal(ExitCode.BAD_INPUT, str),
        ConfigError: Refusal(
            ExitCode.BAD_INPUT, lambda exc: f"{option(exc.name)}={exc.value!r}: {exc.advice}"
        ),
        DbError: Refusal(ExitCode.BAD_INPUT, lambda exc: f"--db={exc.path}: {exc.reason}"),
        HistoryError: Refusal(ExitCode.BAD_INPUT, lambda exc: f"--history={exc}"),
        PathError: Refusal(ExitCode.BAD_INPUT, str),
        DbWriteError: Refusal(
            ExitCode.IO_ERROR,
            lambda exc: (
                f"could not write the db {exc.path}: {exc.reason}; it keeps its last good state"
            ),
        ),
        SystemRefused: Refusal(ExitCode.IO_ERROR, str),
        StoreError: Refusal(ExitCode.BAD_INPUT, lambda exc: f"--store={exc}"),
        # A server that is down or cannot be started is the machine's fault, not the input's.
        ServerUnavailable: Refusal(ExitCode.IO_ERROR, str),
        NoVerdict: Refusal(ExitCode.STALLED, str),
    }


def _refused(exc: BaseException) -> tuple[str, ExitCode] | None:
    for kind, refusal in refusals().items():
        if isinstance(exc, kind):
            return refusal.line(exc), refusal.code
    return None


#: A system call's refusal that no check before the run could catch: the machine
#: refused (exit 4), or the path cannot name a file (exit 2, bad input); what to do.
MACHINE_FAULTS: Final = {
    errno.ENOSPC: (ExitCode.IO_ERROR, "free some space, or write it elsewhere"),
    errno.EDQUOT: (ExitCode.IO_ERROR, "free some of your quota, or write it elsewhere"),
    errno.EROFS: (ExitCode.IO_ERROR, "the file system is read-only; write it elsewhere"),
    errno.EIO: (ExitCode.IO_ERROR, "the device failed; check it, or write elsewhere"),
    errno.EAGAIN: (ExitCode.IO_ERROR, "lower --buyers, or raise the limit"),
    errno.ENOMEM: (ExitCode.IO_ERROR, "lower --buyers, or free some memory"),
    errno.EMFILE: (ExitCode.IO_ERROR, "lower --buyers, or raise the limit"),
    errno.ENFILE: (ExitCode.IO_ERROR, "lower --buyers, or close some files"),
    errno.ENAMETOOLONG: (ExitCode.BAD_INPUT, "give a shorter path"),
    errno.ELOOP: (ExitCode.BAD_INPUT, "fix the symlinks, or give another path"),
    errno.ENOTDIR: (ExitCode.BAD_INPUT, "give a path whose folders exist"),
}


def _machine_fault(exc: BaseException) -> tuple[str, ExitCode] | None:
    """The one line and exit code of a fault of the machine, ``None`` for a bug."""
    from ticketsim.sale import _limits  # noqa: PLC0415 - start-up time

    limit = _limits.cause(exc)
    if isinstance(exc, RuntimeError) and limit is not None:
        return (
            f"the system refused a thread: {limit}; lower --buyers, or raise the limit",
            ExitCode.IO_ERROR,
        )
    if not isinstance(exc, OSError) or exc.errno not in MACHINE_FAULTS:
        return None
    code, advice = MACHINE_FAULTS[exc.errno]
    where = f"{exc.filename}: " if exc.filename is not None else "the system refused: "
    problem = f"{exc.strerror or exc} ({errno.errorcode.get(exc.errno, exc.errno)})"
    if limit is not None:
        problem = f"{limit} refused it ({errno.errorcode[exc.errno]})"
    return f"{where}{problem}; {advice}", code


def outcome(exc: BaseException) -> tuple[str, ExitCode]:
    """The one line and the exit code a command that raised ``exc`` ends with."""
    return (
        _refused(exc)
        or _machine_fault(exc)
        or (
            f"internal error: {type(exc).__name__}: {exc}; this is a bug in ticketsim, "
            "run again with --debug for the traceback",
            ExitCode.INTERNAL_ERROR,
        )
    )


def end(exc: BaseException, *, debug: bool) -> NoReturn:
    """End the command on ``exc`` with its line and code; with ``--debug``, anything
    that is not a refusal of the input or a file goes up with its traceback."""
    if debug and _refused(exc) is None:
        raise exc
    fail(*outcome(exc))


class _ClickError(Protocol):
    """What click's errors have: typer vendors click and exports only ``BadParameter``."""

    exit_code: int
    message: str

    def format_message(self) -> str: ...


#: The base of every error click reports, reached through the one typer exports.
CLICK_ERROR: Final[type[Exception]] = next(
    kind for kind in typer.BadParameter.__mro__ if kind.__name__ == "ClickException"
)


def usage(exc: Exception, args: Sequence[str] | None) -> int:
    """End an error click found in the command line as one line; a bare ``ticketsim``,
    which asks for the help, prints it on stdout and is not an error (exit 0)."""
    error = cast("_ClickError", exc)
    # Found by name, as typer itself does, since click's error types are not exported.
    if type(exc).__name__ == "NoArgsIsHelpError":
        typer.echo(error.format_message())
        return ExitCode.OK
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "ticketsim"
    message = error.format_message()
    param = getattr(exc, "param", None) if isinstance(exc, typer.BadParameter) else None
    opts = getattr(param, "opts", None) or []
    given = next(
        (v for v in (_given(o, args or sys.argv[1:]) for o in opts) if v is not None), None
    )
    if given is not None:
        message = f"{opts[0]}={given!r}: {error.message}"
    fail(f"{message} (see '{where} --help')", error.exit_code)


def _given(flag: str, args: Sequence[str]) -> str | None:
    """What the user typed for ``flag``, to echo it back (click does not keep it).

    The last occurrence: a repeated option takes its last value, in click as in most
    Unix tools, so that is the one used or refused.
    """
    given = None
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            given = args[i + 1]
        elif arg.startswith(flag + "="):
            given = arg.partition("=")[2]
    return given
