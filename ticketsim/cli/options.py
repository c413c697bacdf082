"""The options of the commands, each declared once with its help, so that every command
that takes ``--buyers`` or ``--db`` parses and explains it the same way.

Bounds are not given to click (``min=``, ``max=``): click would refuse a value with its
own words ("0 is not in the range") and print the range in every ``--help``. The library
checks each value where it is used, with the words of :mod:`ticketsim.core.settings`, and
so does the command line for the few values that only it takes (:data:`MAX_REPEAT`).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from ticketsim.cli.errors import BadInput
from ticketsim.core.names import StrategyName, WorkerKind, WorldName

#: The most runs of one schedule ``replay --repeat`` makes.
MAX_REPEAT: Final = 1000


class StartMethod(str, Enum):
    FORK = "fork"
    SPAWN = "spawn"
    FORKSERVER = "forkserver"


def strategy_of(strategy: StrategyName | WorldName | None, lock: bool) -> str:
    """The strategy ``--strategy`` and its shorthand ``--lock`` ask for together."""
    if lock and strategy not in (None, StrategyName.LOCK):
        raise BadInput(f"--lock and --strategy={strategy.value} disagree; give one of them")
    return str((StrategyName.LOCK if lock else (strategy or StrategyName.NONE)).value)


def store_strategy_of(
    strategy: StrategyName | WorldName | None, lock: bool, store: str | None
) -> str:
    """The strategy of a sale on ``--store``: the one asked for, else that store's naive
    one (the race, as ``run`` shows it on the db file by default)."""
    from ticketsim.core import stores  # noqa: PLC0415 - start-up time

    if store in stores.OWN:
        return stores.own_strategy(store, strategy_of(strategy, lock) if strategy or lock else None)
    if store is None or strategy is not None or lock:
        return strategy_of(strategy, lock)
    return stores.NAIVE[stores.parse(store).kind].value


def run_strategy_of(chosen: Enum | None) -> StrategyName | WorldName | None:
    """``run --strategy``'s choice as its name: a process strategy's, or one of threads'
    and tasks' (``--workers``)."""
    if chosen is None:
        return None
    name = str(chosen.value)
    if name in {s.value for s in WorldName}:
        return WorldName(name)
    return StrategyName(name)


def start_method_of(start_method: StartMethod | None) -> str | None:
    return start_method.value if start_method else None


def _path_arg(value: str | Path) -> Path:
    """A path option's value, refused if ``Path`` would hide how it was typed: an empty
    one (``Path("")`` is the current folder) or one ending in a slash, which names a
    folder (``Path`` drops the slash). Every other check is ticketsim.core.paths'."""
    text = str(value)
    if not text:
        raise typer.BadParameter("the path is empty; give the path of a file")
    if text.endswith("/"):
        raise typer.BadParameter("ends with a slash, so it names a folder; give the path of a file")
    return Path(text)


#: What every path option is parsed with.
_PATH: Final[dict[str, Any]] = {"parser": _path_arg, "metavar": "PATH"}

# Options shared by several commands.
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
if TYPE_CHECKING:
    RunStrategy = StrategyName
else:
    #: ``run``'s choices: every strategy, those of threads and tasks (``--workers``) too.
    RunStrategy = Enum(
        "RunStrategy",
        {member.name: member.value for member in (*StrategyName, *WorldName)},
        type=str,
    )
RunStrategyOpt = Annotated[
    RunStrategy | None,
    typer.Option(
        "--strategy",
        help="How buyers share the tickets (see 'ticketsim strategies').",
        case_sensitive=False,
        show_default="none",
    ),
]
Workers = Annotated[
    WorkerKind,
    typer.Option(
        "--workers",
        help="What runs each buyer: its own process, a thread, or an asyncio task.",
        case_sensitive=False,
    ),
]
Lock = Annotated[bool, typer.Option("--lock", help="Shorthand for --strategy lock.")]
Db = Annotated[
    Path,
    typer.Option(envvar="TICKETSIM_DB", help="The JSON ticket db.", show_default=True, **_PATH),
]
PauseHolder = Annotated[
    bool,
    typer.Option(
        "--pause-holder",
        help=(
            "SIGSTOP the first buyer to read in its critical section, and SIGCONT it once "
            "every other buyer is done: a holder paused past its lock's lease."
        ),
    ),
]
Store = Annotated[
    str | None,
    typer.Option(
        "--store",
        help=(
            "A database of yours to sell from, instead of the db file: "
            "sqlite:///path.sqlite, postgresql://user@host/db or redis://host:6379/0. "
            "ticketsim touches only what it made there. A bare postgresql, redis or sqlite "
            "is ticketsim's own, started and removed with the sale."
        ),
        show_default=False,
    ),
]
Delay = Annotated[float, typer.Option(help="Race window between reading and writing, in seconds.")]
HostsOpt = Annotated[
    int | None,
    typer.Option(
        "--hosts",
        min=1,
        max=8,
        help=(
            "Spread the buyers over N simulated hosts, each reaching the store over a link of "
            "its own (network namespaces where Linux allows, else process groups); with a "
            "pg- or redis- strategy, or filelock to watch a file lock fail across hosts."
        ),
        show_default=False,
    ),
]
HostMode = Annotated[
    str,
    typer.Option("--host-mode", help="How hosts are made: auto, namespace or process-group."),
]
PartitionOpt = Annotated[
    # A list, so that a second --partition is refused rather than silently kept.
    list[str] | None,
    typer.Option(
        "--partition",
        help=(
            "Cut a host off mid-sale, as HOST@TIME[+LASTING]: host-2@0.5s (for 3 s), "
            "host-2@0.5s+5s, or host-2@read (once its first buyer has read, the other "
            "hosts' buyers held back till then)."
        ),
        show_default=False,
    ),
]
SlowLink = Annotated[
    list[str] | None,
    typer.Option(
        "--slow-link",
        help="Delay a host's link each way, as HOST=DELAY: host-2=50ms. Repeat for more hosts.",
        show_default=False,
    ),
]
ClockSkew = Annotated[
    list[str] | None,
    typer.Option(
        "--clock-skew",
        help="Set a host's clock off in the times it records, as HOST=SKEW: host-2=+2s.",
        show_default=False,
    ),
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

# run
RunTickets = Annotated[int, typer.Option(help="Tickets put on sale (ignored with --keep).")]
RunSeed = Annotated[
    int | None, typer.Option(help="Seed of the race-window jitter (default: random).")
]
Keep = Annotated[bool, typer.Option(help="Sell from the db as it is instead of resetting it.")]
Pool = Annotated[
    int | None,
    typer.Option(
        help="Run the buyers as tasks of a Pool of N worker processes (default: one "
        "process per buyer up to 200 buyers, one worker per core above)."
    ),
]
Lockstep = Annotated[
    bool,
    typer.Option(help="Force the race: every buyer reads, then each writes in turn (none only)."),
]
KillHolder = Annotated[
    bool,
    typer.Option(help="SIGKILL the first buyer inside its critical section (a fault)."),
]
Kill = Annotated[int, typer.Option(help="SIGKILL N buyers at random points, chosen by --seed.")]
Live = Annotated[
    bool, typer.Option(help="Show the sale as it happens: counts and each buyer's step.")
]

# replay
Schedule = Annotated[
    str,
    typer.Option(
        help="The order of steps, like '1r 2r 1w 2w' (buyer, then r for read, w for "
        "write); steps left out follow, in buyer order."
    ),
]
ScheduleBuyers = Annotated[
    int | None, typer.Option(help="How many buyers (default: as many as the schedule names).")
]
Repeat = Annotated[
    int, typer.Option(help="Run the schedule this many times and compare the outcomes.")
]

# explore and hunt
MaxSchedules = Annotated[
    int, typer.Option(help="Run at most this many schedules (simplest first).")
]
PreemptionBound = Annotated[
    int | None,
    typer.Option(help="Only orders that switch away from an unfinished buyer this often."),
]
EveryClass = Annotated[
    bool,
    typer.Option(
        "--all", help="Go on past the first counterexample: run every class, count what breaks."
    ),
]
Replays = Annotated[
    int, typer.Option(help="Run the counterexample this many times more: how often it reproduces.")
]
MaxExamples = Annotated[int, typer.Option(help="Schedules hypothesis may draw (then it shrinks).")]
PctRuns = Annotated[int, typer.Option(help="Random PCT schedules to run.")]
Depth = Annotated[int, typer.Option(help="PCT bug depth: priority changes plus one.")]
PctSeed = Annotated[int, typer.Option(help="Seed of the PCT draws.")]

# check
SavedHistory = Annotated[Path, typer.Option(help="A history written by --history.", **_PATH)]

# compare
Strategies = Annotated[
    list[StrategyName] | None,
    typer.Option(
        "--strategy",
        help="A strategy to include (repeat it); default: every strategy.",
        case_sensitive=False,
    ),
]
SharedSeed = Annotated[int | None, typer.Option(help="Seed shared by every sale.")]
Csv = Annotated[bool, typer.Option("--csv", help="Print the table as CSV.")]
Plot = Annotated[
    Path | None,
    typer.Option(help="Write an SVG bar chart of oversold and throughput per strategy.", **_PATH),
]

# reset and demo
FreshTickets = Annotated[int, typer.Option(help="Tickets to put on sale.")]
EventName = Annotated[str, typer.Option(help="The event's name.")]
Yes = Annotated[bool, typer.Option("--yes", help="Run straight through, no pauses.")]
