"""The ``ticketsim`` command line: parse, call the library, render, exit.

Errors in what the user typed end as one line on stderr that names the bad value
and says what to do, with exit code 2, before any process starts or any file is
written.

Start-up is kept short: ``ticketsim --help`` may take at most 1.5 times as long as
``python -c "import typer"`` (``benchmarks/startup.py`` measures it). At module level
this imports only typer and what the options' declarations need; the library and rich
are imported inside the commands that use them (hence the ``noqa: PLC0415``). The help
is click's plain text, not typer's rich panels, which import rich and markdown-it.
"""

from __future__ import annotations

import contextlib
import errno
import inspect
import json
import os
import select
import signal
import sys
from enum import Enum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, NoReturn, TypeVar

import typer

# typer vendors click; its exception types are only reachable here.
from typer._click.exceptions import BadParameter, ClickException, NoArgsIsHelpError
from typer.core import TyperGroup

from ticketsim import __version__
from ticketsim.core import db as dbfile
from ticketsim.core.exits import ExitCode, help_table
from ticketsim.core.names import DEFAULT_DB, StrategyName
from ticketsim.errors import ConfigError, DbError, DbWriteError, PathError, SystemRefused

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rich.console import Console
    from typer._click import Context, HelpFormatter

    from ticketsim.analysis.report import Report
    from ticketsim.core.events import Event
    from ticketsim.core.result import RunResult
    from ticketsim.core.settings import RunConfig
    from ticketsim.search.explore import Scenario


#: The most runs of one schedule ``replay --repeat`` makes.
MAX_REPEAT: Final = 1000
_ENDED: Final = "every buyer process was ended and the db keeps every sale made"


class StartMethod(str, Enum):
    FORK = "fork"
    SPAWN = "spawn"
    FORKSERVER = "forkserver"


class _Escaped(BaseException):
    """An error typer would hide, carried past its handlers: it turns a broken pipe
    into a silent exit 1, and an ``EOFError`` (a helper process gone) into "Aborted"."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


class _OneLineErrors(TyperGroup):
    """Usage errors as one line on stderr instead of a usage panel."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (BrokenPipeError, EOFError) as exc:
            raise _Escaped(exc) from exc

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = self._outcome(args, prog_name, complete_var, **extra)
        except SystemExit as exc:  # fail() and --help: the output still has to go out
            code = exc.code
        code = _flushed(code if isinstance(code, int) else 0)
        if not standalone_mode:
            return code
        sys.exit(code)

    def _outcome(
        self,
        args: Sequence[str] | None,
        prog_name: str | None,
        complete_var: str | None,
        **extra: Any,
    ) -> Any:
        """Run the command; its exit code, after one line on stderr for any error."""
        try:
            code = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except NoArgsIsHelpError as exc:
            # A bare command asks for the help: on stdout, and it is not an error.
            typer.echo(exc.format_message())
            return 0
        except ClickException as exc:
            fail(_usage_message(exc, args), exc.exit_code)
        except typer.Abort:
            # Ctrl-C or Ctrl-D at one of click's prompts.
            code = ExitCode.INTERRUPTED
        except _Escaped as escaped:
            if isinstance(escaped.error, BrokenPipeError) and _stdout_gone():
                return ExitCode.STDOUT_CLOSED
            _unexpected(escaped.error, args)
        except Exception as exc:
            _unexpected(exc, args)
        if code == ExitCode.INTERRUPTED:
            _stderr(f"ticketsim: interrupted; {_ENDED}")
        return code

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        """List the commands with the whole first paragraph of each one's help, wrapped.

        Click's list cuts each to one line, ending in "...", which would hide most of them.
        """
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                text = command.short_help or inspect.cleandoc(command.help or "")
                rows.append((name, " ".join(text.partition("\n\n")[0].split())))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _given(option: str, args: Sequence[str]) -> str | None:
    """What the user typed for ``option``, to echo it back (click does not keep it).

    The last occurrence: a repeated option takes its last value, in click as in most
    Unix tools, so that is the one used or refused.
    """
    given = None
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            given = args[i + 1]
        elif arg.startswith(option + "="):
            given = arg.partition("=")[2]
    return given


def _usage_message(exc: ClickException, args: Sequence[str] | None) -> str:
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "ticketsim"
    message = exc.format_message()
    param = getattr(exc, "param", None) if isinstance(exc, BadParameter) else None
    opts = getattr(param, "opts", None) or []
    given = next((v for v in (_given(o, args or sys.argv[1:]) for o in opts) if v), None)
    if given is not None:
        message = f"{opts[0]}={given!r}: {exc.message}"
    return f"{message} (see '{where} --help')"


#: rich's tables fail (an assertion) on a terminal of a few columns; below this many,
#: output is drawn as if the terminal were this wide, and the terminal wraps it.
_MIN_COLUMNS: Final = 20


def _console(*, stderr: bool = False, highlight: bool = False, soft_wrap: bool = False) -> Console:
    """A rich console; rich is imported on first use, not at start-up."""
    from rich.console import Console  # noqa: PLC0415 - start-up time (see the top)

    console = Console(stderr=stderr, highlight=highlight, soft_wrap=soft_wrap)
    console.width = max(console.width, _MIN_COLUMNS)
    if not stderr:
        # rich exits 1 on a broken pipe; ticketsim ends quietly with 141 (see main).
        console.on_broken_pipe = _broken_pipe  # type: ignore[method-assign]
    return console


def _broken_pipe() -> NoReturn:
    raise _Escaped(BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE)))


def _stderr(line: str) -> None:
    """Write one line on stderr: plain text, no rich, so that it also works while an
    interrupt is handled or rich cannot be imported; a closed stderr is not an error."""
    from ticketsim.core.printable import line as one_line  # noqa: PLC0415 - start-up time

    # Messages echo paths and values that came from the user or a file.
    text = one_line(line) + "\n"
    with contextlib.suppress(OSError, ValueError, AttributeError):  # closed, or None
        sys.stderr.write(text)
        sys.stderr.flush()


def fail(message: str, code: int | None = None) -> NoReturn:
    """Print ``message`` as the one line of an error and exit with ``code``
    (default: :attr:`ExitCode.BAD_INPUT <ticketsim.core.exits.ExitCode.BAD_INPUT>`)."""

    _stderr(f"ticketsim: error: {message}")
    sys.exit(ExitCode.BAD_INPUT if code is None else code)


#: A system call's refusal that no check before the run could catch: the machine
#: refused (exit 4), or the path cannot name a file (exit 2, bad input); what to do.
_MACHINE_FAULTS: Final = {
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


def _machine_fault(exc: BaseException) -> tuple[str, int] | None:
    """The one line and exit code of a fault of the machine, ``None`` for a bug."""
    from ticketsim.sale import _limits  # noqa: PLC0415 - start-up time

    limit = _limits.cause(exc)
    if isinstance(exc, RuntimeError) and limit is not None:
        return (
            f"the system refused a thread: {limit}; lower --buyers, or raise the limit",
            ExitCode.IO_ERROR,
        )
    if not isinstance(exc, OSError) or exc.errno not in _MACHINE_FAULTS:
        return None
    code, advice = _MACHINE_FAULTS[exc.errno]
    where = f"{exc.filename}: " if exc.filename is not None else "the system refused: "
    problem = f"{exc.strerror or exc} ({errno.errorcode.get(exc.errno, exc.errno)})"
    if limit is not None:
        problem = f"{limit} refused it ({errno.errorcode[exc.errno]})"
    return f"{where}{problem}; {advice}", code


def _unexpected(exc: BaseException, args: Sequence[str] | None) -> NoReturn:
    """The last resort: a fault of the machine gets its code, anything else is a bug."""
    if "--debug" in (sys.argv[1:] if args is None else args):
        raise exc
    fault = _machine_fault(exc)
    if fault is not None:
        fail(*fault)
    fail(
        f"internal error: {type(exc).__name__}: {exc}; this is a bug in ticketsim, "
        "run again with --debug for the traceback",
        ExitCode.INTERNAL_ERROR,
    )


#: Set once stdout has been found closed: nothing more is written to it.
_stdout_closed: list[bool] = [False]


def _stdout_gone() -> bool:
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


def _flushed(code: int) -> int:
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
        _stderr(
            f"ticketsim: error: could not write the output to stdout: {exc.strerror or exc}; "
            "send it to another file or device"
        )
        return ExitCode.IO_ERROR
    return code


app = typer.Typer(
    cls=_OneLineErrors,
    no_args_is_help=True,
    add_completion=True,
    # Click's plain help: typer's rich help would import rich and markdown-it.
    rich_markup_mode=None,
    help="Reproduce the ticket-grab race between processes, and see each protection work.",
)


#: A command's function, returned as it was by :func:`_command`.
_F = TypeVar("_F", bound="Callable[..., Any]")


def _command(name: str | None = None, *, epilog: str) -> Callable[[_F], _F]:
    """Register a command whose help ends with its example and its table of exit codes."""

    def register(function: _F) -> _F:
        table = help_table(name or function.__name__)
        return app.command(name, epilog=f"{epilog}\n\n{table}")(function)

    return register


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ticketsim {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an internal error.")
    ] = False,
) -> None:
    """Reproduce the ticket-grab race between processes, and see each protection work."""


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


# Options shared by several commands: one definition each.
Buyers = Annotated[int, typer.Option(help="How many buyers.")]
Tickets = Annotated[int, typer.Option(help="Tickets put on sale.")]
StrategyOpt = Annotated[
    StrategyName | None,
    typer.Option(
        "--strategy",
        help="How buyers share the tickets (see 'ticketsim strategies').",
        case_sensitive=False,
        show_default="none",
    ),
]
Lock = Annotated[bool, typer.Option("--lock", help="Shorthand for --strategy lock.")]


def _path_arg(value: str | Path) -> Path:
    """A path option's value, refused if ``Path`` would hide how it was typed: an empty
    one (``Path("")`` is the current folder) or one ending in a slash, which names a
    folder (``Path`` drops the slash). Every other check is ticketsim.core.paths'."""
    text = str(value)
    if not text:
        raise BadParameter("the path is empty; give the path of a file")
    if text.endswith("/"):
        raise BadParameter("ends with a slash, so it names a folder; give the path of a file")
    return Path(text)


#: What every path option is parsed with.
_PATH: Final[dict[str, Any]] = {"parser": _path_arg, "metavar": "PATH"}
Db = Annotated[
    Path,
    typer.Option(envvar="TICKETSIM_DB", help="The JSON ticket db.", show_default=True, **_PATH),
]
Timeout = Annotated[
    float, typer.Option(help="End a sale after this many seconds without progress.")
]
StartMethodOpt = Annotated[
    StartMethod | None,
    typer.Option("--start-method", help="How buyer processes start (default: the platform's)."),
]
Json = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]
History = Annotated[
    Path | None, typer.Option(help="Write the event history here, as JSON Lines.", **_PATH)
]
TimelineOpt = Annotated[
    Path | None,
    typer.Option(
        "--timeline", help="Write a picture of the sale here (self-contained HTML).", **_PATH
    ),
]
ShowTimeline = Annotated[
    bool,
    typer.Option(help="Draw the timeline in the terminal too (up to about 20 buyers)."),
]


def _strategy(strategy: StrategyName | None, lock: bool) -> str:
    if lock and strategy not in (None, StrategyName.LOCK):
        fail(f"--lock and --strategy={strategy.value} disagree; give one of them")
    return (StrategyName.LOCK if lock else (strategy or StrategyName.NONE)).value


def _pictures(
    result: RunResult, report: Report, timeline: Path | None, show_timeline: bool
) -> None:
    if timeline is None and not show_timeline:
        return
    from ticketsim.views import timeline as drawing  # noqa: PLC0415 - only when asked for

    if timeline is not None:
        _guarded(lambda: drawing.write_timeline(timeline, result, report))
    if show_timeline:
        console = _console()
        # The lanes' labels take about 12 columns; the rest is time.
        width = max(40, console.width - 14)
        console.print(drawing.terminal_timeline(result, report, width=width))


def _guarded(action: Callable[[], Any]) -> Any:
    """Run ``action``; bad settings or an unusable db end as a one-line error, exit 2."""

    try:
        return action()
    except ConfigError as exc:
        fail(f"{_option(exc.name)}={exc.value!r}: {exc.advice}")
    except DbError as exc:
        fail(f"--db={exc.path}: {exc.reason}")
    except DbWriteError as exc:
        fail(
            f"could not write the db {exc.path}: {exc.reason}; it keeps its last good state",
            ExitCode.IO_ERROR,
        )
    except PathError as exc:
        fail(str(exc))
    except SystemRefused as exc:
        fail(str(exc), ExitCode.IO_ERROR)


def _show(report: Report, json_out: bool, **extra: Any) -> None:
    if json_out:
        typer.echo(json.dumps({**report.to_json(), **extra}, indent=2))
    else:
        from ticketsim.views.render import report_view  # noqa: PLC0415 - rich, only to draw

        _console().print(report_view(report))
    if report.io_error is not None:
        _stderr(
            f"ticketsim: error: could not write the db {report.db}: {report.io_error}; "
            "it keeps its last good state"
        )


@_command(
    epilog=(
        "Examples: 'ticketsim run --buyers 50' oversells; "
        "'ticketsim run --buyers 50 --lock' does not; "
        "'ticketsim run --json --history run.jsonl' for scripts."
    )
)
def run(
    buyers: Buyers = 50,
    tickets: Annotated[int, typer.Option(help="Tickets put on sale (ignored with --keep).")] = 10,
    strategy: StrategyOpt = None,
    lock: Lock = False,
    db: Db = DEFAULT_DB,
    delay: Annotated[
        float, typer.Option(help="Race window between reading and writing, in seconds.")
    ] = 0.1,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the race-window jitter (default: random).")
    ] = None,
    timeout: Timeout = 30.0,
    start_method: StartMethodOpt = None,
    json_out: Json = False,
    keep: Annotated[
        bool, typer.Option(help="Sell from the db as it is instead of resetting it.")
    ] = False,
    history: History = None,
    pool: Annotated[
        int | None,
        typer.Option(
            help="Run the buyers as tasks of a Pool of N worker processes (default: one "
            "process per buyer up to 200 buyers, one worker per core above)."
        ),
    ] = None,
    lockstep: Annotated[
        bool,
        typer.Option(
            help="Force the race: every buyer reads, then each writes in turn (none only)."
        ),
    ] = False,
    kill_holder: Annotated[
        bool,
        typer.Option(help="SIGKILL the first buyer inside its critical section (a fault)."),
    ] = False,
    kill: Annotated[
        int, typer.Option(help="SIGKILL N buyers at random points, chosen by --seed.")
    ] = 0,
    live: Annotated[
        bool, typer.Option(help="Show the sale as it happens: counts and each buyer's step.")
    ] = False,
    timeline: TimelineOpt = None,
    show_timeline: ShowTimeline = False,
) -> None:
    """Run one sale: BUYERS processes try to buy TICKETS tickets from the db at once."""
    from ticketsim.analysis import history as historyfile  # noqa: PLC0415 - start-up time
    from ticketsim.analysis.report import build_report  # noqa: PLC0415 - start-up time
    from ticketsim.core import paths, settings  # noqa: PLC0415 - start-up time

    chosen = _strategy(strategy, lock)
    _guarded(
        lambda: paths.vet(
            paths.db(db, keep=keep, lock=chosen == StrategyName.FILELOCK),
            paths.output("--history", history),
            paths.output("--timeline", timeline),
        )
    )
    config: RunConfig = _guarded(
        lambda: settings.RunConfig(
            buyers=buyers,
            tickets=tickets,
            strategy=chosen,
            db_path=db,
            delay=delay,
            seed=seed,
            timeout=timeout,
            start_method=start_method.value if start_method else None,
            keep=keep,
            lockstep=lockstep,
            pool=pool,
            kill_holder=kill_holder,
            kill=kill,
        )
    )
    if live and json_out:
        fail("--live draws on the terminal and --json prints data; give one of them")
    result: RunResult = _watched(config, live=live, quiet=json_out)
    report = build_report(result)
    _show(report, json_out)
    if history is not None:  # after the report: a write that fails loses nothing more
        _guarded(lambda: historyfile.save(history, result))
    _pictures(result, report, timeline, show_timeline and not json_out)
    raise typer.Exit(int(report.exit_code))


def _terminal() -> bool:
    return sys.stdout.isatty() and sys.stderr.isatty()


def _watched(config: RunConfig, *, live: bool, quiet: bool) -> RunResult:
    """Run the sale with a live view, a progress bar on stderr, or nothing to watch.

    The progress bar appears only when both streams are terminals and the output is
    not data (``--json``), so it never ends up in a file or a pipe.
    """
    from ticketsim.engine import runner  # noqa: PLC0415 - start-up time

    if live:
        from rich.live import Live  # noqa: PLC0415 - start-up time

        from ticketsim.analysis.report import build_report  # noqa: PLC0415 - start-up time
        from ticketsim.views.render import LiveSale  # noqa: PLC0415 - start-up time

        view = LiveSale(config.strategy, config.buyers, config.tickets)
        console = _console()
        with Live(view, console=console, refresh_per_second=12) as screen:
            result: RunResult = _guarded(lambda: runner.run_sale(config, watch=view.update))
            view.finish(build_report(result))
            screen.refresh()
        if not console.is_terminal:
            console.line()  # a terminal has moved on a line; a file or a pipe has not
        return result
    if quiet or not _terminal():
        return _guarded(lambda: runner.run_sale(config))  # type: ignore[no-any-return]
    from rich.progress import (  # noqa: PLC0415 - start-up time
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
    )

    from ticketsim.core.events import OUTCOMES  # noqa: PLC0415 - start-up time

    progress = Progress(
        TextColumn("selling"), BarColumn(), MofNCompleteColumn(), TextColumn("buyers done"),
        console=_console(stderr=True, highlight=True), transient=True,
    )  # fmt: skip
    with progress:
        task = progress.add_task("sale", total=config.buyers)

        def advance(event: Event) -> None:
            if event.step in OUTCOMES:
                progress.advance(task)

        return _guarded(lambda: runner.run_sale(config, watch=advance))  # type: ignore[no-any-return]


@_command(epilog="Example: 'ticketsim show --json' prints the db and any problem in it.")
def show(db: Db = DEFAULT_DB, json_out: Json = False) -> None:
    """Print the db: event, tickets, remaining, the ledger, and any inconsistency in it."""
    from ticketsim.analysis.checker import check_db  # noqa: PLC0415 - start-up time
    from ticketsim.core import paths  # noqa: PLC0415 - start-up time
    from ticketsim.views.render import SHOW_NOTE, db_view  # noqa: PLC0415 - start-up time

    made_by = "create it with 'ticketsim reset' or 'ticketsim run'"
    _guarded(lambda: paths.vet(paths.source("--db", db, made_by)))
    try:
        ticket_db = dbfile.load(db)
    except DbError as exc:
        fail(f"--db={exc.path}: {exc.reason}")
    problems = check_db(ticket_db)
    if json_out:
        data = {
            **ticket_db.to_json(),
            "problems": [p.to_json() for p in problems],
            "note": None if problems else SHOW_NOTE,
        }
        typer.echo(json.dumps(data, indent=2))
    else:
        _console().print(db_view(ticket_db, problems, str(db)))
    raise typer.Exit(ExitCode.VIOLATED if problems else ExitCode.OK)


@_command(epilog="Example: 'ticketsim reset --tickets 100' puts 100 fresh tickets on sale.")
def reset(
    tickets: Annotated[int, typer.Option(help="Tickets to put on sale.")] = 10,
    event: Annotated[str, typer.Option(help="The event's name.")] = dbfile.DEFAULT_EVENT,
    db: Db = DEFAULT_DB,
    json_out: Json = False,
) -> None:
    """Reset the db to TICKETS fresh tickets and an empty ledger."""
    from ticketsim.core import paths, settings  # noqa: PLC0415 - start-up time
    from ticketsim.engine import runner  # noqa: PLC0415 - start-up time
    from ticketsim.views.render import db_view  # noqa: PLC0415 - start-up time

    _guarded(lambda: paths.vet(paths.db(db)))

    config: RunConfig = _guarded(
        lambda: settings.RunConfig(tickets=tickets, db_path=db, strategy="lock")
    )
    _guarded(lambda: runner.prepare_db(config))
    fresh = dbfile.TicketDB.fresh(tickets, event=event)
    _guarded(lambda: dbfile.write_atomic(db, fresh))
    if json_out:
        typer.echo(json.dumps(fresh.to_json(), indent=2))
    else:
        _console().print(db_view(fresh, [], str(db)))


def _scenario(
    strategy: str,
    buyers: int,
    tickets: int,
    db: Path,
    start_method: StartMethod | None,
    timeout: float,
) -> Scenario:
    from ticketsim.search.explore import Scenario  # noqa: PLC0415 - imports hypothesis lazily

    scenario = Scenario(
        strategy=strategy,
        buyers=buyers,
        tickets=tickets,
        db_path=db,
        start_method=start_method.value if start_method else None,
        timeout=timeout,
    )
    from ticketsim.core.settings import PROCESS_PER_BUYER_MAX  # noqa: PLC0415 - start-up time

    if buyers > PROCESS_PER_BUYER_MAX:
        # The probe below would say so too, but of a schedule the user never typed.
        fail(
            f"--buyers={buyers}: a controlled sale runs every buyer at once, one process "
            f"each, so it takes at most {PROCESS_PER_BUYER_MAX} buyers; lower --buyers"
        )
    # Refuse bad settings before any search starts, with the serial schedule as a probe.
    _guarded(lambda: scenario.config(" ".join(f"{b}r {b}w" for b in range(1, buyers + 1))))
    return scenario


@_command(
    epilog=(
        "Example: 'ticketsim replay --schedule \"1r 2r 1w 2w\"' sells the last ticket "
        "twice, every time; add '--lock' and the schedule is refused as infeasible."
    )
)
def replay(
    schedule: Annotated[
        str,
        typer.Option(
            help="The order of steps, like '1r 2r 1w 2w' (buyer, then r for read, w for "
            "write); steps left out follow, in buyer order."
        ),
    ],
    buyers: Annotated[
        int | None, typer.Option(help="How many buyers (default: as many as the schedule names).")
    ] = None,
    tickets: Tickets = 1,
    strategy: StrategyOpt = None,
    lock: Lock = False,
    db: Db = DEFAULT_DB,
    timeout: Timeout = 10.0,
    start_method: StartMethodOpt = None,
    json_out: Json = False,
    history: History = None,
    repeat: Annotated[
        int, typer.Option(help="Run the schedule this many times and compare the outcomes.")
    ] = 1,
    timeline: TimelineOpt = None,
    show_timeline: ShowTimeline = False,
) -> None:
    """Run one exact interleaving of the buyers' steps, and report it as 'run' does.

    Same report and JSON keys as 'run'; with --repeat, also how many runs
    reproduced the first one exactly (same db and history, apart from pids and times).
    """
    from ticketsim.analysis import history as historyfile  # noqa: PLC0415 - start-up time
    from ticketsim.analysis.report import build_report  # noqa: PLC0415 - start-up time
    from ticketsim.core import paths, settings  # noqa: PLC0415 - start-up time
    from ticketsim.core import schedule as sched  # noqa: PLC0415
    from ticketsim.engine import runner  # noqa: PLC0415 - start-up time
    from ticketsim.search.explore import signature  # noqa: PLC0415

    chosen = _strategy(strategy, lock)
    _guarded(
        lambda: paths.vet(
            paths.db(db, lock=chosen == StrategyName.FILELOCK),
            paths.output("--history", history),
            paths.output("--timeline", timeline),
        )
    )
    _guarded(lambda: settings.require_int("repeat", repeat, 1, MAX_REPEAT, "runs"))
    if buyers is None:
        try:
            named = sched.parse(schedule, 10**6, complete=False).buyers
        except sched.ScheduleError as exc:
            fail(f"--schedule={schedule!r}: {exc}")
        buyers = max(named, 1)
    scenario = _scenario(chosen, buyers, tickets, db, start_method, timeout)
    config: RunConfig = _guarded(lambda: scenario.config(schedule))
    results: list[RunResult] = [_guarded(lambda: runner.run_sale(config)) for _ in range(repeat)]
    first = results[0]
    reproduced = sum(1 for r in results if signature(r) == signature(first))
    report = build_report(first)
    _show(report, json_out, repeat=repeat, reproduced=reproduced)
    if history is not None:
        _guarded(lambda: historyfile.save(history, first))
    if not json_out and repeat > 1:
        typer.echo(f"reproduced {reproduced}/{repeat}")
    _pictures(first, report, timeline, show_timeline and not json_out)
    raise typer.Exit(int(report.exit_code))


@_command(
    epilog=(
        "Example: 'ticketsim explore --buyers 2 --tickets 1' finds the lost update; "
        "'ticketsim explore --buyers 3 --lock' shows that no order breaks the lock."
    )
)
def explore(
    buyers: Buyers = 2,
    tickets: Tickets = 1,
    strategy: StrategyOpt = None,
    lock: Lock = False,
    db: Db = DEFAULT_DB,
    max_schedules: Annotated[
        int, typer.Option(help="Run at most this many schedules (simplest first).")
    ] = 1000,
    preemption_bound: Annotated[
        int | None,
        typer.Option(help="Only orders that switch away from an unfinished buyer this often."),
    ] = None,
    timeout: Timeout = 10.0,
    start_method: StartMethodOpt = None,
    json_out: Json = False,
) -> None:
    """Run every order of the buyers' steps that can differ, and report what breaks."""
    from ticketsim.core import paths  # noqa: PLC0415 - start-up time
    from ticketsim.search.explore import check_exploration  # noqa: PLC0415
    from ticketsim.search.explore import explore as run_exploration  # noqa: PLC0415
    from ticketsim.views.render import exploration_view  # noqa: PLC0415 - start-up time

    filelock = _strategy(strategy, lock) == StrategyName.FILELOCK
    _guarded(lambda: paths.vet(paths.db(db, lock=filelock)))

    _guarded(lambda: check_exploration(buyers, max_schedules, preemption_bound))
    scenario = _scenario(_strategy(strategy, lock), buyers, tickets, db, start_method, timeout)
    result = _guarded(
        lambda: run_exploration(
            scenario, max_schedules=max_schedules, preemption_bound=preemption_bound
        )
    )
    if json_out:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        _console().print(exploration_view(result))
    raise typer.Exit(int(result.exit_code))


@_command(epilog="Example: 'ticketsim hunt --buyers 6 --tickets 3' for sales too large to explore.")
def hunt(
    buyers: Buyers = 4,
    tickets: Tickets = 2,
    strategy: StrategyOpt = None,
    lock: Lock = False,
    db: Db = DEFAULT_DB,
    max_examples: Annotated[
        int, typer.Option(help="Schedules hypothesis may draw (then it shrinks).")
    ] = 50,
    pct_runs: Annotated[int, typer.Option(help="Random PCT schedules to run.")] = 50,
    depth: Annotated[int, typer.Option(help="PCT bug depth: priority changes plus one.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the PCT draws.")] = 0,
    timeout: Timeout = 10.0,
    start_method: StartMethodOpt = None,
    json_out: Json = False,
) -> None:
    """Search schedules of a larger sale for one that breaks an invariant, and shrink it."""
    from ticketsim.core import paths  # noqa: PLC0415 - start-up time
    from ticketsim.search.explore import check_hunt  # noqa: PLC0415
    from ticketsim.search.explore import hunt as run_hunt  # noqa: PLC0415
    from ticketsim.views.render import hunt_view  # noqa: PLC0415 - start-up time

    filelock = _strategy(strategy, lock) == StrategyName.FILELOCK
    _guarded(lambda: paths.vet(paths.db(db, lock=filelock)))

    _guarded(lambda: check_hunt(max_examples, pct_runs, depth, seed))
    scenario = _scenario(_strategy(strategy, lock), buyers, tickets, db, start_method, timeout)
    result = _guarded(
        lambda: run_hunt(
            scenario, max_examples=max_examples, pct_runs=pct_runs, depth=depth, seed=seed
        )
    )
    if json_out:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        _console().print(hunt_view(result))
    raise typer.Exit(int(result.exit_code))


@_command(
    epilog="Example: 'ticketsim run --history run.jsonl' now, 'ticketsim check --history "
    "run.jsonl' later."
)
def check(
    history: Annotated[Path, typer.Option(help="A history written by --history.", **_PATH)],
    db: Db = DEFAULT_DB,
    json_out: Json = False,
) -> None:
    """Re-check a saved db and history offline, with the same checker as 'run'.

    Same report and JSON keys as 'run'.
    """
    from ticketsim.analysis import history as historyfile  # noqa: PLC0415 - start-up time
    from ticketsim.analysis.report import build_report  # noqa: PLC0415 - start-up time
    from ticketsim.core import paths  # noqa: PLC0415 - start-up time

    _guarded(
        lambda: paths.vet(
            paths.source("--history", history, "write one with ticketsim run --history"),
            paths.source("--db", db, "give the db the history was written against"),
        )
    )
    try:
        result = historyfile.load(history, db)
    except historyfile.HistoryError as exc:
        fail(f"--history={exc}")
    except DbError as exc:  # a db that is not the history's
        fail(f"--db={exc.path}: {exc.reason}")
    report = build_report(result)
    _show(report, json_out)
    raise typer.Exit(int(report.exit_code))


@_command(
    "compare",
    epilog=(
        "Example: 'ticketsim compare --buyers 20 --tickets 5 --plot tradeoff.svg' shows "
        "that safety costs speed; '--strategy lock --strategy none' compares just two."
    ),
)
def compare_strategies(
    buyers: Buyers = 20,
    tickets: Tickets = 5,
    strategy: Annotated[
        list[StrategyName] | None,
        typer.Option(
            "--strategy",
            help="A strategy to include (repeat it); default: every strategy.",
            case_sensitive=False,
        ),
    ] = None,
    delay: Annotated[
        float, typer.Option(help="Race window between reading and writing, in seconds.")
    ] = 0.01,
    seed: Annotated[int | None, typer.Option(help="Seed shared by every sale.")] = None,
    start_method: StartMethodOpt = None,
    db: Db = DEFAULT_DB,
    timeout: Timeout = 30.0,
    json_out: Json = False,
    csv_out: Annotated[bool, typer.Option("--csv", help="Print the table as CSV.")] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            help="Write an SVG bar chart of oversold and throughput per strategy.", **_PATH
        ),
    ] = None,
) -> None:
    """Run the same sale under every strategy and compare them in one table.

    Sold, oversold, double-booked seats, lost sales, torn reads, time, throughput and
    verdict, one row per strategy: the trade-off "safety costs speed" at a glance.
    """
    import random  # noqa: PLC0415 - start-up time

    from ticketsim.core import paths, settings  # noqa: PLC0415 - start-up time
    from ticketsim.search import compare as comparing  # noqa: PLC0415

    if json_out and csv_out:
        fail("--json and --csv both print the table; give one of them")
    if plot is not None and plot.suffix.lower() != ".svg":
        fail(f"--plot={plot}: give a .svg path")
    filelock = not strategy or StrategyName.FILELOCK in strategy
    _guarded(lambda: paths.vet(paths.db(db, lock=filelock), paths.output("--plot", plot)))
    chosen = seed if seed is not None else random.SystemRandom().randrange(2**32)
    base: RunConfig = _guarded(
        lambda: settings.RunConfig(
            buyers=buyers, tickets=tickets, delay=delay, seed=chosen, db_path=db,
            timeout=timeout, start_method=start_method.value if start_method else None,
        )
    )  # fmt: skip
    names = [s.value for s in strategy] if strategy else None
    rows = _guarded(lambda: comparing.compare(base, names))
    title = f"{buyers} buyers, {tickets} tickets, delay {delay:g} s, seed {chosen}"
    if json_out:
        typer.echo(json.dumps({"seed": chosen, "rows": [r.to_json() for r in rows]}, indent=2))
    elif csv_out:
        typer.echo(comparing.to_csv(rows), nl=False)
    else:
        _console().print(comparing.table_view(rows, title))
    if plot is not None:  # after the table: a write that fails loses nothing more
        _guarded(lambda: comparing.write_plot(plot, rows, title))
    raise typer.Exit(comparing.exit_code(rows))


@_command(epilog="Example: 'ticketsim demo --yes' runs the whole lesson without pausing.")
def demo(
    yes: Annotated[bool, typer.Option("--yes", help="Run straight through, no pauses.")] = False,
    db: Db = DEFAULT_DB,
) -> None:
    """A guided lesson: the race, the lock and its cost, the Value misconception, the seat
    map, two programs on one db, a killed lock holder. Each step is a real sale."""
    from ticketsim.core import paths  # noqa: PLC0415 - start-up time
    from ticketsim.search.demo import lessons, run_step  # noqa: PLC0415
    from ticketsim.views.render import report_view  # noqa: PLC0415 - start-up time

    _guarded(lambda: paths.vet(paths.db(db, lock=True)))  # lessons 5 and 6 use a file lock
    console = _console()
    for lesson in _guarded(lambda: lessons(db)):
        console.rule(lesson.title)
        console.print(lesson.before)
        outcome = _guarded(partial(run_step, lesson))
        for report in outcome.reports:
            console.print(report_view(report))
        for strategy, sold, ledger in outcome.programs:
            console.print(
                f"two programs with {strategy}: {sold} buyer(s) told they got the last "
                f"ticket; {ledger} sale(s) in the shared ledger",
                style="bold green" if sold == 1 else "bold red",
            )
        console.print(lesson.after, style="italic")
        if not yes and sys.stdin.isatty() and not _next_step():
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


@_command(
    "strategies",
    epilog="Example: 'ticketsim strategies --json' for the same table as data.",
)
def list_strategies(json_out: Json = False) -> None:
    """What each strategy protects (every yes and no is checked by the test suite)."""
    from ticketsim.core.catalog import CATALOG  # noqa: PLC0415 - start-up time
    from ticketsim.views.render import strategies_view  # noqa: PLC0415 - start-up time

    rows = [info.describe() for info in CATALOG.values()]
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
    else:
        _console().print(strategies_view(rows))


class _Terminated(BaseException):
    """SIGTERM or SIGHUP, raised where the program is, so that every ``finally`` runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_ending(signum: int, frame: object) -> None:
    del frame
    raise _Terminated(signum)


#: How each ending signal is reported: its exit code and its word.
_ENDINGS: Final = {signal.SIGTERM: (ExitCode.TERMINATED, "terminated")} | (
    {signal.SIGHUP: (ExitCode.HUNG_UP, "hung up")} if hasattr(signal, "SIGHUP") else {}
)


def _no_more_interrupts() -> None:
    """Once the outcome is decided: a late Ctrl-C or SIGTERM must not break the exit
    (multiprocessing's atexit joins, finalizers) into an "Exception ignored" traceback."""
    for signum in (signal.SIGINT, *_ENDINGS):
        with contextlib.suppress(ValueError, OSError):
            signal.signal(signum, signal.SIG_IGN)


def _check_stdout_open() -> None:
    """A stdout closed at start (``>&-``): hold its fd with /dev/null, so that no file
    ticketsim opens becomes fd 1 by chance, and end quietly like a broken pipe."""
    try:
        os.fstat(1)
    except OSError:
        _quiet_stdout()
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stdout, for the whole run


def main() -> None:
    _check_stdout_open()
    for signum in _ENDINGS:
        signal.signal(signum, _on_ending)
    try:
        app(prog_name="ticketsim")
    except _Terminated as exc:
        _no_more_interrupts()
        code, word = _ENDINGS[signal.Signals(exc.signum)]
        _stderr(f"ticketsim: {word}; {_ENDED}")
        sys.exit(code)
    finally:
        _no_more_interrupts()
