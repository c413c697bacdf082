"""The typer application: its root options, the group that turns every error into one
line and an exit code, the registration of the commands, and the signals that end a run."""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import sys
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer
from typer.core import TyperGroup

from ticketsim import __version__
from ticketsim.cli import errors, output
from ticketsim.core.exits import ExitCode, help_table

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

_ENDED: Final = "every buyer process was ended and the db keeps every sale made"

#: The order ``ticketsim --help`` lists the commands in, wherever each is written.
_LISTED: Final = (
    "run", "show", "reset", "replay", "explore", "hunt", "check", "compare", "demo", "play",
    "strategies",
    "buyers",
)  # fmt: skip


class _OneLineErrors(TyperGroup):
    """Usage errors as one line on stderr instead of a usage panel.

    (``Any`` for click's context and help formatter: typer does not export their types.)
    """

    def invoke(self, ctx: Any) -> Any:
        # Here rather than around each command: a command's --help is printed while it
        # is parsed, which happens inside this call too.
        try:
            return super().invoke(ctx)
        except (BrokenPipeError, EOFError) as exc:
            raise output.Escaped(exc) from exc

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
            # click ends a write to a broken pipe (its --help's) with exit 1, once it has
            # put its wrapper on stdout; a broken pipe is 141 here, as for every output.
            if code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
                code = ExitCode.STDOUT_CLOSED
        code = output.flushed(code if isinstance(code, int) else 0)
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
        debug = "--debug" in (sys.argv[1:] if args is None else args)
        try:
            code = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except errors.CLICK_ERROR as exc:
            try:
                return errors.usage(exc, args)
            except OSError as failed:  # the help it prints can meet a full or closed stdout
                if isinstance(failed, BrokenPipeError) and output.stdout_gone():
                    return ExitCode.STDOUT_CLOSED
                errors.end(failed, debug=debug)
        except typer.Abort:
            # Ctrl-C or Ctrl-D at one of click's prompts.
            code = ExitCode.INTERRUPTED
        except output.Escaped as escaped:
            if isinstance(escaped.error, BrokenPipeError) and output.stdout_gone():
                return ExitCode.STDOUT_CLOSED
            errors.end(escaped.error, debug=debug)
        except Exception as exc:
            errors.end(exc, debug=debug)
        if code == ExitCode.INTERRUPTED:
            output.stderr_line(f"ticketsim: interrupted; {_ENDED}")
        return code

    def format_commands(self, ctx: Any, formatter: Any) -> None:
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


app = typer.Typer(
    cls=_OneLineErrors,
    no_args_is_help=True,
    add_completion=True,
    # Click's plain help: typer's rich help would import rich and markdown-it.
    rich_markup_mode=None,
    help="Reproduce the ticket-grab race between processes, and see each protection work.",
)


def command(
    name: str | None = None, *, epilog: str
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a command whose help ends with its example and its table of exit codes."""

    def register(function: Callable[..., None]) -> Callable[..., None]:
        listed = name or function.__name__
        table = help_table(listed)
        app.command(listed, epilog=f"{epilog}\n\n{table}")(function)
        app.registered_commands.sort(key=lambda info: _LISTED.index(info.name or ""))
        return function

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
    # And held for good: the interpreter's own finalisation puts back the default
    # action of a signal whose handler was Python's, and an exit is no time to die.
    with contextlib.suppress(ValueError, OSError, AttributeError):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, *_ENDINGS})


@contextlib.contextmanager
def _only_the_command_asked(args: Sequence[str]) -> Iterator[None]:
    """While ``args`` run, register only the command or group they name, if they name one.

    typer builds every command of the application before it looks at the arguments,
    reading each command's signature and every option's declaration: a tenth as long as
    all of ``ticketsim run`` takes without its buyers. Help on the whole program, shell
    completion and anything that does not start with a command's name see them all.
    """
    named = next((arg for arg in args if not arg.startswith("-")), None)
    options = args[: args.index(named)] if named is not None else args
    commands = [info for info in app.registered_commands if info.name == named]
    groups = [info for info in app.registered_groups if info.name == named]
    completing = any(key.startswith("_") and key.endswith("_COMPLETE") for key in os.environ)
    # --debug is the only root option that can come before a command and let it run.
    if not (commands or groups) or completing or any(o != "--debug" for o in options):
        yield
        return
    every = app.registered_commands, app.registered_groups
    app.registered_commands, app.registered_groups = commands, groups
    try:
        yield
    finally:
        app.registered_commands, app.registered_groups = every


def main() -> None:
    output.check_stdout_open()
    for signum in _ENDINGS:
        signal.signal(signum, _on_ending)
    code: Any = None
    try:
        try:
            with _only_the_command_asked(sys.argv[1:]):
                app(prog_name="ticketsim")
        except SystemExit as exc:
            code = exc.code  # the outcome: what a late interrupt must not undo
        finally:
            _no_more_interrupts()
    except (KeyboardInterrupt, _Terminated) as exc:
        # An interrupt that landed once the outcome was decided (between the last word
        # and the exit) leaves it as it was; one that landed before ends the run as any
        # interrupt does.
        _no_more_interrupts()
        if code is None:
            code, word = (
                _ENDINGS[signal.Signals(exc.signum)]
                if isinstance(exc, _Terminated)
                else (ExitCode.INTERRUPTED, "interrupted")
            )
            output.stderr_line(f"ticketsim: {word}; {_ENDED}")
    sys.exit(code)
