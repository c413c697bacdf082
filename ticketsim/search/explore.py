"""Search the orders of buyers' steps for one that breaks an invariant.

:func:`explore` runs one order of every class that can end differently, made as it
goes (fewest preemptions first, one trace of commuting steps, one of interchangeable
buyers), and stops at the first counterexample; :func:`hunt` searches larger ones,
with hypothesis (which shrinks what it finds) and with PCT random schedules. Each
schedule is a real controlled sale: real processes, primitives and db file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import shlex
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from ticketsim.analysis.checker import Kind
from ticketsim.analysis.report import Report, build_report
from ticketsim.core import catalog
from ticketsim.core import schedule as sched
from ticketsim.core.events import Step
from ticketsim.core.exits import ExitCode
from ticketsim.core.frozen import field, frozen, replace
from ticketsim.core.names import DEFAULT_DB, StoreKind, StrategyName
from ticketsim.core.settings import (
    RunConfig,
    require_controlled,
    require_exploration,
    require_hunt,
    require_number_of_seconds,
    require_start_method,
    require_whole,
)
from ticketsim.engine.databases import PrivateServers
from ticketsim.engine.runner import run_sale

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from pathlib import Path

    from ticketsim.core.result import RunResult

__all__ = [
    "Counterexample",
    "Exploration",
    "Hunt",
    "Scenario",
    "counterexample",
    "explore",
    "hunt",
    "signature",
]


@frozen
class Scenario:
    """The sale every schedule of a search is run on.

    Construction refuses (:class:`ConfigError`) a value of the wrong kind; the bounds
    are checked by :meth:`check`, which :func:`explore` and :func:`hunt` call before
    they run anything: they depend on the search (explore takes fewer buyers than
    hunt, and says so first).
    """

    strategy: str = StrategyName.NONE.value
    buyers: int = 2
    tickets: int = 1
    db_path: Path = DEFAULT_DB
    start_method: str | None = None
    timeout: float = 10.0
    #: Private servers for a database strategy, started once for every schedule.
    servers: Mapping[StoreKind, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        require_whole("buyers", self.buyers, "buyers")
        require_whole("tickets", self.tickets, "tickets")
        require_number_of_seconds("timeout", self.timeout)
        catalog.info(self.strategy)
        require_start_method("start_method", self.start_method)

    def check(self) -> None:
        """Refuse (:class:`ConfigError`) a sale none of whose schedules can run, with the
        words of the command line, before any schedule runs."""
        # The serial schedule can run under every strategy: what the run's settings refuse
        # of it, they refuse of every schedule.
        self.config(" ".join(f"{b}r {b}w" for b in range(1, self.buyers + 1)))

    def config(self, schedule: sched.Schedule | str) -> RunConfig:
        """The settings of a run of ``schedule``; :class:`ConfigError` if it cannot run."""
        require_controlled(self.buyers)
        return RunConfig(
            buyers=self.buyers,
            tickets=self.tickets,
            strategy=self.strategy,
            db_path=self.db_path,
            delay=0.0,
            seed=0,
            timeout=self.timeout,
            start_method=self.start_method,
            schedule=str(schedule),
        )

    def replay_command(self, schedule: sched.Schedule | str) -> str:
        words = [
            "ticketsim", "replay",
            "--strategy", self.strategy,
            "--buyers", str(self.buyers),
            "--tickets", str(self.tickets),
            "--schedule", str(schedule),
        ]  # fmt: skip
        if self.db_path != DEFAULT_DB:
            words += ["--db", os.fspath(self.db_path)]
        if self.start_method:
            words += ["--start-method", self.start_method]
        return shlex.join(words)

    def result(self, schedule: sched.Schedule | str) -> RunResult:
        """What a run of ``schedule`` recorded."""
        return run_sale(self.config(schedule), servers=self.servers)

    def run(self, schedule: sched.Schedule | str) -> Report:
        """The report of a run of ``schedule``."""
        return build_report(self.result(schedule))

    def to_json(self) -> dict[str, Any]:
        """The sale's size and strategy, as every search's JSON starts."""
        return {"strategy": self.strategy, "buyers": self.buyers, "tickets": self.tickets}


def signature(result: RunResult) -> tuple[object, ...]:
    """What must be the same every time a schedule is replayed: the db left behind and
    the history, apart from pids and times (and the order in which buyers got ready,
    which happens before the schedule starts)."""
    final = result.final
    db = (
        None if final is None else (final.remaining, tuple((s.buyer, s.seat) for s in final.ledger))
    )
    steps = tuple(
        (e.buyer, e.step.value, e.value, e.seat, e.note)
        for e in result.history
        if e.step is not Step.READY
    )
    ready = sorted(e.buyer for e in result.history if e.step is Step.READY)
    return (db, steps, tuple(ready), result.stalled)


@frozen
class Counterexample:
    schedule: str
    explanation: str
    kinds: tuple[str, ...]
    replay: str

    def to_json(self) -> dict[str, Any]:
        return {
            "schedule": self.schedule,
            "explanation": self.explanation,
            "kinds": list(self.kinds),
            "replay": self.replay,
        }


def _json_of(found: Counterexample | None) -> dict[str, Any] | None:
    return found.to_json() if found is not None else None


def counterexample(scenario: Scenario, schedule: sched.Schedule, report: Report) -> Counterexample:
    """The story of a violating schedule: the lost update if there is one, else the first."""
    stories = sorted(report.violations, key=lambda v: v.kind is not Kind.DOUBLE_BOOKED)
    return Counterexample(
        schedule=str(schedule),
        explanation=stories[0].explanation,
        kinds=tuple(dict.fromkeys(v.kind.value for v in report.violations)),
        replay=scenario.replay_command(schedule),
    )


@frozen
class Exploration:
    scenario: Scenario
    #: Orders of every buyer's steps: ``(2B)! / 2^B``.
    interleavings: int
    #: Of those, the orders the strategy lets run (under a lock, no two buyers hold it).
    feasible: int
    #: Schedules run, one per class of orders (:func:`ticketsim.core.schedule.reduced`).
    explored: int
    #: Explored schedules that broke an invariant.
    violating: int
    #: Violating schedules per kind of violation.
    by_kind: dict[str, int]
    #: The first violating schedule found: fewest preemptions, then the earliest.
    counterexample: Counterexample | None
    #: Seconds the search took (the replays of the counterexample not included).
    elapsed_s: float
    preemption_bound: int | None
    #: ``max_schedules`` stopped the search before every class was run.
    truncated: bool
    #: ``preemption_bound`` left classes out: only those within it were run.
    bounded: bool = False
    #: Schedules that did not run to their end (stalled, or a buyer died), with why:
    #: nothing was checked of them.
    stalled: tuple[str, ...] = ()
    #: The search stopped at its first counterexample with classes left (``every``
    #: would have gone on).
    stopped_at_first: bool = False
    #: Runs of the counterexample after it was found, and how many of them ended with
    #: the same db and history (apart from pids and times).
    replays: int = 0
    reproduced: int = 0

    @property
    def exhausted(self) -> bool:
        """Whether every class of orders was run: none left by the first counterexample,
        ``max_schedules`` or the preemption bound."""
        return not self.truncated and not self.stopped_at_first and not self.bounded

    @property
    def complete(self) -> bool:
        """Whether every class of interleavings was run to its end, so that "no order
        breaks an invariant" is a claim the search checked."""
        return self.exhausted and not self.stalled

    @property
    def exit_code(self) -> ExitCode:
        if self.counterexample is not None:
            return ExitCode.VIOLATED
        return ExitCode.OK if self.complete else ExitCode.STALLED

    @property
    def schedules_per_s(self) -> float:
        return self.explored / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            **self.scenario.to_json(),
            "interleavings": self.interleavings,
            "feasible": self.feasible,
            "explored": self.explored,
            "violating": self.violating,
            "by_kind": self.by_kind,
            "counterexample": _json_of(self.counterexample),
            "replays": self.replays,
            "reproduced": self.reproduced,
            "preemption_bound": self.preemption_bound,
            "truncated": self.truncated,
            "bounded": self.bounded,
            "stopped_at_first": self.stopped_at_first,
            "stalled": list(self.stalled),
            "complete": self.complete,
            "exit_code": int(self.exit_code),
            "elapsed_s": round(self.elapsed_s, 6),
            "schedules_per_s": round(self.schedules_per_s, 2),
        }


def explore(
    scenario: Scenario,
    *,
    max_schedules: int = 1000,
    preemption_bound: int | None = None,
    every: bool = False,
    replays: int = 10,
) -> Exploration:
    """Run one schedule of every class of feasible orders, simplest first, made as the
    search goes (:func:`ticketsim.core.schedule.reduced`); stop at the first that breaks
    an invariant unless ``every``, and run that one ``replays`` times more.

    A schedule that breaks an invariant for certain counts as violating even if it did
    not finish; one that did not finish otherwise is listed in ``stalled``, and the
    exploration is then incomplete, as it is when ``max_schedules`` or the first
    counterexample cut it short.
    """
    require_exploration(scenario.buyers, max_schedules, preemption_bound, replays)
    scenario.check()
    model = catalog.info(scenario.strategy).model()
    with _served(scenario) as served:
        search = _Search(served, every)
        schedules = sched.reduced(
            scenario.buyers, model, preemption_bound=preemption_bound, tickets=scenario.tickets
        )
        truncated = search.run(schedules, max_schedules)
        reproduced = search.replay(replays)
    return Exploration(
        scenario=scenario,
        interleavings=sched.interleavings(scenario.buyers),
        feasible=model.feasible(scenario.buyers, scenario.tickets),
        explored=search.explored,
        violating=search.violating,
        by_kind=dict(sorted(search.kinds.items())),
        counterexample=search.found,
        elapsed_s=search.elapsed_s,
        preemption_bound=preemption_bound,
        truncated=truncated,
        bounded=schedules.bounded and not truncated and not search.stopped,
        stalled=tuple(search.stalled),
        stopped_at_first=search.stopped,
        replays=replays if search.found is not None else 0,
        reproduced=reproduced,
    )


@contextlib.contextmanager
def _served(scenario: Scenario) -> Iterator[Scenario]:
    """``scenario`` with private servers for all its runs, unless it brought its own: a
    database strategy would otherwise start and stop a server for every schedule. (They
    start on first use: a strategy on the db file starts none.)"""
    if scenario.servers:
        yield scenario
        return
    with PrivateServers() as servers:
        yield replace(scenario, servers=servers)


@dataclasses.dataclass
class _Search:
    """What an exploration has run so far: counts, never the schedules themselves."""

    scenario: Scenario
    every: bool
    explored: int = 0
    violating: int = 0
    kinds: Counter[str] = dataclasses.field(default_factory=Counter)
    found: Counterexample | None = None
    #: The run of the counterexample, which its replays must match.
    first: RunResult | None = None
    stalled: list[str] = dataclasses.field(default_factory=list)
    stopped: bool = False
    elapsed_s: float = 0.0

    def run(self, schedules: Iterator[sched.Schedule], max_schedules: int) -> bool:
        """Run ``schedules`` in turn; whether ``max_schedules`` left some unrun."""
        started = time.monotonic()
        try:
            for schedule in schedules:
                if self.found is not None and not self.every:
                    self.stopped = True
                    return False
                if self.explored == max_schedules:
                    return True
                self._one(schedule)
            return False
        finally:
            self.elapsed_s = time.monotonic() - started

    def _one(self, schedule: sched.Schedule) -> None:
        result = self.scenario.result(schedule)
        report = build_report(result)
        self.explored += 1
        if report.exit_code is ExitCode.STALLED:
            self.stalled.append(f"{schedule}: {report.verdict}")
        elif report.exit_code is ExitCode.VIOLATED:
            self.violating += 1
            self.kinds.update({v.kind.value for v in report.violations})
            if self.found is None:
                self.found = counterexample(self.scenario, schedule, report)
                self.first = result

    def replay(self, replays: int) -> int:
        """How many of ``replays`` more runs of the counterexample end as it did."""
        if self.found is None or self.first is None:
            return 0
        same = signature(self.first)
        return sum(
            signature(self.scenario.result(self.found.schedule)) == same for _ in range(replays)
        )


@frozen
class Hunt:
    scenario: Scenario
    #: Schedules run by hypothesis, and by PCT.
    hypothesis_runs: int
    pct_runs: int
    depth: int
    #: The simplest violating schedule either search found, or ``None``.
    counterexample: Counterexample | None
    elapsed_s: float
    #: Schedules that did not run to their end, with why: nothing was checked of them.
    stalled: tuple[str, ...] = ()

    @property
    def exit_code(self) -> ExitCode:
        if self.counterexample is not None:
            return ExitCode.VIOLATED
        return ExitCode.STALLED if self.stalled else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            **self.scenario.to_json(),
            "hypothesis_runs": self.hypothesis_runs,
            "pct_runs": self.pct_runs,
            "depth": self.depth,
            "counterexample": _json_of(self.counterexample),
            "stalled": list(self.stalled),
            "exit_code": int(self.exit_code),
            "elapsed_s": round(self.elapsed_s, 6),
        }


def hunt(
    scenario: Scenario,
    *,
    max_examples: int = 50,
    pct_runs: int = 50,
    depth: int = 2,
    seed: int = 0,
) -> Hunt:
    """Search schedules of a sale too large to explore: hypothesis, then PCT.

    Hypothesis draws the sale's size (up to ``scenario``'s buyers and tickets) and the
    order in which buyers move, and shrinks a violating draw to a simplest one: fewest
    buyers and tickets, then the order closest to one buyer at a time. PCT
    (probabilistic concurrency testing) draws random priorities with ``depth - 1``
    priority changes on the full-size sale; it finds a bug of depth ``d`` with
    probability at least ``1 / (n k^(d-1))`` per run (``n`` buyers, ``k`` steps).
    The simplest violating schedule of either is reported.
    """
    require_hunt(max_examples, pct_runs, depth, seed)
    scenario.check()
    started = time.monotonic()
    with _served(scenario) as served:
        trials = _Trials(served, catalog.info(scenario.strategy).model())
        if max_examples > 0:
            _search_with_hypothesis(trials, max_examples)
        hypothesis_runs = trials.runs
        _search_with_pct(trials, pct_runs, depth, seed)
    return Hunt(
        scenario=scenario,
        hypothesis_runs=hypothesis_runs,
        pct_runs=trials.runs - hypothesis_runs,
        depth=depth,
        counterexample=trials.simplest(),
        elapsed_s=time.monotonic() - started,
        stalled=tuple(trials.stalled.values()),
    )


#: A sale's size and a schedule of it: what a hunt runs.
_Trial = tuple[int, int, sched.Schedule]


@dataclasses.dataclass
class _Trials:
    """The schedules a hunt has run, each once, and what they did."""

    scenario: Scenario
    model: sched.Model
    reports: dict[_Trial, Report] = dataclasses.field(default_factory=dict)
    violating: list[_Trial] = dataclasses.field(default_factory=list)
    #: Why each schedule that did not run to its end stopped.
    stalled: dict[_Trial, str] = dataclasses.field(default_factory=dict)

    @property
    def runs(self) -> int:
        return len(self.reports)

    def breaks(self, buyers: int, tickets: int, order: Sequence[int]) -> bool:
        """Whether the schedule in which buyers move in ``order`` breaks an invariant;
        one the strategy cannot run does not (and is not run)."""
        taken: Counter[int] = Counter()
        actions = []
        for buyer in order:
            actions.append(sched.Action(buyer, sched.MOVES[taken[buyer]]))
            taken[buyer] += 1
        schedule = sched.Schedule(tuple(actions))
        if self.model.blocked_at(schedule, tickets) is not None:
            return False
        key = (buyers, tickets, schedule)
        if key not in self.reports:
            sale = replace(self.scenario, buyers=buyers, tickets=tickets)
            self.reports[key] = sale.run(schedule)
        report = self.reports[key]
        if report.exit_code is ExitCode.VIOLATED:
            self.violating.append(key)
            return True
        if report.exit_code is ExitCode.STALLED:
            self.stalled[key] = f"{schedule}: {report.verdict}"
        return False

    def simplest(self) -> Counterexample | None:
        """The violating schedule of the smallest sale, then fewest preemptions, then lowest."""
        if not self.violating:
            return None
        buyers, tickets, schedule = min(
            self.violating, key=lambda k: (k[0], k[1], k[2].preemptions(), k[2].actions)
        )
        smallest = replace(self.scenario, buyers=buyers, tickets=tickets)
        return counterexample(smallest, schedule, self.reports[buyers, tickets, schedule])


def _search_with_hypothesis(trials: _Trials, max_examples: int) -> None:
    """Let hypothesis draw sales up to the scenario's size and orders of their buyers'
    moves, and shrink the first violating draw."""
    from hypothesis import HealthCheck, Phase, find, settings  # noqa: PLC0415 - parent only
    from hypothesis import strategies as st  # noqa: PLC0415
    from hypothesis.errors import NoSuchExample  # noqa: PLC0415

    scenario = trials.scenario

    def moves(buyers: int) -> list[int]:
        return [b for b in range(1, buyers + 1) for _ in sched.MOVES]

    sales = st.tuples(
        st.integers(min(2, scenario.buyers), scenario.buyers),
        st.integers(min(1, scenario.tickets), scenario.tickets),
    ).flatmap(lambda size: st.tuples(st.just(size), st.permutations(moves(size[0]))))
    with contextlib.suppress(NoSuchExample):
        find(
            sales,
            lambda drawn: trials.breaks(drawn[0][0], drawn[0][1], drawn[1]),
            settings=settings(
                max_examples=max_examples,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            ),
        )


def _search_with_pct(trials: _Trials, runs: int, depth: int, seed: int) -> None:
    """Run ``runs`` PCT schedules of the full-size sale, drawn from ``seed``."""
    scenario = trials.scenario
    rng = random.Random(seed)
    for _ in range(runs):
        draws = [rng.random() for _ in range(scenario.buyers + depth)]
        schedule = sched.pct_schedule(scenario.buyers, depth, trials.model, draws, scenario.tickets)
        trials.breaks(scenario.buyers, scenario.tickets, [a.buyer for a in schedule.actions])
