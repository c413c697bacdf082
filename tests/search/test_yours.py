"""Your own buyer: a tiny shop over a real SQLite file, with a check-then-act bug,
played in exact interleavings by real processes, searched, replayed, and fixed."""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import os
import sqlite3
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ticketsim import race
from ticketsim.analysis.checker import Kind
from ticketsim.analysis.report import build_report
from ticketsim.core.events import Step

TICKETS = 1


@pytest.fixture(autouse=True)
def _shops_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shop a sale makes goes in the test's own folder, which pytest removes."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def make_shop() -> str:
    """A fresh shop: TICKETS tickets, none sold, in a SQLite file of its own."""
    path = Path(tempfile.mkdtemp(prefix="shop-")) / "shop.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE stock (remaining INTEGER NOT NULL)")
        db.execute("CREATE TABLE sold (buyer INTEGER NOT NULL, seat INTEGER NOT NULL)")
        db.execute("INSERT INTO stock VALUES (?)", (TICKETS,))
    return str(path)


def sold(path: str) -> list[tuple[int, int]]:
    with sqlite3.connect(path) as db:
        return [(int(b), int(s)) for b, s in db.execute("SELECT buyer, seat FROM sold")]


def buy_racy(path: str, buyer: int) -> int | None:
    """Check, then act: the bug."""
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    remaining = int(db.execute("SELECT remaining FROM stock").fetchone()[0])
    race.step("read", remaining)
    if remaining <= 0:
        return None
    seat = TICKETS - remaining + 1
    db.execute("UPDATE stock SET remaining = ?", (remaining - 1,))
    db.execute("INSERT INTO sold VALUES (?, ?)", (buyer, seat))
    race.step("write")
    return seat


def buy_fixed(path: str, buyer: int) -> int | None:
    """One statement decides and takes the ticket."""
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    race.step("begin")
    row = db.execute(
        "UPDATE stock SET remaining = remaining - 1 WHERE remaining > 0 RETURNING remaining"
    ).fetchone()
    race.step("update", None if row is None else int(row[0]))
    if row is None:
        return None
    seat = TICKETS - int(row[0])
    db.execute("INSERT INTO sold VALUES (?, ?)", (buyer, seat))
    return seat


def _race(buy: object, start_method: str = "fork") -> race.Race:
    return race.Race(
        buy,  # type: ignore[arg-type]
        setup=make_shop,
        buyers=2,
        tickets=TICKETS,
        sold=sold,
        name="the shop",
        start_method=start_method,
    )


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_the_bug_is_found_in_the_simplest_schedule(start_method: str) -> None:
    found = race.explore(_race(buy_racy, start_method))
    assert found.counterexample is not None
    assert found.report is not None
    kinds = {v.kind for v in found.report.violations}
    assert Kind.OVERSOLD in kinds
    # The third sale played: the serial one, buyer 2 first, then the one preemption
    # that breaks it: buyer 2 reads between buyer 1's read and write. Each turn takes
    # a buyer to its next mark, and past the schedule the last mover goes on.
    assert found.counterexample.schedule() == "1:read 2:read 2:write 2:done 1:write 1:done"
    assert found.runs == 3
    assert not found.complete
    story = next(v for v in found.report.violations if v.kind is Kind.OVERSOLD)
    assert "buyer-1" in story.explanation
    assert "buyer-2" in story.explanation


def test_the_counterexample_replays_every_time() -> None:
    setup = _race(buy_racy)
    found = race.explore(setup)
    assert found.counterexample is not None
    order = found.counterexample.order
    for _ in range(5):
        again = race.play(setup, order)
        assert again.order == order
        assert again.schedule() == found.counterexample.schedule()
        report = build_report(again.result)
        assert {v.kind for v in report.violations} == {v.kind for v in found.report.violations}  # type: ignore[union-attr]


def test_the_fix_passes_every_schedule() -> None:
    found = race.explore(_race(buy_fixed))
    assert found.counterexample is None
    assert found.complete
    assert found.runs == 20  # every interleaving of two buyers of three turns each: 6!/3!3!


def test_the_marks_are_the_history() -> None:
    played = race.play(_race(buy_racy), [1, 2, 1, 2])
    marks = [(e.buyer, e.note, e.value) for e in played.result.history if e.step is Step.MARK]
    assert marks == [(1, "read", 1), (2, "read", 1), (1, "write", None), (2, "write", None)]
    assert played.result.system == "the shop"


def test_outside_ticketsim_a_mark_does_nothing() -> None:
    path = make_shop()
    assert buy_racy(path, 1) == 1
    assert buy_racy(path, 2) is None
    assert sold(path) == [(1, 1)]


def test_a_buyer_that_raises_is_an_unknown_outcome() -> None:
    found = race.explore(_race(broken))
    assert found.counterexample is not None
    assert found.report is not None
    assert not found.report.ok
    errors = [e for e in found.counterexample.result.history if e.step is Step.ERROR]
    assert errors
    assert errors[0].error == "ZeroDivisionError"


def broken(path: str, buyer: int) -> int | None:
    race.step("start")
    return buyer // 0


def test_the_example_project_runs_under_the_plugin(tmp_path: Path) -> None:
    """examples/shop, a project of its own, tested with the plugin as a user would: the
    bug is found (by every schedule, and by drawn ones), the fix passes every one."""
    import subprocess
    import sys

    example = Path(__file__).parents[2] / "examples" / "shop"
    done = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
            "-o", f"cache_dir={tmp_path}", str(example),
        ],
        cwd=example, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


def buy_unmarked(path: str, buyer: int) -> int | None:
    """The racy shop with no step of its own: every statement is one, through marked."""
    db = race.marked(sqlite3.connect(path, isolation_level=None, timeout=10))
    remaining = int(db.execute("SELECT remaining FROM stock").fetchone()[0])
    if remaining <= 0:
        return None
    db.execute("UPDATE stock SET remaining = ?", (remaining - 1,))
    db.execute("INSERT INTO sold VALUES (?, ?)", (buyer, TICKETS - remaining + 1))
    return TICKETS - remaining + 1


def test_a_marked_connection_makes_every_statement_a_step() -> None:
    found = race.explore(_race(buy_unmarked))
    assert found.counterexample is not None
    assert found.report is not None
    assert Kind.OVERSOLD in {v.kind for v in found.report.violations}
    steps = {e.note for e in found.counterexample.result.history if e.step is Step.MARK}
    assert steps == {"select", "update", "insert"}


def no_more_sales_than_tickets(path: str) -> str | None:
    """An invariant of the shop's own: its ledger never holds more sales than tickets."""
    made = len(sold(path))
    return None if made <= TICKETS else f"the ledger holds {made} sales of {TICKETS} ticket(s)"


def test_your_own_invariant_is_checked_too() -> None:
    racy = race.Race(
        buy_racy, make_shop, buyers=2, tickets=TICKETS, invariant=no_more_sales_than_tickets
    )
    found = race.explore(racy)
    assert found.report is not None
    mine = [v for v in found.report.violations if v.kind is Kind.YOUR_INVARIANT]
    assert [v.explanation for v in mine] == ["the ledger holds 2 sales of 1 ticket(s)"]
    fixed = race.explore(
        race.Race(buy_fixed, make_shop, buyers=2, invariant=no_more_sales_than_tickets)
    )
    assert fixed.complete
    assert fixed.counterexample is None


def two_locks() -> tuple[object, object]:
    import multiprocessing

    return multiprocessing.Lock(), multiprocessing.Lock()


def buy_crossed(locks: tuple[object, object], buyer: int) -> int | None:
    """Buyer 1 takes lock A then B, buyer 2 B then A: a deadlock, in some schedules."""
    first, second = locks if buyer == 1 else locks[::-1]
    with race.locked(first, "first lock"):
        race.step("holds one")
        with race.locked(second, "second lock"):
            return buyer


def test_a_deadlock_is_found_and_ends_the_buyers() -> None:
    found = race.explore(race.Race(buy_crossed, two_locks, buyers=2, tickets=2))
    assert found.counterexample is not None
    lost = [e for e in found.counterexample.result.history if e.step is Step.LOST]
    assert {e.error for e in lost} == {"Deadlock"}
    assert {e.buyer for e in lost} == {1, 2}
    assert found.report is not None
    assert not found.report.ok


def buy_raw_lock(path: str, buyer: int) -> int | None:
    """Takes a lock the scheduler cannot see, and holds it across a mark."""
    from filelock import FileLock

    with FileLock(path + ".lock", timeout=30):
        race.step("inside")
    return None


def test_a_buyer_blocked_outside_the_scheduler_is_said_not_hung() -> None:
    blocking = race.Race(buy_raw_lock, make_shop, buyers=2, tickets=1, safe=False, timeout=1.0)
    played = race.play(blocking, [1, 2])
    stuck = [e for e in played.result.history if e.step is Step.ERROR]
    assert [(e.buyer, e.error) for e in stuck] == [(2, "BlockedOutsideScheduler")]
    assert "race.locked" in (stuck[0].note or "")


def failing_setup() -> str:
    raise OSError("the shop's disk is gone")


def test_your_functions_failing_is_your_error() -> None:
    with pytest.raises(ValueError, match=r"setup.*raised OSError: the shop's disk is gone"):
        race.play(race.Race(buy_racy, failing_setup))
    strange: Any = lambda path: [("a", 1)]  # noqa: E731 - a sold() that lists nonsense
    with pytest.raises(ValueError, match=r"sold.*list \(buyer, seat\) pairs"):
        race.play(race.Race(buy_racy, make_shop, sold=strange))
    predicate: Any = lambda path: True  # noqa: E731 - an invariant that returns a bool
    with pytest.raises(ValueError, match=r"invariant.*return None, or what broke"):
        race.play(race.Race(buy_racy, make_shop, invariant=predicate))


def _exiting_setup() -> str:
    raise SystemExit(7)


def test_your_functions_calling_sys_exit_or_returning_odd_things_is_your_error() -> None:
    """``sys.exit()`` in the user's code would end ticketsim with the user's exit code,
    saying nothing; what ``sold()`` and ``remaining()`` return is checked, not crashed on."""
    with pytest.raises(ValueError, match=r"setup=.*called sys.exit\(7\): return instead"):
        race.play(race.Race(buy_racy, _exiting_setup))
    for odd in (None, 5, "12"):
        returns: Any = lambda path, odd=odd: odd  # noqa: E731 - a sold() of the wrong kind
        with pytest.raises(ValueError, match=r"sold.*list \(buyer, seat\) pairs"):
            race.play(race.Race(buy_racy, make_shop, sold=returns))
    generator: Any = lambda path: (pair for pair in sold(path))  # noqa: E731
    played = race.play(race.Race(buy_racy, make_shop, sold=generator), (1, 1, 1, 2, 2, 2))
    assert build_report(played.result).ok
    # What a client library gives for a number is taken as int() takes it: redis-py's
    # bytes, a psycopg Decimal; but not a bool, nor a fraction int() would cut.
    as_clients_give: Any = lambda path: [(b"1", Decimal(1))]  # noqa: E731
    left_as_bytes: Any = lambda path: b"0"  # noqa: E731
    race.play(
        race.Race(buy_racy, make_shop, sold=as_clients_give, remaining=left_as_bytes),
        (1, 1, 1, 2, 2, 2),
    )
    for pairs in ([(1, 1.5)], [(True, 1)]):
        cut: Any = lambda path, pairs=pairs: pairs  # noqa: E731
        with pytest.raises(ValueError, match=r"sold.*list \(buyer, seat\) pairs"):
            race.play(race.Race(buy_racy, make_shop, sold=cut))
    left: Any = lambda path: None  # noqa: E731 - a remaining() that says nothing
    with pytest.raises(ValueError, match=r"remaining.*returned None: return a whole number"):
        race.play(race.Race(buy_racy, make_shop, sold=sold, remaining=left))


def _buy_for_one(path: str) -> int | None:
    del path
    return None


def _wrapped(buy: Any) -> Any:
    @functools.wraps(buy)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return buy(*args[:2], **kwargs)

    return wrapper


def _buy_with_a_keyword(path: str, buyer: int, *, retries: int) -> int | None:
    del path, buyer, retries
    return None


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"buy": _buy_for_one}, r"buyer=.*_buy_for_one.*buy\(handle, buyer\), which its "
         r"parameters \(path\) cannot take \(too many positional arguments\): make it "
         r"take 2 positional arguments"),
        ({"buy": _buy_with_a_keyword}, r"\(path, buyer, \*, retries\) cannot take "
         r"\(missing a required argument: 'retries'\).*a default for any other parameter"),
        ({"setup": sold}, r"setup=.*:sold.*setup\(\).*missing.*make it take no arguments"),
        ({"sold": make_shop}, r"sold=.*make_shop.*sold\(handle\).*1 positional argument,"),
        ({"invariant": buy_racy}, r"invariant=.*buy_racy.*invariant\(handle\).*'buyer'"),
        ({"remaining": 3}, r"remaining=3: give a function"),
    ],
)  # fmt: skip
def test_a_function_of_the_wrong_shape_is_refused_before_any_sale(
    fields: dict[str, Any], words: str
) -> None:
    """Not one error a buyer, in a sale that ends with nobody's outcome known."""
    with pytest.raises(ValueError, match=words):
        race.Race(**{"buy": buy_racy, "setup": make_shop, **fields})


def test_what_ticketsim_can_call_is_let_through() -> None:
    """A decorator's own parameters count, not those of the function it wraps (whose
    signature ``inspect`` reports); so do defaults, ``*args``, methods and partials."""
    race.Race(_wrapped(lambda a, b, c: None), make_shop)
    race.Race(functools.partial(_buy_with_a_keyword, retries=3), make_shop)
    race.Race(lambda path, buyer=0, *more: None, make_shop, sold=lambda *handles: [])
    race.Race(print, make_shop)  # no signature to read: its first call will say


def remaining_in_stock(path: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT remaining FROM stock").fetchone()[0])


def test_the_count_is_judged_only_when_the_store_gives_it() -> None:
    counted = (Kind.COUNT_MISMATCH, Kind.NEGATIVE_REMAINING)
    without = race.explore(_race(buy_racy))
    assert without.report is not None
    assert not [v for v in without.report.violations if v.kind in counted]
    # With the store's own count (0, the lost update's) beside its 2 sales for 1 ticket.
    given = dataclasses.replace(_race(buy_racy), remaining=remaining_in_stock)
    found = race.explore(given)
    assert found.report is not None
    assert Kind.COUNT_MISMATCH in {v.kind for v in found.report.violations}


# --- hostile code of the user's (an adversarial pass's findings) ----------------------


def buy_for_ever(path: str, buyer: int) -> int | None:
    """Marks steps and never ends: a retry loop that never gives up."""
    del path, buyer
    while True:
        race.step("retry")


def buy_named_like_the_scheduler(path: str, buyer: int) -> int | None:
    """Check, then act, with marks named as the scheduler's own words."""
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    remaining = int(db.execute("SELECT remaining FROM stock").fetchone()[0])
    race.step("done", remaining)
    if remaining <= 0:
        return None
    db.execute("UPDATE stock SET remaining = ?", (remaining - 1,))
    db.execute("INSERT INTO sold VALUES (?, ?)", (buyer, TICKETS - remaining + 1))
    race.step("blocked:lock")
    return TICKETS - remaining + 1


@pytest.mark.parametrize("schedule", [(), None], ids=["controlled", "free"])
def test_a_buyer_that_marks_for_ever_is_ended_not_waited_for(schedule: Any) -> None:
    """It kept the sale going for ever: each turn came well within --timeout."""
    played = race.play(race.Race(buy_for_ever, make_shop, buyers=2, tickets=1), schedule)
    ended = [e for e in played.result.history if e.step is Step.ERROR]
    assert sorted(e.buyer for e in ended) == [1, 2]
    assert {e.error for e in ended} == {"TooManySteps"}
    assert not build_report(played.result).ok


def test_a_mark_may_be_named_as_the_schedulers_words() -> None:
    """A mark named "done" ended its buyer, "blocked:lock" made a false deadlock."""
    played = race.play(race.Race(buy_named_like_the_scheduler, make_shop, sold=sold), (1, 2))
    report = build_report(played.result)
    assert Kind.OVERSOLD in {v.kind for v in report.violations}
    assert [e.step for e in played.result.history].count(Step.OK) == 2


class _Boom(BaseException):
    """Not an Exception: what a user's code may raise all the same."""


def _setup_raising_a_base_exception() -> str:
    raise _Boom("no")


def _setup_calling_os_exit() -> str:
    os._exit(0)


def _setup_that_hangs() -> str:
    time.sleep(60)
    return ""


def _setup_that_prints() -> str:
    print("hello from setup")
    return make_shop()


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (_setup_raising_a_base_exception, r"setup=.*raised _Boom: no"),
        (_setup_calling_os_exit, r"setup=.*called os._exit\(0\): return instead"),
        (_setup_that_hangs, r"setup=.*did not return within 1 s"),
    ],
    ids=["base-exception", "os-exit", "hangs"],
)
def test_your_code_in_ticketsims_process_cannot_end_it_or_hang_it(setup: Any, words: str) -> None:
    """A BaseException was a traceback and exit 1, os._exit(0) ended ticketsim with a
    pass and no word, and a setup that hung hung ticketsim."""
    began = time.monotonic()
    with pytest.raises(ValueError, match=words):
        race.play(race.Race(buy_racy, setup, timeout=1.0))
    assert time.monotonic() - began < 10


def test_what_your_code_prints_goes_to_stderr_not_the_report(
    capfd: pytest.CaptureFixture[str],
) -> None:
    def noisy(path: str, buyer: int) -> int | None:
        print("hello from buyer", buyer)
        return buy_racy(path, buyer)

    race.play(race.Race(noisy, _setup_that_prints, sold=sold), (1, 1, 1, 2, 2, 2))
    out, err = capfd.readouterr()
    assert "hello" not in out
    assert "hello from setup" in err
    assert "hello from buyer 1" in err


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_what_cannot_be_sent_to_a_buyer_process_is_your_error(start_method: str) -> None:
    """A lambda buyer, or a handle holding a lock, was an internal error (exit 70)."""
    lam: Any = lambda path, buyer: None  # noqa: E731 - the point: it does not pickle
    with pytest.raises(ValueError, match=rf"buyer=.*cannot be sent .* under {start_method}"):
        race.play(race.Race(lam, make_shop, start_method=start_method))
    with pytest.raises(ValueError, match=r"setup=.*its handle cannot be sent"):
        race.play(race.Race(buy_racy, threading.Lock, start_method=start_method))


def buy_and_fork(path: str, buyer: int) -> int | None:
    """Forks a child of its own that would sleep for minutes, and says its pid."""
    child = os.fork()
    if child == 0:
        time.sleep(300)
        os._exit(0)
    Path(path + f".child-{buyer}").write_text(str(child), encoding="utf-8")
    return None


def test_a_process_your_buyer_forks_ends_with_it() -> None:
    shops: list[str] = []

    def shop() -> str:
        shops.append(make_shop())
        return shops[-1]

    race.play(race.Race(buy_and_fork, shop, buyers=1, tickets=1), (1,))
    child = int(Path(shops[0] + ".child-1").read_text(encoding="utf-8"))
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def buy_crossed_unmarked(locks: tuple[object, object], buyer: int) -> int | None:
    """Buyer 1 takes lock A then B, buyer 2 B then A, and marks no step of its own."""
    first, second = locks if buyer == 1 else locks[::-1]
    with race.locked(first, "first lock"), race.locked(second, "second lock"):
        return buyer


def test_taking_a_lock_is_a_step_so_a_deadlock_between_two_is_found() -> None:
    """Taking a free lock sent no mark, so no schedule came between the two takes:
    explore said every schedule kept every invariant, and a free run deadlocked."""
    found = race.explore(race.Race(buy_crossed_unmarked, two_locks, buyers=2, tickets=2))
    assert found.counterexample is not None
    assert {e.error for e in found.counterexample.result.history if e.step is Step.LOST} == {
        "Deadlock"
    }


def locks_and_a_meeting() -> tuple[object, object, object]:
    ctx = multiprocessing.get_context("fork")
    return ctx.Lock(), ctx.Lock(), ctx.Barrier(2)


def buy_crossed_after_meeting(handle: tuple[Any, Any, Any], buyer: int) -> int | None:
    """Each takes its first lock, waits until the other has too, then wants the other's."""
    first, second = handle[:2] if buyer == 1 else handle[1::-1]
    meeting = handle[2]
    with race.locked(first, "first lock"):
        meeting.wait(10)
        with race.locked(second, "second lock"):
            return buyer


def test_a_free_sale_that_deadlocks_ends_within_its_timeout() -> None:
    """In a free sale a blocked buyer is tried again every millisecond, which kept the
    sale going for ever; a lock held past --timeout is a deadlock now."""
    began = time.monotonic()
    crossed = race.Race(
        buy_crossed_after_meeting, locks_and_a_meeting, buyers=2, tickets=2, timeout=1.0
    )
    played = race.play(crossed, None)
    assert time.monotonic() - began < 30
    assert {e.buyer: e.error for e in played.result.history if e.step is Step.LOST} == {
        1: "Deadlock",
        2: "Deadlock",
    }


def _setup_that_moves_away() -> str:
    shop = make_shop()
    os.chdir(Path(shop).parent)
    return shop


def test_your_setup_moving_to_another_folder_does_not_move_ticketsim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative --history, vetted where it was given, was written where setup went."""
    monkeypatch.chdir(tmp_path)
    race.play(race.Race(buy_racy, _setup_that_moves_away), (1, 1, 1, 2, 2, 2))
    assert Path.cwd() == tmp_path
