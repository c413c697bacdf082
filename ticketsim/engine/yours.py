"""Your own buyer under ticketsim's scheduler: one sale, in one exact interleaving.

:func:`play` starts a process per buyer, each running your ``buy`` function
(:mod:`ticketsim.sale.yours`), and lets one buyer move at a time, from one of its marks
to the next: the schedule says who moves at each turn (the rest of the sale takes the
lowest-numbered buyer waiting). Every mark, and how each buyer ended, is an event of
the history, which the checker reads as it reads a run's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import inspect
import multiprocessing
import multiprocessing.connection
import os
import pickle
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar

from ticketsim.core import db as dbfile
from ticketsim.core.events import Event, Step, buyer_name
from ticketsim.core.frozen import field, frozen
from ticketsim.core.result import RunResult
from ticketsim.core.settings import RunConfig
from ticketsim.errors import ConfigError
from ticketsim.sale import _answer, _limits, _signals
from ticketsim.sale.yours import run_yours

if TYPE_CHECKING:
    import types
    from collections.abc import Callable, Sequence
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

_T = TypeVar("_T")
#: Where a turn left its buyer: gone on to its next mark, waiting for a lock, or ended.
_GOES, _WAITS, _ENDS = "goes", "waits", "ends"
#: The most turns one buyer may take: a buyer that marks steps for ever (a retry loop
#: that never ends) would keep a sale going, each turn well within --timeout.
MAX_TURNS: Final = 1000
#: How long importing the user's module may take in ticketsim's own process.
IMPORT_S: Final = 60.0
#: How a turn that ended with its buyer finding a lock held is named: ``blocked:lock``.
_BLOCKED: Final = "blocked:"
#: How long buyers have, all together, to exit by themselves once the sale is over.
_GRACE_S: Final = 0.5
#: How long ending a buyer process may take, at each step.
_END_S: Final = 2.0


@frozen
class Race:
    """Your buyer, and the sale it runs in.

    ``setup`` makes a fresh store for each sale and returns its handle (a path, a URL:
    something a buyer process can be given); ``buy(handle, buyer)`` buys, marking its
    steps with ``ticketsim.race.step``, and returns the seat it sold or ``None``;
    ``sold(handle)``, if given, returns ``(buyer, seat)`` for every sale the store
    holds afterwards, so that the checker also finds sales the store lost. Functions
    must be importable (module level), for buyer processes started by ``spawn``.
    """

    buy: Callable[[Any, int], int | None]
    setup: Callable[[], Any]
    buyers: int = 2
    tickets: int = 1
    sold: Callable[[Any], Sequence[tuple[int, int]]] | None = None
    #: The count the store holds after the sale, if it can say (``None``: what the
    #: ledger ``sold`` lists leaves, and no claim about a count of its own).
    remaining: Callable[[Any], int] | None = None
    #: The name of the system under test, as reports show it.
    name: str = "your buyer"
    #: An invariant of your own, checked with the store's handle once the sale is over:
    #: ``None`` when it holds, else what broke, in words (ticketsim's own, of tickets
    #: sold, are checked too).
    invariant: Callable[[Any], str | None] | None = None
    #: Whether the buyer claims to be safe: then it must also sell every ticket it can
    #: (``min(tickets, buyers)``), or the sale is undersold.
    safe: bool = True
    start_method: str | None = None
    #: No turn may take longer than this: a buyer that does not reach its next mark in
    #: time is blocked outside the scheduler (a lock not taken with ``race.locked``).
    timeout: float = 10.0

    def __post_init__(self) -> None:
        # Said now, in one line, rather than by every buyer of every sale as an error
        # that leaves the sale without an outcome.
        takes("buyer", self.buy, "buy(handle, buyer)", 2)
        takes("setup", self.setup, "setup()", 0)
        for name, function in (
            ("sold", self.sold), ("remaining", self.remaining), ("invariant", self.invariant)
        ):  # fmt: skip
            if function is not None:
                takes(name, function, f"{name}(handle)", 1)


def takes(name: str, function: Callable[..., Any], call: str, arguments: int) -> None:
    """Refuse ``function`` (a :class:`ConfigError` naming ``name``) if ticketsim cannot
    call it as ``call``, in the words its caller knows it by: ``arguments`` positional
    arguments."""
    if not callable(function):
        raise ConfigError(name, function, f"give a function that ticketsim calls as {call}")
    refusal = _refusal(function, arguments, follow_wrapped=True)
    if refusal is None or _refusal(function, arguments, follow_wrapped=False) is None:
        return  # a decorator's own parameters may differ from the function it wraps
    taking = {0: "no arguments", 1: "1 positional argument"}.get(
        arguments, f"{arguments} positional arguments"
    )
    raise ConfigError(
        name,
        _named(function),
        f"ticketsim calls it as {call}, which {refusal}: make it take {taking}, "
        "with a default for any other parameter",
    )


def _refusal(function: Callable[..., Any], arguments: int, *, follow_wrapped: bool) -> str | None:
    """Why ``function`` cannot be called with ``arguments`` positional arguments, in
    words naming its parameters; ``None`` if it can, or if it has no signature to read
    (a builtin: its first call will say)."""
    try:
        signature = inspect.signature(function, follow_wrapped=follow_wrapped)
    except Exception:  # none to read, or a __signature__ that raises: its call will say
        return None
    try:
        signature.bind(*range(arguments))
    except TypeError as exc:
        bare = signature.replace(  # the names are what to fix; the types only clutter
            parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
            return_annotation=signature.empty,
        )
        return f"its parameters {bare} cannot take ({exc})"
    return None


@frozen
class Played:
    """One sale of a :class:`Race`: who moved at each turn, who could have, and what
    happened (a :class:`RunResult`, for ``build_report``)."""

    result: RunResult
    #: The buyer that moved at each turn: the complete schedule, for :func:`play`.
    order: tuple[int, ...]
    #: The buyers waiting for a turn at each turn: the choices the scheduler had.
    choices: tuple[tuple[int, ...], ...]
    #: Where each turn took its buyer ("read", "done"), in the buyer's own words.
    reached: tuple[str, ...] = field(default=())

    def schedule(self) -> str:
        """The schedule in words: ``1:read 2:read 1:done 2:done``."""
        return " ".join(f"{b}:{where}" for b, where in zip(self.order, self.reached, strict=True))


def play(race: Race, schedule: Sequence[int] | None = ()) -> Played:
    """Run one sale of ``race`` in the interleaving ``schedule`` gives; never prints.

    With ``schedule`` ``None`` the sale is free: every buyer goes on from each of its
    marks at once, all at the same time, as they would without ticketsim (the race as
    it happens, not forced); the order they took is recorded all the same.
    """
    ctx = _limits.context(race.start_method)
    handle = _yours("setup", race.setup, seconds=race.timeout)
    if ctx.get_start_method() != "fork":  # each buyer process is sent them, pickled
        _picklable("buyer", race.buy, race.buy, ctx.get_start_method())
        _picklable("setup", race.setup, handle, ctx.get_start_method())
    lines: dict[int, Connection] = {}
    processes: dict[int, BaseProcess] = {}
    events: list[Event] = []
    kept: tuple[list[int], list[tuple[int, ...]], list[str]] = ([], [], [])
    pids: dict[int, int] = {}
    try:
        for number in range(1, race.buyers + 1):
            mine, theirs = ctx.Pipe()
            lines[number] = mine
            try:
                process = ctx.Process(  # type: ignore[attr-defined]
                    target=run_yours,
                    args=(race.buy, handle, number, theirs, race.timeout),
                    name=buyer_name(number),
                    daemon=True,
                )
                with _signals.held():  # an interrupt now must find the process to end
                    process.start()
                    processes[number] = process
            finally:
                theirs.close()
        pids.update({n: _ready(lines[n], n, race.timeout, events) for n in lines})
        if schedule is None:
            _free(lines, pids, race.timeout, events, kept)
        else:
            _controlled(schedule, lines, processes, pids, race.timeout, events, kept)
    finally:
        _end(list(processes.values()))
        for line in lines.values():
            line.close()
    final = _final(race, handle, events, pids)
    result = _result(race, events, final)
    if race.remaining is None:
        result = dataclasses.replace(result, count_known=False)
    if race.invariant is not None:
        said = _yours("invariant", race.invariant, handle, seconds=race.timeout)
        if said is not None and not isinstance(said, str):
            raise ConfigError(
                "invariant", race.invariant, f"returned {said!r}: return None, or what broke"
            )
        if said is not None:
            result = dataclasses.replace(result, broken=(said,))
    order, choices, reached = kept
    return Played(result, tuple(order), tuple(choices), tuple(reached))


def _yours(name: str, function: Callable[..., Any], *args: Any, seconds: float) -> Any:
    """Call the user's ``function`` in ticketsim's own process (:func:`_theirs`)."""
    return _theirs(name, _named(function), functools.partial(function, *args), seconds)


def _theirs(name: str, named: str, call: Callable[[], _T], seconds: float) -> _T:
    """Run the user's code in ticketsim's own process: what it raises, exits with or
    prints, and how long it takes, are the user's to fix (exit 2, one line). What it
    prints goes to stderr: stdout is the report's (``--json``)."""
    real_exit, here = os._exit, os.getcwd()
    os._exit = _exit_refused  # it would end ticketsim with the user's code, and no word
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return _answer.answer(seconds, call)
    except _answer.NoAnswer:
        raise ConfigError(
            name, named, f"did not return within {seconds:g} s: a loop or a wait that never ends?"
        ) from None
    except KeyboardInterrupt:  # the user's Ctrl-C, or their code's: either way, stop
        raise
    except BaseException as exc:  # their code, their error: said in one line
        raise _raised(name, named, exc) from None
    finally:
        os._exit = real_exit
        # Its os.chdir would move where ticketsim writes what was vetted (--history).
        with contextlib.suppress(OSError):
            os.chdir(here)


class _Exited(BaseException):
    """The user's code called ``os._exit``, here refused."""


def _exit_refused(status: int) -> NoReturn:
    raise _Exited(status)


def _picklable(name: str, function: Callable[..., Any], sent: object, method: str) -> None:
    """Refuse what ``spawn`` and ``forkserver`` cannot send a buyer's process: a lambda,
    a function defined in another, a handle holding a lock or an open file."""
    try:
        pickle.dumps(sent)
    except Exception as exc:  # pickle raises what the object's own reduce raises
        what = "its handle" if name == "setup" else "it"
        raise ConfigError(
            name,
            _named(function),
            f"{what} cannot be sent to a buyer's process under {method} ({type(exc).__name__}:"
            f" {exc}): define functions at module level, and give the buyers a handle that "
            "pickles (a path or a URL, not an open connection or a lock)",
        ) from None


def _raised(name: str, named: str, exc: BaseException) -> ConfigError:
    """What the user's code raised, as its refusal: ``sys.exit()`` in it would
    otherwise end ticketsim with the user's code, and say nothing."""
    if isinstance(exc, SystemExit):
        return ConfigError(name, named, f"called sys.exit({exc.code!r}): return instead")
    if isinstance(exc, _Exited):
        return ConfigError(name, named, f"called os._exit({exc.args[0]!r}): return instead")
    return ConfigError(name, named, f"raised {type(exc).__name__}: {exc}")


def _named(function: object) -> str:
    module = getattr(function, "__module__", "") or ""
    return f"{module}:{getattr(function, '__qualname__', function)!s}".lstrip(":")


def _controlled(
    schedule: Sequence[int],
    lines: dict[int, Connection],
    processes: dict[int, BaseProcess],
    pids: dict[int, int],
    timeout: float,
    events: list[Event],
    kept: tuple[list[int], list[tuple[int, ...]], list[str]],
) -> None:
    """One buyer moves at a time, as ``schedule`` says; past it, the buyer that moved
    last goes on while it can (then the lowest waiting), so that a schedule switches
    buyers only where it says: its preemptions are the ones it asks for."""
    order, choices, reached = kept
    waiting = set(lines)
    turns = dict.fromkeys(lines, 0)
    # Buyers that found a lock held: tried again only once another buyer has moved.
    blocked: set[int] = set()
    while waiting:
        free = waiting - blocked
        if not free:  # each waits for a lock another holds: nobody can move again
            _deadlocked(sorted(waiting), pids, events)
            return
        turn = len(order)
        wanted = schedule[turn] if turn < len(schedule) else None
        last = order[-1] if order else None
        chosen = wanted if wanted in free else last if last in free else min(free)
        choices.append(tuple(sorted(free)))
        order.append(chosen)
        with contextlib.suppress(OSError):  # a buyer gone already: its last word says why
            lines[chosen].send(None)
        where, state = _moved(lines[chosen], chosen, pids[chosen], timeout, events)
        where, state = _counted(chosen, where, state, turns, pids, events)
        reached.append(where)
        if state == _WAITS:
            blocked.add(chosen)
        else:
            blocked.clear()  # it may have let go of what the blocked ones wait for
        if state == _ENDS:
            waiting.discard(chosen)
            # What only its exit lets go of (a file lock, a transaction) is let go of
            # before the next turn: the same schedule, the same sale, every time.
            processes[chosen].join(_END_S)


def _free(
    lines: dict[int, Connection],
    pids: dict[int, int],
    timeout: float,
    events: list[Event],
    kept: tuple[list[int], list[tuple[int, ...]], list[str]],
) -> None:
    """Let every buyer go at once, and on from each mark as soon as it gets there."""
    order, _, reached = kept
    running = dict(lines)
    turns = dict.fromkeys(lines, 0)
    #: Since when each buyer has found its lock held, turn after turn.
    waits: dict[int, float] = {}
    for line in running.values():
        line.send(None)
    while running:
        ready = multiprocessing.connection.wait(list(running.values()), timeout)
        if not ready:  # every buyer still running is stuck where no mark is
            for number in sorted(running):
                events.append(_stuck(number, pids[number], timeout))
                order.append(number)
                reached.append("error")
            return
        for number, line in list(running.items()):
            if line not in ready:
                continue
            where, state = _moved(line, number, pids[number], timeout, events)
            if state == _WAITS:
                since = waits.setdefault(number, time.monotonic())
                if time.monotonic() - since > timeout:  # held for good: a deadlock
                    note = f"deadlock: its lock was held by another for more than {timeout:g} s"
                    events.append(
                        Event(number, Step.LOST, time.monotonic(), pids[number], note=note,
                              error="Deadlock")
                    )  # fmt: skip
                    where, state = "error", _ENDS
            else:
                waits.pop(number, None)
                where, state = _counted(number, where, state, turns, pids, events)
            order.append(number)
            reached.append(where)
            if state == _ENDS:
                del running[number]
            else:
                if state == _WAITS:
                    time.sleep(0.001)  # the holder runs meanwhile: no turns to wait for
                with contextlib.suppress(OSError):
                    line.send(None)


def _counted(
    number: int,
    where: str,
    state: str,
    turns: dict[int, int],
    pids: dict[int, int],
    events: list[Event],
) -> tuple[str, str]:
    """One more turn of buyer ``number``: past :data:`MAX_TURNS` without an end, it is
    ended, and its history says why."""
    turns[number] += 1
    if state == _ENDS or turns[number] < MAX_TURNS:
        return where, state
    note = f"{MAX_TURNS} steps and no end: a loop that never ends? (ticketsim ends it there)"
    events.append(
        Event(number, Step.ERROR, time.monotonic(), pids[number], note=note, error="TooManySteps")
    )
    return "error", _ENDS


def _stuck(number: int, pid: int, timeout: float) -> Event:
    return Event(
        number,
        Step.ERROR,
        time.monotonic(),
        pid,
        note=(
            f"no mark for {timeout:g} s: blocked outside ticketsim's scheduler (a lock "
            "taken without race.locked?), or slower than the sale's timeout (--timeout)"
        ),
        error="BlockedOutsideScheduler",
    )


def _deadlocked(stuck: list[int], pids: dict[int, int], events: list[Event]) -> None:
    """Every buyer still waiting is blocked by another: a deadlock, which ends them."""
    now = time.monotonic()
    note = f"deadlock: buyers {', '.join(map(str, stuck))} each wait for a lock another holds"
    events.extend(Event(n, Step.LOST, now, pids[n], note=note, error="Deadlock") for n in stuck)


def _ready(line: Connection, number: int, timeout: float, events: list[Event]) -> int:
    kind, pid, _ = _said(line, number, timeout)
    if kind != "ready":  # its process could not import or unpickle the user's code
        raise ConfigError(
            "buyer",
            f"buyer-{number}",
            f"did not start ({pid or 'it said nothing'}): under spawn and forkserver every "
            "buyer imports your main module again, so define buy and setup at module level "
            'and start the sale under `if __name__ == "__main__":`',
        )
    events.append(Event(number, Step.READY, time.monotonic(), int(pid)))
    return int(pid)


def _moved(
    line: Connection, number: int, pid: int, timeout: float, events: list[Event]
) -> tuple[str, str]:
    """Where buyer ``number``'s turn took it, in its words (a mark's name), and whether
    it went on (:data:`_GOES`), found its lock held (:data:`_WAITS`) or ended
    (:data:`_ENDS`): a mark may be named anything, "done" and "blocked:x" included."""
    kind, what, more = _said(line, number, timeout)
    now = time.monotonic()
    if kind == "stuck":
        events.append(_stuck(number, pid, timeout))
        return "error", _ENDS
    if kind == "blocked":
        events.append(Event(number, Step.WAIT, now, pid, note=str(what)))
        return f"{_BLOCKED}{what}", _WAITS
    if kind == "mark":
        events.append(Event(number, Step.MARK, now, pid, value=more, note=str(what)))
        return str(what), _GOES
    if kind == "done" and what is not None:
        events.append(Event(number, Step.OK, now, pid, seat=int(what)))
        return "done", _ENDS
    if kind == "done":
        events.append(Event(number, Step.FAIL, now, pid))
        return "sold out", _ENDS
    events.append(Event(number, Step.ERROR, now, pid, note=str(what), error=str(more)[:64]))
    return "error", _ENDS


def _said(line: Connection, number: int, timeout: float) -> tuple[str, Any, Any]:
    if not line.poll(timeout):
        return "stuck", None, None
    try:
        kind, what, more = line.recv()
    except EOFError:
        return "error", "its process ended without a word", "ProcessDied"
    return str(kind), what, more


def _end(processes: list[BaseProcess]) -> None:
    """Every buyer is gone: one that said how it ended exits by itself at once; one that
    did not (a deadlock, a stall) is killed after a short grace."""
    deadline = time.monotonic() + _GRACE_S
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join(_END_S)


def _final(
    race: Race, handle: Any, events: list[Event], pids: dict[int, int]
) -> dbfile.TicketDB | None:
    if race.sold is None:
        return None
    said, named = _yours("sold", race.sold, handle, seconds=race.timeout), _named(race.sold)
    how = f"list (buyer, seat) pairs, buyers numbered 1 to {race.buyers}"
    if not isinstance(said, Iterable) or isinstance(said, (str, bytes)):
        raise ConfigError("sold", named, f"returned {said!r}: {how}")
    # Any iterable of pairs will do, a generator's included, and reading it runs their
    # code, as int() of what it gives does.
    listed: list[Any] = _theirs("sold", named, functools.partial(list, said), race.timeout)
    try:
        pairs = _theirs(
            "sold", named, lambda: [(_whole(b), _whole(seat)) for b, seat in listed], race.timeout
        )
    except ConfigError:
        raise ConfigError("sold", named, f"returned {listed!r:.200}: {how}") from None
    if any(not 1 <= b <= race.buyers for b, _ in pairs):
        raise ConfigError("sold", named, f"returned {listed!r}: {how}")
    at = {e.buyer: e.t for e in events if e.step is Step.OK}
    ledger = tuple(
        dbfile.Sale(buyer_name(b), seat, pids.get(b, 0), at.get(b, 0.0)) for b, seat in pairs
    )
    if race.remaining is not None:
        told = _yours("remaining", race.remaining, handle, seconds=race.timeout)
        try:
            left = _theirs("remaining", _named(race.remaining), lambda: _whole(told), race.timeout)
        except ConfigError:
            raise ConfigError(
                "remaining", _named(race.remaining), f"returned {told!r}: return a whole number"
            ) from None
    else:  # no count of its own: what the ledger leaves, never checked (count_known)
        left = race.tickets - len(ledger)
    return dbfile.TicketDB(race.tickets, left, ledger)


def _whole(value: Any) -> int:
    """A whole number the user's store gave: what ``int()`` reads (redis-py's bytes, a
    psycopg ``Decimal``, text), but not a bool and nothing ``int()`` would round."""
    if isinstance(value, bool):
        raise TypeError(f"{value!r} is a bool, not a number")
    number = int(value)
    if not isinstance(value, (int, str, bytes, bytearray)) and value != number:
        raise ValueError(f"{value!r} is not a whole number")  # 1.5, Decimal("1.5")
    return number


def _result(race: Race, events: list[Event], final: dbfile.TicketDB | None) -> RunResult:
    config = RunConfig(buyers=race.buyers, tickets=race.tickets, strategy="none", delay=0.0)
    opened = events[0].t if events else 0.0
    return RunResult(
        config=config,
        start_method=race.start_method or multiprocessing.get_start_method(),
        seed=0,
        initial=dbfile.TicketDB.fresh(race.tickets),
        final=final,
        final_error=None,
        history=tuple(events),
        opened_at=opened,
        elapsed_s=(events[-1].t - opened) if events else 0.0,
        system=race.name,
        system_safe=race.safe,
    )


def import_theirs(name: str, shown: str, module_name: str) -> types.ModuleType:
    """Import the user's module ``module_name`` as :func:`_theirs` runs their code:
    bounded by :data:`IMPORT_S`, what it raises or exits with a :class:`ConfigError`
    that names ``name`` as ``shown``."""
    return _theirs(name, shown, functools.partial(importlib.import_module, module_name), IMPORT_S)


def load_function(name: str, spec: str) -> Callable[..., Any]:
    """The function ``spec`` names (``package.module:function``), imported as ``python
    -m`` would from the current folder; :class:`ConfigError` says what is wrong."""
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise ConfigError(name, spec, "give it as package.module:function, like shop:buy")
    top = module_name.split(".")[0]
    if top in sys.stdlib_module_names:  # Python's own would be imported, not theirs
        raise ConfigError(
            name, spec, f"{top!r} is a module of Python's own: give your module another name"
        )
    here = os.getcwd()
    if "" not in sys.path and here not in sys.path:
        sys.path.insert(0, here)  # as `python -m` does, and so do spawned buyers
    try:
        module = import_theirs(name, spec, module_name)
    except ConfigError as exc:  # its own import errors, they are the user's
        raise ConfigError(name, spec, f"cannot import {module_name!r} ({exc.advice})") from None
    finally:
        # Last, once theirs is imported: a file of theirs named as a module of Python's
        # (email.py beside it) must not stand in for the one ticketsim imports later.
        if here in sys.path:
            sys.path.remove(here)
            sys.path.append(here)
    try:
        found = _theirs(name, spec, lambda: getattr(module, attribute, None), IMPORT_S)
    except ConfigError:
        found = None
    if not callable(found):
        raise ConfigError(name, spec, f"{module_name!r} has no function {attribute!r}")
    return found  # type: ignore[no-any-return]


def parse_order(spec: str, buyers: int) -> tuple[int, ...]:
    """A schedule as ``ticketsim`` prints it (``2:read 1:read 1:done``) or as buyer
    numbers (``2 1 1``): who moves at each turn."""
    if not spec.split():  # nothing to force: that is a free run (run), not a replay
        raise ConfigError("schedule", spec, "give who moves at each turn, like '1 2 2 1'")
    order = []
    for word in spec.split():
        number, _, _ = word.partition(":")
        if not (number.isascii() and number.isdecimal()) or not 1 <= int(number) <= buyers:
            raise ConfigError(
                "schedule", spec, f"{word!r} names no buyer: give buyer numbers 1 to {buyers}"
            )
        order.append(int(number))
    return tuple(order)
