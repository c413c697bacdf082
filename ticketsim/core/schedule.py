"""Schedules: the order in which buyers take their steps, as text and as data.

In controlled mode a buyer's work is two steps, and the runner grants them one at a
time in the order a schedule gives:

* ``r`` (read): look at the count, take the strategy's lock if it has one, read;
* ``w`` (write): decide, wait out the race window, write if a ticket was left,
  release the lock, and learn the outcome.

``1r 2r 1w 2w`` reads: buyer 1 reads, buyer 2 reads, buyer 1 writes, buyer 2 writes
(the lost update). Every history prints as a schedule (:func:`from_history`) and
every schedule can be run (``ticketsim replay --schedule``).

A :class:`Model` of the strategy says which schedules can run at all: under a lock,
``1r 2r`` cannot, because buyer 2 would wait for the lock buyer 1 holds. Such a
schedule is *infeasible*: ``replay`` refuses it before running anything, and
``explore`` never makes it (:func:`reduced`).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Iterator
from enum import Enum
from typing import TYPE_CHECKING, Final

from ticketsim.core.events import OUTCOMES, Step
from ticketsim.core.frozen import frozen
from ticketsim.errors import ScheduleError as ScheduleError  # noqa: PLC0414 - re-exported

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ticketsim.core.events import Event

_TOKEN: Final = re.compile(r"^([1-9][0-9]*)([rw])$")


class Move(str, Enum):
    READ = "r"
    WRITE = "w"


#: A buyer's steps, in the order it takes them.
MOVES: Final = (Move.READ, Move.WRITE)


@frozen(order=True)
class Action:
    buyer: int
    move: Move

    def __str__(self) -> str:
        return f"{self.buyer}{self.move.value}"


@frozen
class Schedule:
    actions: tuple[Action, ...]

    def __str__(self) -> str:
        return " ".join(str(a) for a in self.actions)

    @property
    def buyers(self) -> int:
        return max((a.buyer for a in self.actions), default=0)

    def preemptions(self) -> int:
        """Switches away from a buyer that still had a step to take."""
        left = {a.buyer: 0 for a in self.actions}
        for action in self.actions:
            left[action.buyer] += 1
        count = 0
        for before, after in itertools.pairwise(self.actions):
            left[before.buyer] -= 1
            if before.buyer != after.buyer and left[before.buyer] > 0:
                count += 1
        return count

    def complete(self, buyers: int) -> Schedule:
        """This schedule, then the steps it leaves out: first the writes of buyers that
        have read, in the order they read, then each other buyer's read and write, in
        buyer order. (So a feasible prefix stays feasible under a lock.)"""
        taken = set(self.actions)
        pending = [
            Action(a.buyer, Move.WRITE)
            for a in self.actions
            if a.move is Move.READ and Action(a.buyer, Move.WRITE) not in taken
        ]
        rest = [
            Action(b, m)
            for b in range(1, buyers + 1)
            if Action(b, Move.READ) not in taken
            for m in MOVES
        ]
        return Schedule(self.actions + tuple(pending) + tuple(rest))


def parse(text: str, buyers: int, *, complete: bool = True, named_buyers: bool = False) -> Schedule:
    """Parse ``1r 2r 1w 2w`` (commas also separate), completed by :meth:`Schedule.complete`.

    Raises :class:`ScheduleError` naming the bad token and saying what to write instead.
    ``named_buyers``: the schedule says how many buyers there are (no ``--buyers``
    given), and ``buyers`` is the most a controlled sale takes.
    """
    tokens = [t for t in re.split(r"[\s,]+", text.strip()) if t]
    if not tokens:
        raise ScheduleError(f"schedule={text!r} is empty; write steps like '1r 2r 1w 2w'")
    actions: list[Action] = []
    taken: dict[int, list[Move]] = {}
    for token in tokens:
        match = _TOKEN.match(token.lower())
        if match is None:
            raise ScheduleError(
                f"schedule step {token!r} is not BUYER then r or w, like '2r' or '1w'"
            )
        buyer, move = int(match.group(1)), Move(match.group(2))
        if buyer > buyers and named_buyers:
            raise ScheduleError(
                f"schedule step {token!r} names buyer {buyer}, but a controlled sale takes "
                f"at most {buyers} buyers; name buyers 1 to {buyers}"
            )
        if buyer > buyers:
            raise ScheduleError(
                f"schedule step {token!r} names buyer {buyer}, but buyers={buyers}; "
                "raise --buyers or drop the step"
            )
        done = taken.setdefault(buyer, [])
        expected = MOVES[len(done)] if len(done) < len(MOVES) else None
        if move is not expected:
            hint = (
                "it has no steps left"
                if expected is None
                else f"its next step is {buyer}{expected.value}"
            )
            raise ScheduleError(
                f"schedule step {token!r} is out of order for buyer {buyer}: {hint}"
            )
        done.append(move)
        actions.append(Action(buyer, move))
    parsed = Schedule(tuple(actions))
    return parsed.complete(buyers) if complete else parsed


def from_history(history: Iterable[Event]) -> Schedule:
    """The schedule a history followed: each buyer's read and its outcome, in time order.

    A buyer that never read (it died first) contributes nothing; one that read but has
    no outcome contributes only its read.
    """
    marks: list[tuple[float, Action]] = []
    for event in history:
        if event.step is Step.READ:
            marks.append((event.t, Action(event.buyer, Move.READ)))
        elif event.step in OUTCOMES and event.step is not Step.ERROR:
            marks.append((event.t, Action(event.buyer, Move.WRITE)))
    reads = {a.buyer for _, a in marks if a.move is Move.READ}
    return Schedule(tuple(a for _, a in sorted(marks) if a.buyer in reads))


def interleavings(buyers: int) -> int:
    """How many orders of every buyer's steps there are: ``(2B)! / 2^B``."""
    return math.factorial(len(MOVES) * buyers) // math.prod([math.factorial(len(MOVES))] * buyers)


def all_schedules(buyers: int) -> Iterator[Schedule]:
    """Every interleaving of the buyers' steps, in lexicographic order."""
    left = dict.fromkeys(range(1, buyers + 1), 0)
    prefix: list[Action] = []

    def walk() -> Iterator[Schedule]:
        if len(prefix) == len(MOVES) * buyers:
            yield Schedule(tuple(prefix))
            return
        for buyer, taken in left.items():
            if taken < len(MOVES):
                prefix.append(Action(buyer, MOVES[taken]))
                left[buyer] += 1
                yield from walk()
                left[buyer] -= 1
                prefix.pop()

    yield from walk()


@frozen
class Model:
    """What the strategy means for the order of steps.

    ``guarded``: ``r`` takes a lock that ``w`` releases, so no two buyers can be
    between their ``r`` and their ``w`` at once. ``reads_commute``: two buyers' ``r``
    steps only read, so their order does not matter (not with a lock, whose ``r``
    changes the lock; not with the office, whose ``r`` is the whole purchase).
    ``locks_seats``: ``r`` locks one of the seats still unsold (SKIP LOCKED), which its
    ``w`` sells; a buyer that finds every unsold seat locked by others waits. Which
    orders can run then depends on the tickets: the methods that take ``tickets`` say.
    """

    guarded: bool
    reads_commute: bool
    locks_seats: bool = False

    def blocked_at(self, schedule: Schedule, tickets: int | None = None) -> int | None:
        """The index of the first step that would wait for a lock, or ``None``."""
        if self.locks_seats and tickets is not None:
            seats = Seats(tickets)
            return next(
                (i for i, action in enumerate(schedule.actions) if not seats.take(action)), None
            )
        if not self.guarded:
            return None
        holder: int | None = None
        for index, action in enumerate(schedule.actions):
            if action.move is Move.READ:
                if holder is not None:
                    return index
                holder = action.buyer
            elif holder == action.buyer:
                holder = None
        return None

    def explain(self, schedule: Schedule, index: int, tickets: int | None = None) -> str:
        """Why step ``index`` of ``schedule`` cannot run (:meth:`blocked_at` said so)."""
        action = schedule.actions[index]
        if not (self.locks_seats and tickets is not None):
            return explain_blocked(schedule, index)
        seats = Seats(tickets)
        for earlier in schedule.actions[:index]:
            seats.take(earlier)
        holders = ", ".join(f"buyer-{b}" for b in seats.holders())
        return (
            f"step {index + 1} ({action}) would make buyer-{action.buyer} wait for a seat: "
            f"every unsold one is locked, by {holders}, until their w"
        )

    def feasible(self, buyers: int, tickets: int | None = None) -> int:
        """How many orders of ``buyers`` buyers' steps can run: under a lock, each
        buyer's ``w`` comes straight after its ``r`` (``B!`` orders); else all of them,
        but those in which a buyer would wait for a seat."""
        if self.guarded:
            return math.factorial(buyers)
        if self.locks_seats and tickets is not None and tickets < buyers:
            return _seat_orders(buyers, 0, 0, 0, tickets)
        return interleavings(buyers)


class Seats:
    """The seats of a SKIP LOCKED sale, as its buyers' steps lock and sell them."""

    def __init__(self, tickets: int) -> None:
        self.unsold = tickets
        self.locked: set[int] = set()

    def free(self, action: Action) -> bool:
        """Whether ``action`` can run now: a read finds an unsold seat nobody has locked
        (or none unsold: it reads "sold out")."""
        return action.move is Move.WRITE or self.unsold == 0 or len(self.locked) < self.unsold

    def take(self, action: Action) -> bool:
        """Run ``action`` if it can; whether it could."""
        if not self.free(action):
            return False
        if action.move is Move.READ and self.unsold:
            self.locked.add(action.buyer)
        elif action.move is Move.WRITE and action.buyer in self.locked:
            self.locked.remove(action.buyer)
            self.unsold -= 1
        return True

    def holders(self) -> list[int]:
        return sorted(self.locked)


@functools.cache
def _seat_orders(fresh: int, locking: int, told_none: int, sold: int, tickets: int) -> int:
    """How many orders of the steps left can run: ``fresh`` buyers yet to read,
    ``locking`` that read and hold a seat, ``told_none`` that read "sold out"."""
    if not fresh and not locking and not told_none:
        return 1
    unsold = tickets - sold
    orders = 0
    if fresh and not unsold:
        orders += fresh * _seat_orders(fresh - 1, locking, told_none + 1, sold, tickets)
    elif fresh and locking < unsold:
        orders += fresh * _seat_orders(fresh - 1, locking + 1, told_none, sold, tickets)
    if locking:
        orders += locking * _seat_orders(fresh, locking - 1, told_none, sold + 1, tickets)
    if told_none:
        orders += told_none * _seat_orders(fresh, locking, told_none - 1, sold, tickets)
    return orders


def explain_blocked(schedule: Schedule, index: int) -> str:
    """Why step ``index`` of ``schedule`` cannot run under a lock."""
    action = schedule.actions[index]
    earlier = schedule.actions[:index]
    holders = [
        a.buyer
        for a in earlier
        if a.move is Move.READ
        and a.buyer != action.buyer
        and Action(a.buyer, Move.WRITE) not in earlier
    ]
    if not holders:
        return f"step {index + 1} ({action}) would make buyer-{action.buyer} wait for a lock"
    return (
        f"step {index + 1} ({action}) would make buyer-{action.buyer} wait for the lock "
        f"buyer-{holders[-1]} holds until its step {holders[-1]}w"
    )


def reduced(
    buyers: int, model: Model, *, preemption_bound: int | None = None, tickets: int | None = None
) -> Reduced:
    """One feasible schedule of every class of orders that can end differently, made as
    the search goes (its memory grows with the buyers, not with the orders), fewest
    preemptions first and, among those, the earliest preemption first: the first
    violating schedule is then a simplest one.

    Two reductions, both sound because every buyer runs the same code:

    * **Commuting steps.** Two buyers' ``r`` commute when the model says reads only
      read; orders that differ only by swapping them are one Mazurkiewicz trace.
    * **Interchangeable buyers.** Buyers in the same state lead to the same outcomes
      up to their names, so only one of them is tried: of the buyers that have not
      started, the lowest; of those that read with no write in between (they read the
      same thing), the one running, else the lowest. This also puts commuting reads in
      one order only, so each trace is made once.

    With ``preemption_bound`` only the schedules with at most that many preemptions;
    once they are all made, :attr:`Reduced.bounded` says whether it left any out. With
    ``tickets``, a model whose reads lock seats leaves out the orders in which a buyer
    would wait for one (sound: swapping two reads, or renaming buyers, changes no count
    of locked and unsold seats, so a class runs in all its orders or in none).
    """
    return Reduced(buyers, model, preemption_bound, tickets)


class Reduced(Iterator[Schedule]):
    """The schedules :func:`reduced` makes, one at a time."""

    def __init__(
        self, buyers: int, model: Model, preemption_bound: int | None, tickets: int | None = None
    ) -> None:
        self.buyers, self.model, self.preemption_bound = buyers, model, preemption_bound
        self.tickets = tickets
        #: Set once every schedule within the bound is made, if the bound left classes
        #: out: a search that ran them all still did not run every class.
        self.bounded = False
        self._made = self._make()

    def __next__(self) -> Schedule:
        return next(self._made)

    def _make(self) -> Iterator[Schedule]:
        level = 0
        while True:
            search = _Level(self.buyers, self.model, level)
            yield from filter(self._runs, search.walk(None, 0, None, 0))
            if not search.pruned:
                return
            if self.preemption_bound is not None and level >= self.preemption_bound:
                self.bounded = self._runs_beyond(level)
                return
            level += 1

    def _runs(self, schedule: Schedule) -> bool:
        """Whether ``schedule``, made feasible under a lock by the walk, waits for no
        seat either (only a model whose reads lock seats, given the tickets, asks)."""
        if not (self.model.locks_seats and self.tickets is not None):
            return True
        return self.model.blocked_at(schedule, self.tickets) is None

    def _runs_beyond(self, level: int) -> bool:
        """Whether a schedule with more than ``level`` preemptions can run: the bound left
        it out. (Those it left out may all wait for a seat, and then it left out none.)"""
        while True:
            level += 1
            search = _Level(self.buyers, self.model, level)
            made = search.walk(None, 0, None, 0)
            if any(map(self._runs, made)):
                return True
            if not search.pruned:
                return False


class _Level:
    """The depth-first walk of the schedules with exactly ``preemptions`` preemptions."""

    def __init__(self, buyers: int, model: Model, preemptions: int) -> None:
        self.buyers = buyers
        self.model = model
        self.preemptions = preemptions
        #: Steps taken by each buyer (index 0 unused).
        self.taken = [0] * (buyers + 1)
        #: How many steps that change what a read sees came before each buyer's read.
        self.epoch = [0] * (buyers + 1)
        self.prefix: list[Action] = []
        #: Whether a schedule with more preemptions was left out (the next level has some).
        self.pruned = False

    def choices(self, running: int | None, holder: int | None) -> list[int]:
        """The buyers worth moving next: one of each set of interchangeable buyers."""
        if holder is not None:
            return [holder]
        chosen = []
        waiting: dict[int, list[int]] = {}
        fresh = None
        for buyer in range(1, self.buyers + 1):
            if self.taken[buyer] == 1:
                waiting.setdefault(self.epoch[buyer], []).append(buyer)
            elif self.taken[buyer] == 0 and fresh is None:
                fresh = buyer
        for alike in waiting.values():
            chosen.append(running if running in alike else alike[0])
        if fresh is not None:
            chosen.append(fresh)
        # Switching away first: within a level, the earliest preemption comes first.
        return sorted(chosen, key=lambda b: (b == running, b))

    def walk(
        self, running: int | None, used: int, holder: int | None, changes: int
    ) -> Iterator[Schedule]:
        if len(self.prefix) == len(MOVES) * self.buyers:
            if used == self.preemptions:
                yield Schedule(tuple(self.prefix))
            return
        for buyer in self.choices(running, holder):
            preempts = running is not None and buyer != running and self.taken[running] == 1
            if used + preempts > self.preemptions:
                self.pruned = True
                continue
            move = MOVES[self.taken[buyer]]
            before = self.epoch[buyer]
            if move is Move.READ:
                self.epoch[buyer] = changes
            self.taken[buyer] += 1
            self.prefix.append(Action(buyer, move))
            changed = move is Move.WRITE or not self.model.reads_commute
            held = (buyer if move is Move.READ else None) if self.model.guarded else None
            yield from self.walk(buyer, used + preempts, held, changes + changed)
            self.prefix.pop()
            self.taken[buyer] -= 1
            self.epoch[buyer] = before


def pct_schedule(
    buyers: int,
    depth: int,
    model: Model,
    rng_random: Sequence[float],
    tickets: int | None = None,
) -> Schedule:
    """A PCT schedule (Burckhardt et al.): random buyer priorities, ``depth - 1`` random
    points at which the running buyer drops to the lowest priority; at each step the
    highest-priority buyer that can move moves. ``rng_random`` supplies the draws."""
    draws = iter(rng_random)
    steps = len(MOVES) * buyers
    priority = {b: next(draws) + depth for b in range(1, buyers + 1)}
    change_points = sorted(int(next(draws) * steps) for _ in range(max(0, depth - 1)))
    taken = dict.fromkeys(priority, 0)
    actions: list[Action] = []
    holder: int | None = None
    seats = Seats(tickets) if model.locks_seats and tickets is not None else None
    for index in range(steps):
        movable = [
            b
            for b in priority
            if taken[b] < len(MOVES)
            and not (model.guarded and MOVES[taken[b]] is Move.READ and holder not in (None, b))
            and (seats is None or seats.free(Action(b, MOVES[taken[b]])))
        ]
        buyer = max(movable, key=lambda b: priority[b])
        move = MOVES[taken[buyer]]
        actions.append(Action(buyer, move))
        if seats is not None:
            seats.take(actions[-1])
        taken[buyer] += 1
        if model.guarded:
            holder = buyer if move is Move.READ else None
        for n, point in enumerate(change_points):
            if point == index:
                priority[buyer] = depth - 1 - n  # below every starting priority
    return Schedule(tuple(actions))
