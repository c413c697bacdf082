"""Your own buyer, every interleaving: a search over the schedules of a :class:`Race`.

Each sale is played in full, and every turn where another waiting buyer could have
moved is a branch to play next. Branches are taken fewest forced switches first, so
the first counterexample found is one of the simplest schedules that breaks an
invariant; every schedule is played at most once, and a search cut short by
``max_runs`` says it is incomplete.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

from ticketsim.analysis.report import build_report
from ticketsim.core.frozen import frozen
from ticketsim.engine.yours import Played, Race, play

if TYPE_CHECKING:
    from collections.abc import Callable

    from ticketsim.analysis.report import Report


@frozen
class Explored:
    """What a search of a :class:`Race`'s schedules found."""

    #: The first sale that broke an invariant, and its report; ``None`` if none did.
    counterexample: Played | None
    report: Report | None
    #: Sales played.
    runs: int
    #: Whether every schedule within the bound of preemptions was played (nothing found
    #: then means none of those breaks one).
    complete: bool
    #: Whether the bound of preemptions left schedules out, unplayed.
    bounded: bool = False


def explore(race: Race, *, max_runs: int = 1000, preemptions: int | None = None) -> Explored:
    """Play every schedule of ``race`` (up to ``max_runs`` sales), stopping at the first
    one that breaks an invariant. With ``preemptions``, only the schedules that take a
    turn from a buyer in the middle of its purchase at most that many times: a buyer
    that retries for ever (a lease taken back and forth) has endless schedules, and
    most bugs need one or two preemptions (the bound ``complete`` is then about)."""
    queue: collections.deque[tuple[int, ...]] = collections.deque([()])
    runs, bounded = 0, False
    while queue and runs < max_runs:
        prefix = queue.popleft()
        played = play(race, prefix)
        runs += 1
        report = build_report(played.result)
        if report.certain or not report.ok:
            return Explored(played, report, runs, complete=False)
        # Every turn after the prefix where another buyer could have gone instead.
        for turn in range(len(prefix), len(played.order)):
            taken = _preempted(played, turn)
            for other in played.choices[turn]:
                if other == played.order[turn]:
                    continue
                cost = taken + (1 if turn and _interrupts(played, turn, other) else 0)
                if preemptions is None or cost <= preemptions:
                    queue.append((*played.order[:turn], other))
                else:
                    bounded = True
    return Explored(None, None, runs, complete=not queue, bounded=bounded)


def _interrupts(played: Played, turn: int, other: int) -> bool:
    """Whether giving turn ``turn`` to ``other`` takes it from a buyer mid-purchase."""
    before, where = played.order[turn - 1], played.reached[turn - 1]
    return (
        other != before
        and where not in ("done", "sold out", "error")
        and not where.startswith("blocked:")
    )


def _preempted(played: Played, turn: int) -> int:
    """How many preemptions the schedule has before turn ``turn``."""
    return sum(1 for t in range(1, turn) if _interrupts(played, t, played.order[t]))


class RaceFailed(AssertionError):
    """A schedule of your buyer broke an invariant: the message says which, why, and
    how to play it again."""


def checked(race: Race, *, max_runs: int = 1000) -> Callable[[], None]:
    """A test (a function of no arguments) that plays every schedule of ``race``, up to
    ``max_runs`` sales, and fails with the first that breaks an invariant."""

    def test() -> None:
        found = explore(race, max_runs=max_runs)
        if found.counterexample is not None and found.report is not None:
            raise RaceFailed(_failure(race, found.counterexample, found.report, found.runs))
        if not found.complete:
            raise RaceFailed(
                f"ticketsim played {found.runs} schedules of {_name(race.buy)} and stopped "
                f"(max_runs={max_runs}) before playing them all: nothing is claimed about "
                "the rest; raise max_runs"
            )

    test.__name__ = f"test_every_schedule_of_{_name(race.buy)}"
    return test


def drawn(race: Race, *, max_examples: int = 100, turns: int = 12) -> Callable[[], None]:
    """A test that plays schedules hypothesis draws (at most ``turns`` chosen turns
    each; the rest of the sale takes the lowest buyer waiting), shrinking the first that
    breaks an invariant to a simplest one. It uses hypothesis' example database, so a
    failure found once is tried first next time."""
    from hypothesis import given, settings  # noqa: PLC0415 - only for this kind of test
    from hypothesis import strategies as st  # noqa: PLC0415

    schedules = st.lists(st.integers(1, race.buyers), max_size=turns)

    # Each race its own key in hypothesis' database: one race's failures are not
    # replayed in another's test.
    key = f"ticketsim.race:{_name(race.buy)}:{race.buyers}:{race.tickets}".encode()

    @settings(max_examples=max_examples, deadline=None)
    @given(schedule=schedules)
    def test(schedule: list[int]) -> None:
        played = play(race, schedule)
        report = build_report(played.result)
        if report.certain or not report.ok:
            raise RaceFailed(_failure(race, played, report, None))

    test.hypothesis.inner_test._hypothesis_internal_add_digest = key  # type: ignore[attr-defined]
    test.__name__ = f"test_drawn_schedules_of_{_name(race.buy)}"
    return test


def _name(function: object) -> str:
    return str(getattr(function, "__name__", "buyer"))


def _failure(race: Race, played: Played, report: Report, runs: int | None) -> str:
    """What failed, in the buyer's own step names, and how to play it again."""
    found = "" if runs is None else f" (schedule {runs} played)"
    lines = [
        f"ticketsim found a schedule of {_name(race.buy)} that breaks an invariant{found}:",
        f"  schedule: {played.schedule()}",
        f"  {report.verdict}",
    ]
    lines += [f"  - {v.explanation}" for v in report.violations]
    lines.append(
        f"Play it again: ticketsim.race.play(race, {played.order!r}), race being this "
        f"Race of {_name(race.buy)}"
    )
    return "\n".join(lines)


@frozen
class Hunted:
    """What drawing schedules of a :class:`Race` found."""

    #: The simplest breaking schedule hypothesis shrank to, and its report; or ``None``.
    counterexample: Played | None
    report: Report | None
    #: Schedules drawn and played (shrinking included).
    runs: int


def hunt(race: Race, *, max_examples: int = 100, turns: int = 12, seed: int = 0) -> Hunted:
    """Play schedules hypothesis draws (``turns`` chosen turns at most; the rest of the
    sale takes the lowest buyer waiting) until one breaks an invariant, then shrink it
    to a simplest one. Nothing found is no claim: only what was drawn was played."""
    import random  # noqa: PLC0415 - only for a hunt

    from hypothesis import HealthCheck, find, settings  # noqa: PLC0415 - only for a hunt
    from hypothesis import strategies as st  # noqa: PLC0415
    from hypothesis.errors import NoSuchExample  # noqa: PLC0415

    played_runs = [0]

    def breaks(schedule: list[int]) -> bool:
        played_runs[0] += 1
        report = build_report(play(race, schedule).result)
        return bool(report.certain) or not report.ok

    try:
        schedule = find(
            st.lists(st.integers(1, race.buyers), max_size=turns),
            breaks,
            settings=settings(
                max_examples=max_examples,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            ),
            random=random.Random(seed),
        )
    except NoSuchExample:
        return Hunted(None, None, played_runs[0])
    played = play(race, schedule)
    return Hunted(played, build_report(played.result), played_runs[0])
