"""The history of a sale: one :class:`Event` per step a buyer took.

Buyers send events to the parent as they go; reports, the checker, timelines
and replays are all derived from this history and nothing else.

A buyer's steps, in order (``wait``/``enter``/``leave`` only when its strategy
guards the purchase, ``torn`` whenever a read saw a half-written db)::

    ready -> check -> [wait -> enter] -> read -> write -> [commit] -> [leave] -> ok
                                         read ----------------------> [leave] -> fail
    any step may end in error instead (the outcome is then unknown)

A database store's buyer ends its transaction with ``commit``; a transaction the
database refused ends in ``retry`` and starts again at ``read`` (or at ``wait``), or,
for a strategy that does not retry, in ``fail`` with the refusal as its ``error``.

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import TYPE_CHECKING, Any, Final, Protocol

from ticketsim.core._values import seconds
from ticketsim.core.frozen import frozen

if TYPE_CHECKING:
    from collections.abc import Sequence


class Step(str, Enum):
    READY = "ready"  #: the process is up and waits for the sale to open
    CHECK = "check"  #: looked at the remaining count, unprotected (the tutorial's ``search``)
    WAIT = "wait"  #: started waiting for the strategy's lock
    ENTER = "enter"  #: holds the lock; the critical section starts
    READ = "read"  #: read the db inside the critical section; ``value`` is what it saw
    TORN = "torn"  #: a read found the db empty or half written, and will try again
    WRITE = "write"  #: wrote the db back; ``value`` is the new remaining, ``seat`` the seat
    #: a database accepted the buyer's transaction: what it wrote is now there for all
    COMMIT = "commit"
    #: a database refused the buyer's transaction (``note`` says why, ``error`` names
    #: it), which left nothing behind; the buyer starts it again from the top
    RETRY = "retry"
    LEAVE = "leave"  #: released the lock
    #: a point the user's own buyer marked (``ticketsim.race.step``): ``note`` is its
    #: name, ``value`` what the buyer saw there, if it said
    MARK = "mark"
    OK = "ok"  #: the buyer was told it got ``seat``
    FAIL = "fail"  #: the buyer was told the tickets are sold out
    ERROR = "error"  #: the buyer gave up or crashed; ``note`` says why; outcome unknown
    #: Recorded by the parent, not the buyer: its process ended with no outcome (it was
    #: killed, or ended by ticketsim after a stall); ``note`` says how; outcome unknown.
    LOST = "lost"


#: Steps a buyer ends with: it does nothing more after one.
OUTCOMES: Final = frozenset({Step.OK, Step.FAIL, Step.ERROR})
#: Every way a buyer's history can end, its own outcomes and the parent's ``lost``.
ENDINGS: Final = OUTCOMES | {Step.LOST}


_KINDS: Final = {
    Step.READY: "invoke",
    Step.OK: "ok",
    Step.FAIL: "fail",
    Step.ERROR: "info",
    Step.LOST: "info",
}


#: The ``error`` of a ``lost`` event whose buyer was SIGKILLed on purpose (``--kill``,
#: ``--kill-holder``): a planned fault, not a death.
KILLED_ON_PURPOSE: Final = "killed-on-purpose"
#: The ``error`` of an ``error`` or ``lost`` event of a buyer whose host was cut off on
#: purpose (``--partition``) and whose outcome is therefore unknown: a planned fault.
CUT_OFF_ON_PURPOSE: Final = "cut-off-on-purpose"


def planned(event: Event) -> bool:
    """Whether ``event`` is the unknown end of a buyer a planned fault took: killed on
    purpose (its ``lost``), or cut off on purpose (its ``error`` or ``lost``). Such a
    buyer is owed nothing, as one that died is; a buyer told an outcome never is one."""
    if event.error == KILLED_ON_PURPOSE:
        return event.step is Step.LOST
    return event.error == CUT_OFF_ON_PURPOSE and event.step in (Step.ERROR, Step.LOST)


#: The longest ``error`` an event carries (a class name, or a word like the one above).
MAX_ERROR_CHARS: Final = 64


def buyer_name(number: int) -> str:
    """The process name of buyer ``number`` (1-based), as every report prints it."""
    return f"buyer-{number}"


def buyer_number(name: str) -> int:
    """The inverse of :func:`buyer_name`."""
    prefix, _, number = name.partition("-")
    if prefix != "buyer" or not number.isdigit():
        raise ValueError(f"name={name!r} is not a buyer name like 'buyer-3'")
    return int(number)


@frozen(slots=True)
class Event:
    """One step of one buyer.

    ``t`` is ``time.monotonic()`` in the buyer, which on Linux is one clock for
    every process, so events of different buyers can be ordered by it. In a sale of
    several hosts it is the store's clock when the event reached the store (seconds
    since the epoch): the hosts' own clocks need not agree.
    """

    buyer: int
    step: Step
    t: float
    pid: int
    value: int | None = None
    seat: int | None = None
    note: str | None = None
    #: Why an ``error`` or ``lost`` event has no outcome, as a word a program can match
    #: (Jepsen's ``:error``): the class of the exception a buyer met
    #: (``DbWriteError``, ``GuardTimeout``), or :data:`KILLED_ON_PURPOSE`. The ``note``
    #: says the same in words, for people.
    error: str | None = None
    #: The host the buyer ran on, in a sale of several hosts (``ticketsim buyers``);
    #: ``t`` is then the store's clock, which orders every host's events.
    host: str | None = None
    #: What the host's own clock said when it recorded the event (seconds since the
    #: epoch, skewed by ``--clock-skew``): shown, never used to order the history.
    host_t: float | None = None

    @property
    def name(self) -> str:
        return buyer_name(self.buyer)

    @property
    def kind(self) -> str:
        """The event's place in the buyer's purchase, as Jepsen histories put it:
        ``invoke`` when it starts, ``ok``/``fail`` when it ends, ``info`` when its
        outcome is unknown (the buyer crashed or gave up), ``step`` in between. A
        buyer with an ``invoke`` and no ending died: its outcome is unknown too."""
        return _KINDS.get(self.step, "step")

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"type": self.kind, "buyer": self.buyer, "step": self.step.value}
        row["t"] = self.t
        row["pid"] = self.pid
        for key in ("value", "seat", "note", "error", "host", "host_t"):
            if getattr(self, key) is not None:
                row[key] = getattr(self, key)
        return row


#: Each step's line up to the buyer, and from the buyer to the time (see :func:`_line`).
_HEADS: Final = {step: f'{{"type": "{_KINDS.get(step, "step")}", "buyer": ' for step in Step}
_MIDDLES: Final = {step: f', "step": "{step.value}", "t": ' for step in Step}


def _line(event: Event) -> str:
    """``json.dumps(event.to_json())`` and a newline, the same text, made faster.

    ``json.dumps`` costs more per call than a small event takes to write, and a history
    can hold a million events. An event as buyers record it (plain ints, a finite float
    time, a str note) is written here directly; any other goes through ``json.dumps``.
    """
    step, buyer, t, pid = event.step, event.buyer, event.t, event.pid
    value, seat, note, error = event.value, event.seat, event.note, event.error
    head = _HEADS[step] if type(step) is Step else None
    if (
        head is None
        or event.host is not None
        or event.host_t is not None
        or type(buyer) is not int
        or type(t) is not float
        or t - t != 0.0  # inf or nan: json writes Infinity and NaN, not repr()
        or type(pid) is not int
        or (value is not None and type(value) is not int)
        or (seat is not None and type(seat) is not int)
        or (note is not None and type(note) is not str)
        or (error is not None and type(error) is not str)
    ):
        return json.dumps(event.to_json()) + "\n"
    text = f'{head}{buyer}{_MIDDLES[step]}{t!r}, "pid": {pid}'
    if value is not None:
        text += f', "value": {value}'
    if seat is not None:
        text += f', "seat": {seat}'
    if note is not None:
        text += f', "note": {json.dumps(note)}'
    if error is not None:
        text += f', "error": {json.dumps(error)}'
    return text + "}\n"


def to_jsonl(history: Sequence[Event]) -> str:
    """The history as JSON Lines, one event per line, in the order given."""
    return "".join([_line(event) for event in history])


#: The steps by name: a dict lookup, where calling ``Step`` costs an enum lookup each time.
_STEPS: Final = {step.value: step for step in Step}


def _opt_int(row: dict[str, Any], key: str) -> int | None:
    value = row.get(key)
    if value is not None and type(value) is not int:
        raise ValueError(f"{key}={value!r} must be a whole number")
    return value


#: Every key an event's JSON may have (:meth:`Event.to_json`; the schema allows no other).
_EVENT_ORDER: Final = (
    "type", "buyer", "step", "t", "pid", "value", "seat", "note", "error", "host", "host_t"
)  # fmt: skip
_EVENT_KEYS: Final = frozenset(_EVENT_ORDER)


def from_json(row: object) -> Event:
    """Rebuild an event from :meth:`Event.to_json`; raise ``ValueError`` naming the bad field."""
    if not isinstance(row, dict):
        raise ValueError(f"an event must be a JSON object, got {type(row).__name__}")
    name = row.get("step")
    step = _STEPS.get(name) if type(name) is str else None
    if step is None:
        try:
            step = Step(name)
        except ValueError:
            raise ValueError(f"step={name!r} is not one of the steps") from None
    kind = _KINDS.get(step, "step")
    if "type" in row and row["type"] != kind:
        raise ValueError(f"type={row['type']!r} does not go with step={step.value!r}: use {kind!r}")
    buyer, t, pid, note = row.get("buyer"), row.get("t"), row.get("pid"), row.get("note")
    if type(buyer) is not int or buyer < 1:
        raise ValueError(f"buyer={buyer!r} must be a buyer number from 1")
    when = seconds(t)
    if when is None:
        raise ValueError(f"t={t!r} must be a number of seconds")
    if type(pid) is not int:
        raise ValueError(f"pid={pid!r} must be a whole number")
    if note is not None and not isinstance(note, str):
        raise ValueError(f"note={note!r} must be a string")
    error = row.get("error")
    if error is not None and not (isinstance(error, str) and 0 < len(error) <= MAX_ERROR_CHARS):
        raise ValueError(f"error={error!r} must be a word of 1 to {MAX_ERROR_CHARS} characters")
    host, host_t = row.get("host"), row.get("host_t")
    if host is not None and not (isinstance(host, str) and host):
        raise ValueError(f"host={host!r} must be a host's name")
    if host_t is not None and seconds(host_t) is None:
        raise ValueError(f"host_t={host_t!r} must be a number of seconds")
    if not _EVENT_KEYS.issuperset(row):
        # A misspelt "seat" would otherwise be dropped, and the checker not see the seat.
        extra = ", ".join(sorted(repr(key) for key in row if key not in _EVENT_KEYS)[:3])
        raise ValueError(f"{extra} is not a field of an event; use {', '.join(_EVENT_ORDER)}")
    return Event(
        buyer=buyer,
        step=step,
        t=when,
        pid=pid,
        value=_opt_int(row, "value"),
        seat=_opt_int(row, "seat"),
        note=note,
        error=error,
        host=host,
        host_t=None if host_t is None else seconds(host_t),
    )


class Recorder(Protocol):
    """Records one step of one buyer: what stores, guards and the office are handed."""

    def __call__(
        self,
        step: Step,
        *,
        value: int | None = None,
        seat: int | None = None,
        note: str | None = None,
        error: str | None = None,
    ) -> None: ...
