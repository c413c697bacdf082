"""``ticketsim play``: the student is the scheduler.

A :class:`Level` is a small sale, each buyer's program a short list of fine-grained
steps (check, lock, read, decide, write, ...). The student picks which buyer takes its
next step (:func:`advance`), only among those that can move (:func:`enabled`: a buyer
waiting for a lock held by another, or for an answer, cannot). The level is won when
the sale breaks an invariant (:func:`broken`). A protected level cannot be won:
:func:`reachable_broken` searches its whole (small) state space to prove it.

A won game maps to ticketsim's two-step schedule (:func:`two_step`) of the level's
real strategy, checked to be faithful (:func:`faithful`) before any replay command is
offered: the schedule, run coarsely through the same model, must break the same
invariant. :func:`replay` runs it with real processes.

Pure data and functions, apart from :func:`replay`; nothing here prints.
"""

from __future__ import annotations

import functools
import shlex
from enum import Enum
from typing import TYPE_CHECKING, Final

from ticketsim.core import schedule as sched
from ticketsim.core.frozen import field, frozen, replace

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from ticketsim.core.result import RunResult


class Op(str, Enum):
    CHECK = "check"
    LOCK = "lock"
    READ = "read"
    DECIDE = "decide"
    WRITE = "write"
    TRUNCATE = "truncate"
    UNLOCK = "unlock"
    LOAD = "load"
    STORE = "store"
    SEND = "send"
    RECEIVE = "receive"
    TAKE = "take"
    REPLY = "reply"
    COUNT = "count"
    INSERT = "insert"
    COMMIT = "commit"


#: Steps a buyer that decided "sold out" has nothing to do in.
_WRITES: Final = frozenset({Op.WRITE, Op.TRUNCATE, Op.STORE, Op.INSERT, Op.COMMIT})


@frozen
class Instr:
    op: Op
    #: The line of code the step runs, as shown beside the buyer.
    code: str


@frozen
class Level:
    number: int
    title: str
    #: What the student plays against, in one or two sentences.
    intro: str
    buyers: int
    tickets: int
    program: tuple[Instr, ...]
    #: The index in ``program`` of the step that ends the two-step ``r`` (the read).
    read_at: int
    #: ticketsim's real strategy for this program, if it has one.
    strategy: str | None
    #: Why a won game has no replay (no real strategy, or no schedule can force it).
    no_replay: str = ""
    #: How many buyers the lock (a semaphore's count) lets in at once.
    capacity: int = 1
    #: A single writer (the office) serves the buyers' requests: actor ``buyers + 1``.
    office: bool = False
    #: A database transaction's isolation: "repeatable read" or "serializable".
    isolation: str | None = None
    #: A winning order of moves (actor numbers); empty for a protected level.
    winning: tuple[int, ...] = ()
    #: Why no order breaks a protected level.
    why_safe: str = ""

    @property
    def protected(self) -> bool:
        return not self.winning

    @property
    def actors(self) -> int:
        return self.buyers + (1 if self.office else 0)

    def program_of(self, actor: int) -> tuple[Instr, ...]:
        return _OFFICE * self.buyers if self.office and actor == self.buyers + 1 else self.program

    def name_of(self, actor: int) -> str:
        return "office" if self.office and actor == self.buyers + 1 else f"buyer {actor}"


@frozen
class Actor:
    """One buyer's (or the office's) own view."""

    pc: int = 0
    #: What its check saw, and what its read (or count, or load) returned.
    saw: int | None = None
    read: int | None = None
    #: The ledger as it read it: what its write will put back.
    ledger: tuple[tuple[int, int], ...] = ()
    #: The seat it decided on; ``refused``: it decided "sold out".
    seat: int | None = None
    refused: bool = False
    #: How many sales were committed when its transaction counted them.
    snapshot: int | None = None
    #: The office: the buyer it is serving.
    serving: int | None = None
    retries: int = 0
    #: The steps it passed over once it had decided "sold out".
    skipped: tuple[int, ...] = ()
    #: What it was told: a seat, or 0 for "sold out"; ``None`` until it knows.
    told: int | None = None


@frozen
class State:
    remaining: int
    #: The db's ledger: (buyer, seat), as the last write left it.
    ledger: tuple[tuple[int, int], ...]
    actors: tuple[Actor, ...]
    #: Buyers told they got a seat: (buyer, seat), in the order they were told.
    sold: tuple[tuple[int, int], ...] = ()
    #: Writes that took a ticket (each should take the count down by one).
    writes: int = 0
    holders: tuple[int, ...] = ()
    queue: tuple[int, ...] = ()
    replies: tuple[tuple[int, int], ...] = ()
    #: The db file is truncated and not yet written again (the tutorial's open("w")).
    emptied: bool = False
    #: Buyers that read the emptied file.
    torn: tuple[int, ...] = ()
    #: The actors' moves so far.
    moves: tuple[int, ...] = ()
    #: A serialization failure the last move met, to tell the student.
    note: str = ""

    def actor(self, number: int) -> Actor:
        return self.actors[number - 1]


@frozen
class Broken:
    kind: str
    explanation: str


def start(level: Level) -> State:
    return State(
        remaining=level.tickets,
        ledger=(),
        actors=tuple(Actor() for _ in range(level.actors)),
    )


def finished(level: Level, state: State, actor: int) -> bool:
    return state.actor(actor).pc >= len(level.program_of(actor))


def next_step(level: Level, state: State, actor: int) -> Instr | None:
    program = level.program_of(actor)
    pc = state.actor(actor).pc
    return program[pc] if pc < len(program) else None


def blocked(level: Level, state: State, actor: int) -> str | None:
    """Why ``actor`` cannot take its next step now, or ``None`` if it can."""
    step = next_step(level, state, actor)
    if step is None:
        return "done"
    if step.op is Op.LOCK and len(state.holders) >= level.capacity:
        holders = " and ".join(f"buyer {h}" for h in state.holders)
        what = "the lock" if level.capacity == 1 else "the semaphore's places"
        return f"waits: {holders} hold{'s' if len(state.holders) == 1 else ''} {what}"
    if step.op is Op.TAKE and not state.queue:
        return "waits for a request"
    if step.op is Op.RECEIVE and not any(b == actor for b, _ in state.replies):
        return "waits for the office's answer"
    return None


def enabled(level: Level, state: State) -> tuple[int, ...]:
    """The actors that can take a step now."""
    return tuple(a for a in range(1, level.actors + 1) if blocked(level, state, a) is None)


def over(level: Level, state: State) -> bool:
    """The game is over: the sale broke, or every buyer knows its outcome (or nothing can
    move, which a correct level never reaches)."""
    if broken(level, state):
        return True
    buyers_done = all(finished(level, state, b) for b in range(1, level.buyers + 1))
    return buyers_done or not enabled(level, state)


def advance(level: Level, state: State, actor: int) -> State:
    """``actor`` takes its next step. ``ValueError`` if it cannot move now."""
    why = blocked(level, state, actor)
    if why is not None:
        raise ValueError(f"{level.name_of(actor)} cannot move: {why}")
    step = next_step(level, state, actor)
    assert step is not None
    me = state.actor(actor)
    move = _Move(level, state, actor, me, step.op)
    if step.op is Op.COMMIT and _refused_commit(move):
        move.shared["note"] = (
            f"buyer {actor}: could not serialize access (a sale was committed after "
            "it counted); its transaction is rolled back and retried"
        )
        return _put(state, actor, Actor(retries=me.retries + 1), move.shared)
    _EFFECTS[step.op](move)
    after = replace(me, **move.mine)  # type: ignore[arg-type]
    program = level.program_of(actor)
    while after.refused and after.pc < len(program) and program[after.pc].op in _WRITES:
        after = replace(after, pc=after.pc + 1, skipped=(*after.skipped, after.pc))
    return _put(state, actor, after, move.shared)


class _Move:
    """One step being taken: what it changes in the db (``shared``) and in the actor's
    own view (``mine``)."""

    def __init__(self, level: Level, state: State, actor: int, me: Actor, op: Op) -> None:
        self.level, self.state, self.actor, self.me, self.op = level, state, actor, me, op
        self.shared: dict[str, object] = {"moves": (*state.moves, actor), "note": ""}
        self.mine: dict[str, object] = {"pc": me.pc + 1}


def _check(m: _Move) -> None:
    saw = 0 if m.state.emptied else m.state.remaining
    m.mine["saw"] = saw
    if m.state.emptied:
        m.shared["torn"] = (*m.state.torn, m.actor)
    if saw == 0:
        m.mine |= {"refused": True, "told": 0, "pc": len(m.level.program_of(m.actor))}


def _lock(m: _Move) -> None:
    m.shared["holders"] = (*m.state.holders, m.actor)


def _unlock(m: _Move) -> None:
    m.shared["holders"] = tuple(h for h in m.state.holders if h != m.actor)


def _read(m: _Move) -> None:
    state = m.state
    value = m.level.tickets - len(state.ledger) if m.op is Op.COUNT else state.remaining
    if state.emptied:
        value = 0
        m.shared["torn"] = (*state.torn, m.actor)
    m.mine |= {"read": value, "ledger": state.ledger}
    if m.op is Op.COUNT:
        m.mine["snapshot"] = len(state.ledger)
    if m.op is Op.LOAD:  # v.value -= 1 has no decision: the check made it
        m.mine["seat"] = m.level.tickets - value + 1


def _decide(m: _Move) -> None:
    assert m.me.read is not None
    if m.me.read > 0:
        m.mine["seat"] = m.level.tickets - m.me.read + 1
    else:
        m.mine["refused"] = True
        if m.me.serving is None:
            m.mine["told"] = 0


def _truncate(m: _Move) -> None:
    m.shared["emptied"] = True


def _write(m: _Move) -> None:
    me, state = m.me, m.state
    assert me.read is not None
    assert me.seat is not None
    # The file's write puts back the ledger as it was read; a Value's store leaves the
    # ledger alone (the strategy keeps its sales apart from the count).
    base = state.ledger if m.op is Op.STORE else me.ledger
    whom = me.serving if me.serving is not None else m.actor
    m.shared |= {
        "remaining": me.read - 1,
        "ledger": (*base, (whom, me.seat)),
        "writes": state.writes + 1,
        "emptied": False,
    }
    if me.serving is None:
        m.shared["sold"] = (*state.sold, (m.actor, me.seat))
        m.mine["told"] = me.seat


def _insert(m: _Move) -> None:
    del m  # invisible to the others until the commit


def _refused_commit(m: _Move) -> bool:
    """SERIALIZABLE refuses a commit whose count another commit made stale."""
    assert m.me.snapshot is not None
    return m.level.isolation == "serializable" and len(m.state.ledger) > m.me.snapshot


def _commit(m: _Move) -> None:
    assert m.me.seat is not None
    ledger = (*m.state.ledger, (m.actor, m.me.seat))
    m.shared |= {
        "ledger": ledger,
        "remaining": m.level.tickets - len(ledger),
        "writes": m.state.writes + 1,
        "sold": (*m.state.sold, (m.actor, m.me.seat)),
    }
    m.mine["told"] = m.me.seat


def _send(m: _Move) -> None:
    m.shared["queue"] = (*m.state.queue, m.actor)


def _take(m: _Move) -> None:
    m.shared["queue"] = m.state.queue[1:]
    m.mine |= {"serving": m.state.queue[0], "read": None, "seat": None, "refused": False,
               "skipped": ()}  # fmt: skip


def _reply(m: _Move) -> None:
    assert m.me.serving is not None
    answer = 0 if m.me.refused or m.me.seat is None else m.me.seat
    m.shared["replies"] = (*m.state.replies, (m.me.serving, answer))


def _receive(m: _Move) -> None:
    answer = next(seat for b, seat in m.state.replies if b == m.actor)
    m.mine["told"] = answer
    if answer:
        m.mine["seat"] = answer
        m.shared["sold"] = (*m.state.sold, (m.actor, answer))
    else:
        m.mine["refused"] = True


_EFFECTS: Final[dict[Op, Callable[[_Move], None]]] = {
    Op.CHECK: _check,
    Op.LOCK: _lock,
    Op.UNLOCK: _unlock,
    Op.READ: _read,
    Op.LOAD: _read,
    Op.COUNT: _read,
    Op.DECIDE: _decide,
    Op.TRUNCATE: _truncate,
    Op.WRITE: _write,
    Op.STORE: _write,
    Op.INSERT: _insert,
    Op.COMMIT: _commit,
    Op.SEND: _send,
    Op.TAKE: _take,
    Op.REPLY: _reply,
    Op.RECEIVE: _receive,
}


def _put(state: State, actor: int, me: Actor, shared: dict[str, object]) -> State:
    actors = (*state.actors[: actor - 1], me, *state.actors[actor:])
    return replace(state, actors=actors, **shared)  # type: ignore[arg-type]


def play(level: Level, moves: Iterable[int]) -> State:
    """The state after ``moves``, from the start; ``ValueError`` at a move that cannot be
    taken."""
    state = start(level)
    for move in moves:
        state = advance(level, state, move)
    return state


def undo(level: Level, state: State) -> State:
    """The state before the last move (the game is replayed from the start: the model
    keeps no history, and a level is a few dozen steps at most)."""
    return play(level, state.moves[:-1])


def _buyers(names: Iterable[int]) -> str:
    listed = [f"buyer {b}" for b in names]
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]


def broken(level: Level, state: State) -> tuple[Broken, ...]:
    """Every invariant the sale breaks now, each explained in plain words."""
    found: list[Broken] = []
    if state.torn:
        who = _buyers(state.torn)
        found.append(
            Broken(
                "torn read",
                f"{who} read the db while a write had emptied it (open(path, 'w') "
                "truncates the file before writing): it saw no tickets at all.",
            )
        )
    if len(state.sold) > level.tickets:
        extra = len(state.sold) - level.tickets
        found.append(
            Broken(
                "oversold",
                f"{len(state.sold)} buyers were told they got a ticket, but only "
                f"{level.tickets} {'was' if level.tickets == 1 else 'were'} on sale "
                f"({extra} too many).",
            )
        )
    seats: dict[int, list[int]] = {}
    for buyer, seat in state.sold:
        seats.setdefault(seat, []).append(buyer)
    for seat, buyers in sorted(seats.items()):
        if len(buyers) > 1:
            found.append(
                Broken(
                    "double-booked seat",
                    f"{_buyers(buyers)} were {'both' if len(buyers) == 2 else 'all'} sold "
                    f"seat {seat}.",
                )
            )
    lost = [b for b, _ in state.sold if all(b != owner for owner, _ in state.ledger)]
    taken = level.tickets - state.remaining
    if lost or state.writes > taken:
        missing = f"; {_buyers(lost)}'s sale is gone from the ledger" if lost else ""
        found.append(
            Broken(
                "lost update",
                f"{state.writes} sales were written, but the count fell by only {taken}: "
                f"a write made from an older read replaced another{missing}.",
            )
        )
    return tuple(found)


def reachable_broken(level: Level) -> tuple[int, ...] | None:
    """The moves of a shortest order that breaks the level, or ``None`` when every
    reachable state keeps every invariant (the proof a protected level cannot be won)."""
    return search(level)[0]


@functools.cache
def search(level: Level) -> tuple[tuple[int, ...] | None, int]:
    """A breadth-first walk of every state ``level`` can reach: the moves of a shortest
    order that breaks it (``None`` if none does), and how many states were looked at."""
    first = start(level)
    seen = {_key(first)}
    frontier = [first]
    while frontier:
        following: list[State] = []
        for state in frontier:
            if broken(level, state):
                return state.moves, len(seen)
            if over(level, state):
                continue
            for actor in enabled(level, state):
                nxt = advance(level, state, actor)
                key = _key(nxt)
                if key not in seen:
                    seen.add(key)
                    following.append(nxt)
        frontier = following
    return None, len(seen)


def _key(state: State) -> State:
    """A state without the order that led to it: two orders reaching it are one."""
    return replace(state, moves=(), note="")


# -- the two-step schedule of a won game ------------------------------------------------


def two_step(level: Level, moves: Iterable[int]) -> sched.Schedule:
    """The two-step schedule of ``moves``: a buyer's ``r`` where it takes its read (or
    gives up before it), its ``w`` where it takes its last step; then completed as
    ``ticketsim replay`` completes a schedule."""
    state = start(level)
    actions: list[sched.Action] = []
    for move in moves:
        before = state.actor(move)
        state = advance(level, state, move)
        after = state.actor(move)
        if move > level.buyers:
            continue
        done = after.pc >= len(level.program)
        if before.pc <= level.read_at and (after.pc > level.read_at or done):
            actions.append(sched.Action(move, sched.Move.READ))
        if done:
            actions.append(sched.Action(move, sched.Move.WRITE))
    return sched.Schedule(tuple(actions)).complete(level.buyers)


def coarse(level: Level, schedule: sched.Schedule) -> State | None:
    """``schedule`` run through the model with each ``r`` and ``w`` one indivisible step,
    as the real runner grants them; ``None`` if a step would wait (infeasible)."""
    state = start(level)
    for action in schedule.actions:
        buyer = action.buyer
        while not finished(level, state, buyer) and (
            action.move is sched.Move.WRITE or state.actor(buyer).pc <= level.read_at
        ):
            if blocked(level, state, buyer) is not None:
                return None
            state = advance(level, state, buyer)
    return state


def faithful(level: Level, moves: Iterable[int]) -> tuple[sched.Schedule | None, str]:
    """The two-step schedule that replays ``moves`` with real processes and breaks the
    same invariants, or ``None`` and why there is none."""
    played = play(level, moves)
    if level.strategy is None:
        return None, level.no_replay
    schedule = two_step(level, played.moves)
    kinds = {b.kind for b in broken(level, played)}
    ran = coarse(level, schedule)
    if ran is None:
        return None, f"its two-step schedule '{schedule}' cannot run under {level.strategy}"
    missing = kinds - {b.kind for b in broken(level, ran)}
    if missing:
        return None, (
            f"{', '.join(sorted(missing))} happened between two steps that ticketsim's "
            f"replay grants as one ('{schedule}'), so no replay can force it. " + level.no_replay
        ).strip()
    return schedule, ""


def replay_command(level: Level, schedule: sched.Schedule) -> str:
    assert level.strategy is not None
    return shlex.join(
        ["ticketsim", "replay", "--strategy", level.strategy, "--buyers", str(level.buyers),
         "--tickets", str(level.tickets), "--schedule", str(schedule)]
    )  # fmt: skip


def replay(
    level: Level, schedule: sched.Schedule, db_path: Path, timeout: float = 10.0
) -> RunResult:
    """Run ``schedule`` with real buyer processes under the level's strategy."""
    from ticketsim.engine.databases import PrivateServers  # noqa: PLC0415 - only when asked for
    from ticketsim.engine.runner import run_sale  # noqa: PLC0415 - only when asked for
    from ticketsim.search.explore import Scenario  # noqa: PLC0415 - imports hypothesis

    assert level.strategy is not None
    with PrivateServers() as servers:
        scenario = Scenario(
            strategy=level.strategy,
            buyers=level.buyers,
            tickets=level.tickets,
            db_path=db_path,
            start_method=None,
            timeout=timeout,
            servers=servers,
        )
        scenario.check()
        return run_sale(scenario.config(schedule), servers=servers)


# -- the levels -------------------------------------------------------------------------

_CHECK: Final = Instr(Op.CHECK, "if db['remaining'] > 0:")
_READ: Final = Instr(Op.READ, "db = json.load(open(path))")
_DECIDE: Final = Instr(Op.DECIDE, "n = db['remaining']; seat = tickets - n + 1")
_WRITE: Final = Instr(Op.WRITE, "db['remaining'] = n - 1; save(db)")
_LOCK: Final = Instr(Op.LOCK, "lock.acquire()")
_UNLOCK: Final = Instr(Op.UNLOCK, "lock.release()")
#: A ledger transaction's count, decision and insert: the same at every isolation level.
_COUNT: Final = Instr(Op.COUNT, "SELECT count(*) FROM sales   -- from its snapshot")
_DECIDE_SEAT: Final = Instr(Op.DECIDE, "seat = count + 1 if count < tickets")
_INSERT: Final = Instr(Op.INSERT, "INSERT INTO sales VALUES (me, seat)")

_OFFICE: Final = (
    Instr(Op.TAKE, "buyer = requests.get()"),
    Instr(Op.READ, "db = json.load(open(path))"),
    Instr(Op.DECIDE, "n = db['remaining']; seat = tickets - n + 1"),
    Instr(Op.WRITE, "db['remaining'] = n - 1; save(db)"),
    Instr(Op.REPLY, "answers[buyer].put(seat)"),
)

LEVELS: Final = (
    Level(
        1,
        "The unlocked sale",
        "Two buyers, one ticket, nothing protecting read-decide-write. Sell it twice.",
        buyers=2,
        tickets=1,
        program=(_CHECK, _READ, _DECIDE, _WRITE),
        read_at=1,
        strategy="none",
        winning=(1, 1, 2, 2, 1, 1, 2, 2),
    ),
    Level(
        2,
        "v.value -= 1",
        "A shared multiprocessing.Value. Each access takes its lock, but "
        "'v.value -= 1' is two accesses: a read, then a write.",
        buyers=2,
        tickets=1,
        program=(
            Instr(Op.CHECK, "if v.value > 0:"),
            Instr(Op.LOAD, "tmp = v.value      # v.value -= 1, the read"),
            Instr(Op.STORE, "v.value = tmp - 1  # v.value -= 1, the write"),
        ),
        read_at=1,
        strategy="value-unlocked",
        winning=(1, 1, 2, 2, 1, 2),
    ),
    Level(
        3,
        "A lock taken too late",
        "The buyers lock around the write, but read the count before taking the lock.",
        buyers=2,
        tickets=1,
        program=(_CHECK, _READ, _LOCK, _DECIDE, _WRITE, _UNLOCK),
        read_at=1,
        strategy=None,
        no_replay="ticketsim has no real strategy that reads before it locks (run "
        "'ticketsim exercise' to write one and have it checked).",
        winning=(1, 1, 2, 2, 1, 1, 1, 1, 2, 2, 2),
    ),
    Level(
        4,
        "A lock released too early",
        "The buyers lock around the read and the decision, and write after releasing it.",
        buyers=2,
        tickets=1,
        program=(_CHECK, _LOCK, _READ, _DECIDE, _UNLOCK, _WRITE),
        read_at=2,
        strategy=None,
        no_replay="ticketsim has no real strategy that releases its lock before the write.",
        winning=(1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 1, 2),
    ),
    Level(
        5,
        "The lock",
        "multiprocessing.Lock held from before the read until after the write.",
        buyers=2,
        tickets=1,
        program=(_CHECK, _LOCK, _READ, _DECIDE, _WRITE, _UNLOCK),
        read_at=2,
        strategy="lock",
        why_safe="the lock is held from the read to the write, so no buyer can read "
        "between another's read and its write: each decides on the count as the last "
        "write left it.",
    ),
    Level(
        6,
        "Semaphore(2)",
        "A Semaphore(2) guards read-decide-write: two buyers may be inside at once.",
        buyers=2,
        tickets=1,
        program=(
            _CHECK,
            Instr(Op.LOCK, "sem.acquire()"),
            _READ,
            _DECIDE,
            _WRITE,
            Instr(Op.UNLOCK, "sem.release()"),
        ),
        read_at=2,
        capacity=2,
        strategy=None,
        no_replay="ticketsim's real semaphore strategy is a Semaphore(1), which is a lock; "
        "it has none that lets two buyers in.",
        winning=(1, 1, 1, 2, 2, 2, 1, 1, 2, 2),
    ),
    Level(
        7,
        "The office",
        "One office process does every write; buyers send it a request and wait for "
        "its answer. (Key 3 moves the office.)",
        buyers=2,
        tickets=1,
        program=(
            Instr(Op.CHECK, "if db['remaining'] > 0:"),
            Instr(Op.SEND, "requests.put(me)"),
            Instr(Op.RECEIVE, "seat = answers[me].get()"),
        ),
        read_at=1,
        office=True,
        strategy="office",
        why_safe="only the office reads and writes the db, one request at a time: a "
        "read and its write are never separated by another's write.",
    ),
    Level(
        8,
        "The tutorial's open(path, 'w')",
        "The write is json.dump(db, open(path, 'w')): the file is emptied first, then "
        "written. Catch a buyer reading in between.",
        buyers=2,
        tickets=2,
        program=(
            _CHECK,
            _READ,
            _DECIDE,
            Instr(Op.TRUNCATE, "f = open(path, 'w')   # the file is now empty"),
            Instr(Op.WRITE, "json.dump(db, f)"),
        ),
        read_at=1,
        strategy="none",
        no_replay="'ticketsim run --buyers 50' shows torn reads by chance.",
        winning=(1, 1, 1, 1, 2),
    ),
    Level(
        9,
        "REPEATABLE READ: write skew",
        "PostgreSQL, REPEATABLE READ. Each buyer counts the sales rows, then inserts its "
        "own: no two write the same row.",
        buyers=2,
        tickets=1,
        program=(_COUNT, _DECIDE_SEAT, _INSERT, Instr(Op.COMMIT, "COMMIT")),
        read_at=0,
        isolation="repeatable read",
        strategy="pg-write-skew",
        winning=(1, 2, 1, 1, 1, 2, 2, 2),
    ),
    Level(
        10,
        "SERIALIZABLE",
        "The same transactions under SERIALIZABLE, retried when PostgreSQL refuses one.",
        buyers=2,
        tickets=1,
        program=(
            _COUNT,
            _DECIDE_SEAT,
            _INSERT,
            Instr(Op.COMMIT, "COMMIT   -- or: could not serialize, retry"),
        ),
        read_at=0,
        isolation="serializable",
        strategy="pg-ledger-serializable",
        why_safe="a transaction that counted the sales before another committed one is "
        "refused at its commit and retried, and its retry counts the new sale.",
    ),
)


def level(number: int) -> Level:
    """Level ``number``; ``ValueError`` naming the levels there are."""
    for each in LEVELS:
        if each.number == number:
            return each
    raise ValueError(f"level={number}: there are levels 1 to {len(LEVELS)}")


@frozen
class Saved:
    """What ``--save`` writes: enough to replay the game and the sale."""

    level: int
    moves: tuple[int, ...]
    schedule: str | None
    replay: str | None
    broken: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        return {
            "ticketsim_play": 1,
            "level": self.level,
            "moves": " ".join(str(m) for m in self.moves),
            "broken": list(self.broken),
            "schedule": self.schedule,
            "replay": self.replay,
        }
