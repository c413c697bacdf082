"""Exercises for students: broken buyers to fix, each fix checked over every
interleaving of its marked steps (:func:`ticketsim.search.yours.explore`), with a hint
that points at the step where it breaks.

Each exercise's buyer works on the exercises' shop (:mod:`ticketsim.sale.shop`: a count
and a ledger in a small file, a file lock, a lease lock with fencing tokens), two
buyers for one ticket. A student's file defines ``buy(path, buyer)`` and marks its steps
with ``ticketsim.race.step``, as the broken one does.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import multiprocessing
import os
import stat
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ticketsim.analysis.report import build_report
from ticketsim.core._files import process_gone
from ticketsim.core.events import Step
from ticketsim.core.frozen import frozen
from ticketsim.engine.yours import Played, Race, import_theirs, takes
from ticketsim.errors import ConfigError
from ticketsim.sale import shop
from ticketsim.search.yours import explore

if TYPE_CHECKING:
    from collections.abc import Callable

    from ticketsim.analysis.report import Report

_HEAD: Final = "from ticketsim import race\nfrom ticketsim.sale import shop\n\n\n"
#: The right answer of every exercise on the shop's file: the read, the decision and
#: the write, all under the shop's lock.
_LOCKED: Final = _HEAD + textwrap.dedent("""\
    def buy(path, buyer):
        with shop.lock(path):
            left = shop.remaining(path)
            race.step("read", left)
            if left > 0:
                shop.set_remaining(path, left - 1)
                shop.record_sale(path, buyer, 1)
        race.step("write")
        return 1 if left > 0 else None
    """)


@frozen
class Exercise:
    number: int
    title: str
    #: What the student is told.
    story: str
    #: The broken buyer, the student's starting point.
    broken: str
    #: One right answer (the tests check it passes).
    right: str
    #: What to look at, by the name of the step a buyer was at when another came in.
    hints: tuple[tuple[str, str], ...]
    #: The store, when it is not the shop's file (a ``multiprocessing.Value``).
    setup: Callable[[], Any] = shop.open_shop
    sold: Callable[[Any], list[tuple[int, int]]] | None = shop.sales

    def hint(self, step: str, *, raised: bool = False) -> str:
        """The hint for a fix that broke where a buyer was at ``step`` when another came
        in (``""``: none did); ``raised``: a buyer raised an exception, or its process
        ended without a word."""
        if not step and raised:
            return (
                "your buyer raised an exception or ended its process: read why above, "
                "and fix that first"
            )
        if not step:  # broken with no other buyer in between: the exercise's own lesson
            return self.hints[0][1]
        return dict(self.hints).get(step, "look at what another buyer can do between your steps")


def _value_shop() -> Any:
    return multiprocessing.Value("i", shop.TICKETS)


EXERCISES: Final = (
    Exercise(
        1,
        "check, then act",
        "The buyer reads the count, and if a ticket is left, writes the count back less "
        "one. Make it sell the last ticket once.",
        _HEAD
        + textwrap.dedent("""\
            def buy(path, buyer):
                left = shop.remaining(path)
                race.step("read", left)
                if left <= 0:
                    return None
                shop.set_remaining(path, left - 1)
                shop.record_sale(path, buyer, 1)
                race.step("write")
                return 1
            """),
        _LOCKED,
        (
            (
                "read",
                "another buyer read the same count before you wrote it: read and write "
                "must be one step nobody can come between (a lock around both)",
            ),
        ),
    ),
    Exercise(
        2,
        "the lock taken after the read",
        "The buyer locks the shop, but only to write. Move what needs the lock into it.",
        _HEAD
        + textwrap.dedent("""\
            def buy(path, buyer):
                left = shop.remaining(path)
                race.step("read", left)
                if left <= 0:
                    return None
                with shop.lock(path):
                    shop.set_remaining(path, left - 1)
                    shop.record_sale(path, buyer, 1)
                race.step("write")
                return 1
            """),
        _LOCKED,
        (
            (
                "read",
                "you read the count before taking the lock: by the time you hold it, the "
                "count you decide on may be old; read it inside the lock",
            ),
        ),
    ),
    Exercise(
        3,
        "the lock let go before the write",
        "The buyer reads under the lock, lets go, then writes. Keep the lock to the end.",
        _HEAD
        + textwrap.dedent("""\
            def buy(path, buyer):
                with shop.lock(path):
                    left = shop.remaining(path)
                race.step("read", left)
                if left <= 0:
                    return None
                with shop.lock(path):
                    shop.set_remaining(path, left - 1)
                    shop.record_sale(path, buyer, 1)
                race.step("write")
                return 1
            """),
        _LOCKED,
        (
            (
                "read",
                "you let go of the lock between the read and the write: another buyer "
                "read the same count in that gap; hold the lock from the read to the write",
            ),
        ),
    ),
    Exercise(
        4,
        "Value -= 1 without its lock",
        "The count is a shared multiprocessing.Value, and `count.value -= 1` is a read and "
        "a write (marked here). Make it one step: the Value has a lock of its own (take it "
        "with `race.locked(count.get_lock())`, which ticketsim's scheduler can see).",
        _HEAD
        + textwrap.dedent("""\
            def buy(count, buyer):
                left = count.value
                race.step("read", left)
                if left <= 0:
                    return None
                count.value = left - 1
                race.step("write")
                return 1
            """),
        _HEAD
        + textwrap.dedent("""\
            def buy(count, buyer):
                with race.locked(count.get_lock()):  # `with count.get_lock():`, scheduled
                    left = count.value
                    race.step("read", left)
                    if left > 0:
                        count.value = left - 1
                race.step("write")
                return 1 if left > 0 else None
            """),
        (
            (
                "read",
                "another buyer read the Value between your read and your write: `-=` is "
                "not atomic; do both inside `with count.get_lock():`",
            ),
        ),
        setup=_value_shop,
        sold=None,
    ),
    Exercise(
        5,
        "a counter each process copies",
        "The buyer keeps the count in a module-level variable: every buyer process has its "
        "own copy. Keep it where every process sees it: the shop's file, under its lock.",
        _HEAD
        + textwrap.dedent("""\
            LEFT = [1]


            def buy(path, buyer):
                left = LEFT[0]
                race.step("read", left)
                if left <= 0:
                    return None
                LEFT[0] = left - 1
                race.step("write")
                return 1
            """),
        _LOCKED,
        (
            (
                "read",
                "your count is this process's copy: the other buyer read its own copy, "
                "and both saw a ticket; keep the count in the shop, under its lock",
            ),
        ),
        sold=None,
    ),
    Exercise(
        6,
        "a check that hides the lost update",
        "The buyer writes, then reads the count back to make sure its write took. The "
        "check passes, and the ticket is still sold twice. Make the purchase one step.",
        _HEAD
        + textwrap.dedent("""\
            def buy(path, buyer):
                for _ in range(3):
                    left = shop.remaining(path)
                    race.step("read", left)
                    if left <= 0:
                        return None
                    shop.set_remaining(path, left - 1)
                    race.step("write")
                    if shop.remaining(path) == left - 1:  # "it took"
                        shop.record_sale(path, buyer, 1)
                        return 1
                return None
            """),
        _LOCKED,
        (
            (
                "read",
                "both buyers wrote the same count, so each one's check saw its own "
                "write: reading back cannot tell a lost update; lock the read and the write",
            ),
            (
                "write",
                "the check ran after another buyer wrote the same value: it proves "
                "nothing; lock the read and the write",
            ),
        ),
    ),
    Exercise(
        7,
        "a lease without fencing",
        "The buyer takes the shop's lease lock, reads, then writes. A lease can end while "
        "its holder is slow, and another buyer takes it. Sell with the lease's fencing "
        "token (shop.sell_fenced), which the shop refuses once a newer one was given.",
        _HEAD
        + textwrap.dedent("""\
            def buy(path, buyer):
                while shop.take_lease(path, buyer) is None:
                    race.step("wait")
                left = shop.remaining(path)
                race.step("read", left)
                if left <= 0:
                    return None
                shop.set_remaining(path, left - 1)
                shop.record_sale(path, buyer, 1)
                race.step("write")
                return 1
            """),
        _HEAD
        + textwrap.dedent("""\
            def buy(path, buyer):
                while True:
                    fence = shop.take_lease(path, buyer)
                    while fence is None:
                        race.step("wait")
                        fence = shop.take_lease(path, buyer)
                    left = shop.remaining(path)
                    race.step("read", left)
                    if left <= 0:
                        return None
                    if shop.sell_fenced(path, buyer, 1, fence):
                        race.step("write")
                        return 1
            """),
        (
            (
                "read",
                "your lease ran out while you were between your read and your write, and "
                "another buyer took it: write with the fencing token (shop.sell_fenced)",
            ),
            (
                "wait",
                "the lease changed hands while its holder was slow: only a fencing token "
                "checked at the write keeps the old holder out",
            ),
        ),
    ),
)


def exercise(number: int) -> Exercise:
    for found in EXERCISES:
        if found.number == number:
            return found
    raise ConfigError("exercise", number, f"choose one of 1 to {len(EXERCISES)}")


@frozen
class Checked:
    """What checking a student's buyer found."""

    exercise: Exercise
    runs: int
    complete: bool
    #: The first schedule that breaks an invariant, its report, and the hint.
    broken: Played | None = None
    report: Report | None = None
    hint: str = ""


#: The preemptions an exercise's check allows: every bug of these needs one, and a
#: buyer that retries (exercise 7's lease) has endless schedules without a bound.
PREEMPTIONS: Final = 2


def check_file(number: int, path: str | os.PathLike[str], *, max_runs: int = 500) -> Checked:
    """Check the buyer ``buy(path, buyer)`` in the student's file ``path`` on exercise
    ``number``, over every interleaving of its marked steps with at most
    :data:`PREEMPTIONS` preemptions."""
    chosen = exercise(number)
    buy = _load(Path(path))
    try:  # as the exercise calls it: a student's shop hands buy() the db's path
        takes("buyer", buy, "buy(path, buyer)", 2)
    except ConfigError as exc:
        raise ConfigError("file", str(path), f"its buy(): {exc.advice}") from None
    race = Race(
        buy,
        chosen.setup,
        buyers=2,
        tickets=shop.TICKETS,
        # A buyer that deletes or garbles the shop's file broke its shop: said as such,
        # not as an error of the code that lists the sales (the user gave no --sold).
        sold=shop.sales_left if chosen.sold is shop.sales else chosen.sold,
        invariant=shop.intact if chosen.sold is shop.sales else None,
        name=f"exercise {number}: {Path(path).name}",
    )
    _sweep()  # what a killed check left
    try:
        found = explore(race, max_runs=max_runs, preemptions=PREEMPTIONS)
    finally:
        _sweep()
    if found.counterexample is None:
        return Checked(chosen, found.runs, found.complete)
    report = found.report or build_report(found.counterexample.result)
    step = _where_it_broke(found.counterexample)
    raised = any(e.step is Step.ERROR for e in found.counterexample.result.history)
    hint = chosen.hint(step, raised=raised)
    return Checked(chosen, found.runs, False, found.counterexample, report, hint)


def _load(path: Path) -> Callable[[Any, int], int | None]:
    """The ``buy`` of the student's file, imported by its name (from its folder), so
    that buyer processes started by ``spawn`` import it too."""
    if path.suffix != ".py" or not path.is_file():
        raise ConfigError("file", str(path), "give the .py file that defines buy(path, buyer)")
    folder = str(path.resolve().parent)
    found = importlib.util.find_spec(path.stem) if path.stem.isidentifier() else None
    if not path.stem.isidentifier() or (
        found is not None and Path(found.origin or "").resolve() != path.resolve()
    ):
        raise ConfigError(
            "file",
            str(path),
            f"{path.stem!r} is not a name your buyer's module can have "
            "(it is not an identifier, or another module has it); rename the file",
        )
    if folder not in sys.path:
        sys.path.insert(0, folder)
    known = sys.modules.get(path.stem)
    if known is not None and Path(getattr(known, "__file__", "") or "").resolve() != path.resolve():
        raise ConfigError(
            "file", str(path), f"its name is taken by module {path.stem!r}; rename it"
        )
    try:  # bounded: an import that never returns must not hang the check
        module = import_theirs("file", str(path), path.stem)
    except ConfigError as exc:  # the student's to see, sys.exit() included
        raise ConfigError("file", str(path), f"cannot import it ({exc.advice})") from None
    buy = getattr(module, "buy", None)
    if not callable(buy):
        raise ConfigError("file", str(path), "define buy(path, buyer) in it")
    return buy  # type: ignore[no-any-return]


def _where_it_broke(played: Played) -> str:
    """The step a buyer was at when another buyer came in: where the fix must close
    the gap. The first switch of buyers before the first buyer ended; ``""`` when no
    other buyer came in (the buyer broke on its own: no hint of a race)."""
    for turn in range(1, len(played.order)):
        before, now = played.order[turn - 1], played.order[turn]
        if now != before and played.reached[turn - 1] not in ("done", "sold out", "error"):
            return played.reached[turn - 1]
    return ""


def _sweep() -> None:
    """The shop files this process's sales left, and those of checks that were killed
    (SIGKILL) before they could: named by a process that is gone."""
    for leftover in Path(tempfile.gettempdir()).glob("ticketsim-exercise-*.json*"):
        pid, _, rest = leftover.name.removeprefix("ticketsim-exercise-").partition(".")
        if not pid.isdigit() or rest not in ("json", "json.new", "json.lock"):
            continue  # not a name the shop gives its files
        if int(pid) != os.getpid() and not process_gone(int(pid)):
            continue  # another check's, still running
        with contextlib.suppress(OSError):
            if stat.S_ISREG(leftover.lstat().st_mode):  # the shop makes regular files
                leftover.unlink()
