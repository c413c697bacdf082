"""The ``ticketsim`` command line: parse, call the library, render, exit.

Errors in what the user typed end as one line on stderr that names the bad value
and says what to do, with exit code 2, before any process starts or any file is
written.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

# typer vendors click; its exception types are only reachable here.
from typer._click.exceptions import BadParameter, ClickException, NoArgsIsHelpError
from typer.core import TyperGroup

from ticketsim import __version__, runner
from ticketsim import db as dbfile
from ticketsim.errors import ConfigError, DbError
from ticketsim.events import to_jsonl
from ticketsim.render import report_view, strategies_view
from ticketsim.report import ExitCode, build_report
from ticketsim.strategies import STRATEGIES, StrategyName

if TYPE_CHECKING:
    from collections.abc import Sequence


class StartMethod(str, Enum):
    FORK = "fork"
    SPAWN = "spawn"
    FORKSERVER = "forkserver"


class _OneLineErrors(TyperGroup):
    """Usage errors as one line on stderr instead of a usage panel."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except NoArgsIsHelpError:
            sys.exit(0)  # the help has been shown, which is what a bare command asks for
        except ClickException as exc:
            fail(_usage_message(exc, args), exc.exit_code)
        except typer.Abort:
            fail("interrupted", 130)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def _given(option: str, args: Sequence[str]) -> str | None:
    """What the user typed for ``option``, to echo it back (click does not keep it)."""
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(option + "="):
            return arg.partition("=")[2]
    return None


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


def fail(message: str, code: int = ExitCode.BAD_INPUT) -> NoReturn:
    """Print ``message`` as the one line of an error and exit with ``code``."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"ticketsim: error: {message}", markup=False
    )
    sys.exit(code)


app = typer.Typer(
    cls=_OneLineErrors,
    no_args_is_help=True,
    add_completion=True,
    help="Reproduce the ticket-grab race between processes, and see each protection work.",
)


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
) -> None:
    """Reproduce the ticket-grab race between processes, and see each protection work."""


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _write_text_atomic(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


@app.command(
    epilog=(
        "Examples: 'ticketsim run --buyers 50' oversells; "
        "'ticketsim run --buyers 50 --lock' does not; "
        "'ticketsim run --json --history run.jsonl' for scripts."
    )
)
def run(
    buyers: Annotated[int, typer.Option(help="How many buyer processes.")] = 50,
    tickets: Annotated[int, typer.Option(help="Tickets put on sale (ignored with --keep).")] = 10,
    strategy: Annotated[
        StrategyName | None,
        typer.Option(help="How buyers share the db.", case_sensitive=False, show_default="none"),
    ] = None,
    lock: Annotated[bool, typer.Option("--lock", help="Shorthand for --strategy lock.")] = False,
    db: Annotated[
        Path,
        typer.Option(envvar="TICKETSIM_DB", help="The JSON ticket db.", show_default=True),
    ] = dbfile.DEFAULT_DB,
    delay: Annotated[
        float, typer.Option(help="Race window between reading and writing, in seconds.")
    ] = 0.1,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the race-window jitter (default: random).")
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="End the sale after this many seconds without progress.")
    ] = 30.0,
    start_method: Annotated[
        StartMethod | None,
        typer.Option(help="How buyer processes start (default: the platform's)."),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the report as one JSON object.")
    ] = False,
    keep: Annotated[
        bool, typer.Option(help="Sell from the db as it is instead of resetting it.")
    ] = False,
    history: Annotated[
        Path | None, typer.Option(help="Write the event history here, as JSON Lines.")
    ] = None,
    pool: Annotated[
        int | None,
        typer.Option(help="Run the buyers as tasks of a Pool of N worker processes."),
    ] = None,
    lockstep: Annotated[
        bool,
        typer.Option(
            help="Force the race: every buyer reads, then each writes in turn (none only)."
        ),
    ] = False,
) -> None:
    """Run one sale: BUYERS processes try to buy TICKETS tickets from the db at once.

    Exit codes: 0 every invariant held; 1 an invariant was violated; 2 bad input;
    3 the sale stalled and was ended.
    """
    if lock and strategy not in (None, StrategyName.LOCK):
        fail(f"--lock and --strategy={strategy.value} disagree; give one of them")
    chosen = StrategyName.LOCK if lock else (strategy or StrategyName.NONE)
    if history is not None and (history.is_dir() or not history.parent.is_dir()):
        fail(f"--history={history}: needs a file path in an existing folder")
    try:
        config = runner.RunConfig(
            buyers=buyers,
            tickets=tickets,
            strategy=chosen.value,
            db_path=db,
            delay=delay,
            seed=seed,
            timeout=timeout,
            start_method=start_method.value if start_method else None,
            keep=keep,
            lockstep=lockstep,
            pool=pool,
        )
        result = runner.run_sale(config)
    except ConfigError as exc:
        fail(f"{_option(exc.name)}={exc.value}: {exc.advice}")
    except DbError as exc:
        fail(f"--db={exc.path}: {exc.reason}")
    report = build_report(result)
    if history is not None:
        _write_text_atomic(history, to_jsonl(result.history))
    if json_out:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        Console(highlight=False).print(report_view(report))
    raise typer.Exit(int(report.exit_code))


@app.command(
    "strategies",
    epilog="Example: 'ticketsim strategies --json' for the same table as data.",
)
def list_strategies(
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the table as a JSON list.")
    ] = False,
) -> None:
    """What each strategy protects (every yes and no is checked by the test suite)."""
    rows = [strategy.describe() for strategy in STRATEGIES.values()]
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
    else:
        Console(highlight=False).print(strategies_view(rows))


def main() -> None:
    app(prog_name="ticketsim")
