"""History files: a sale saved as JSON Lines, to be audited later by ``ticketsim check``.

The first line describes the sale (``"type": "sale"``): the settings it ran with and
the db as the sale opened. Every other line is one event (see
:meth:`ticketsim.core.events.Event.to_json`), in time order, typed as Jepsen histories
are: ``invoke`` when a buyer's purchase starts, ``ok`` or ``fail`` when it ends,
``info`` when its outcome is unknown, ``step`` in between.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ticketsim.analysis.checker import check_db
from ticketsim.core import db as dbfile
from ticketsim.core._files import kind, open_regular
from ticketsim.core._values import seconds
from ticketsim.core.events import (
    ENDINGS,
    KILLED_ON_PURPOSE,
    Event,
    Step,
    from_json,
    to_jsonl,
)
from ticketsim.core.paths import GENERATOR, write_output
from ticketsim.core.result import RunResult
from ticketsim.core.settings import RunConfig
from ticketsim.errors import ConfigError, DbError, StoreError
from ticketsim.errors import HistoryError as HistoryError  # noqa: PLC0414 - re-exported

if TYPE_CHECKING:
    from collections.abc import Iterator

FORMAT: Final = "ticketsim-history/2"
#: The format before events carried their ``error``: still read, each event upgraded.
_FORMAT_1: Final = "ticketsim-history/1"
#: How a buyer of the first format noted the exception it met: "ClassName: message".
_NOTED_ERROR: Final = re.compile(r"([A-Za-z_][A-Za-z0-9_]{0,63}): ")
#: A history line is one small object; a longer one is not ours.
MAX_LINE_BYTES: Final = 64 * 1024
#: Ten million events: far beyond any sale ticketsim runs.
MAX_HISTORY_BYTES: Final = 4 * 1024**3
#: Events written to the text of a history at a time (:func:`dumps`).
_PIECE: Final = 4096


def header(result: RunResult) -> dict[str, Any]:
    config = result.config
    return {
        "type": "sale",
        "format": FORMAT,
        "generator": GENERATOR,
        "strategy": config.strategy,
        "buyers": config.buyers,
        "tickets": config.tickets,
        "delay": config.delay,
        "seed": result.seed,
        "timeout": config.timeout,
        "start_method": result.start_method,
        "pool": config.pool,
        "workers": config.worker_kind,
        "schedule": result.schedule,
        "lockstep": config.lockstep,
        "opened_at": result.opened_at,
        "elapsed_s": result.elapsed_s,
        "startup_s": result.startup_s,
        "stalled": result.stalled,
        "final_unknown": result.final_unknown,
        "initial": result.initial.to_json(),
    }


def dumps(result: RunResult) -> str:
    """The history file of ``result``, as text (what :func:`save` writes)."""
    history = result.history
    head = header(result)
    if result.system is not None:  # as its program wrote it: the system, not a strategy
        del head["strategy"]
        head |= {"system": result.system, "safe": result.system_safe}
        head["start_method"] = result.config.start_method  # its program's, if it said
    # In pieces of a few thousand lines: the text is never also held as a million small
    # strings, or as a million dicts, on its way to the file.
    pieces = [json.dumps(head) + "\n"]
    pieces += (to_jsonl(history[i : i + _PIECE]) for i in range(0, len(history), _PIECE))
    if result.system is not None and result.final is not None:
        pieces.append(json.dumps({"type": "final", "db": result.final.to_json()}) + "\n")
    return "".join(pieces)


def save(path: str | os.PathLike[str], result: RunResult) -> None:
    """Write the history of ``result`` atomically (a reader never sees half a file).

    Refuses a path that is not fit to write (:class:`~ticketsim.errors.PathError`),
    and a write the system refuses is a :class:`~ticketsim.errors.SystemRefused`.
    """
    write_output("--history", path, dumps(result))


def _not_a_file(path: str, mode: int) -> HistoryError:
    return HistoryError(path, 0, f"is {kind(mode)}, not a regular file; give a .jsonl file")


def _lines(path: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        # Opened without blocking (a FIFO would wait for a writer forever), then judged
        # by what was opened.
        handle = open_regular(path, lambda mode: _not_a_file(path, mode))
    except FileNotFoundError:
        raise HistoryError(
            path, 0, "no such file; write one with ticketsim run --history"
        ) from None
    except OSError as exc:
        raise HistoryError(path, 0, f"cannot be read ({exc.strerror or exc})") from None
    size = os.fstat(handle.fileno()).st_size
    if size > MAX_HISTORY_BYTES:
        handle.close()
        raise HistoryError(path, 0, f"larger than {MAX_HISTORY_BYTES} bytes; not a history")
    with handle:
        lines = iter(functools.partial(handle.readline, MAX_LINE_BYTES + 3), b"")
        for number, raw in enumerate(lines, 1):
            if len(raw) > MAX_LINE_BYTES and len(raw.rstrip(b"\r\n")) > MAX_LINE_BYTES:
                raise HistoryError(path, number, f"longer than {MAX_LINE_BYTES} bytes")
            if raw.isspace():  # raw is never empty: a blank line, skipped
                continue
            try:
                row = _parse(raw.decode("utf-8"))
            except RecursionError:
                raise HistoryError(path, number, "nested too deeply") from None
            except dbfile.DuplicateKey as exc:
                raise HistoryError(path, number, str(exc)) from None
            except (ValueError, UnicodeDecodeError) as exc:
                raise HistoryError(path, number, f"not a JSON object ({exc})") from None
            if not isinstance(row, dict):
                raise HistoryError(path, number, "must be a JSON object")
            yield number, row


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


#: One decoder for every line: ``json.loads`` with an option builds a new one per call.
_DECODER: Final = json.JSONDecoder(
    parse_constant=_no_constant,
    parse_float=dbfile.finite_float,
    object_pairs_hook=dbfile.unique_keys,
)


def _parse(text: str) -> Any:
    """``json.loads(text, parse_constant=_no_constant)``, errors and all."""
    if text.startswith("\ufeff"):
        # json.loads refuses a byte-order mark with this error; the decoder does not look.
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _DECODER.decode(text)


def _config(path: str, db_path: Path, head: dict[str, Any]) -> RunConfig:
    try:
        return RunConfig(
            buyers=head.get("buyers"),  # type: ignore[arg-type]
            tickets=head.get("tickets"),  # type: ignore[arg-type]
            strategy=head.get("strategy"),  # type: ignore[arg-type]
            db_path=db_path,
            delay=head.get("delay"),  # type: ignore[arg-type]
            seed=head.get("seed"),
            timeout=head.get("timeout"),  # type: ignore[arg-type]
            # Threads and tasks start no process: their sale's start method is not theirs.
            start_method=head.get("start_method")
            if head.get("workers") in (None, "processes")
            else None,
            keep=True,
            pool=head.get("pool"),
            schedule=head.get("schedule"),
            lockstep=head.get("lockstep", False),
            # A history written before --workers was one of buyer processes.
            worker_kind=head.get("workers", "processes"),
        )
    except ConfigError as exc:
        raise HistoryError(path, 1, f"the sale's {exc}") from None
    except TypeError as exc:
        raise HistoryError(path, 1, f"the sale's settings do not fit ({exc})") from None


def _final(
    db_path: str | os.PathLike[str],
    initial: dbfile.TicketDB,
    events: list[Event],
    store: tuple[str, dbfile.TicketDB] | None = None,
) -> tuple[dbfile.TicketDB | None, str | None]:
    """The db after the sale, or why it cannot be read (a finding, not an error); a
    :class:`DbError` if it is not the db of this history's sale at all. ``store``: the
    sale's record is the store named there, whose state is given."""
    if store is not None:
        name, final = store
        foreign = _foreign(initial, final, events)
        if foreign is not None:
            raise StoreError(
                name,
                f"is not the store of this history's sale: {foreign}",
                "give the store the history was written against",
            )
        return final, None
    try:
        final = dbfile.load(db_path)
    except DbError as exc:
        return None, exc.reason
    foreign = _foreign(initial, final, events)
    if foreign is not None:
        raise DbError(
            os.fspath(db_path),
            f"is not the db of this history's sale: {foreign}",
            "give the db the history was written against",
        )
    return final, None


def _foreign(initial: dbfile.TicketDB, final: dbfile.TicketDB, events: list[Event]) -> str | None:
    """Why ``final`` cannot be the db the history's sale ran on, or ``None``.

    A history records no id of its db, so what it does record is compared: the event,
    the tickets put on sale, and the ledger the sale opened with, which a sale only
    ever adds to. Sales the db has beyond the history's are allowed: another program
    may have sold from the same db at the same time; but at least one of the sales the
    history's buyers wrote must be there, naming a buyer and pid its events name (the
    last written stays, whoever read before it).
    """
    if final.event != initial.event:
        return f"its event is {final.event!r}, the sale's was {initial.event!r}"
    if final.tickets != initial.tickets:
        return f"it has tickets={final.tickets}, the sale had tickets={initial.tickets}"
    had = Counter((s.buyer, s.seat, s.pid) for s in initial.ledger)
    now = Counter((s.buyer, s.seat, s.pid) for s in final.ledger)
    gone = had - now
    if gone:
        buyer, seat, _ = next(iter(gone))
        return (
            f"its ledger lacks the sale of seat {seat} to {buyer}, which the db held when "
            "the sale opened (it was reset since, or is another db)"
        )
    writes = sum(1 for e in events if e.step is Step.WRITE)
    if writes and now == had and final.remaining == initial.remaining:
        return (
            f"the history's buyers wrote {writes} sale(s), and the db has none since the "
            "sale opened (it was reset since, or is another db)"
        )
    # Of a sale's writes the last one stays, whoever read before it: a ledger that holds
    # none of them, only sales of processes the history never saw, is no verdict's. (A
    # sale names its buyer's process, which the ticket office writes for.)
    added = now - had
    ours = {(e.name, e.pid) for e in events}
    if writes and added and not any((buyer, pid) in ours for buyer, _, pid in added):
        return (
            f"none of the {writes} sale(s) the history's buyers wrote is in its ledger, "
            f"whose {added.total()} new sale(s) are all by processes the history never saw "
            "(it was reset and sold from since, is another db, or another program wrote "
            "over every one of them)"
        )
    return None


def _upgraded(event: Event) -> Event:
    """An event of the first format with the ``error`` its note implies. That format
    said the cause only in words, which this reads once, here, so that nothing else
    has to: a buyer wrote "ClassName: message", and the parent's note of a planned
    kill began "killed on purpose"."""
    if event.error is not None or event.note is None:
        return event
    if event.step is Step.LOST and event.note.startswith("killed on purpose"):
        return dataclasses.replace(event, error=KILLED_ON_PURPOSE)
    noted = _NOTED_ERROR.match(event.note)
    if event.step is Step.ERROR and noted:
        return dataclasses.replace(event, error=noted.group(1))
    return event


#: What a history another program wrote may leave out of its first line.
_SYSTEM_DEFAULTS: Final = {"delay": 0.0, "timeout": 30.0, "lockstep": False}
#: The longest name of a system under test.
MAX_SYSTEM_CHARS: Final = 100


def names_a_system(history_path: str | os.PathLike[str]) -> bool:
    """Whether the history's first line names a system under test (``"system"``): one
    another program wrote, which ticketsim checks without a db file of its own. A
    history whose first line describes no sale is refused (:class:`HistoryError`)
    here, before any db is looked for: that is what is wrong with the command."""
    path = os.fspath(history_path)
    _, _, system, _ = _first_line(path, _lines(path))
    return system is not None


def _system(path: str, number: int, head: dict[str, Any]) -> tuple[str, bool, dict[str, Any]]:
    """The system a history names, whether it claims to be safe, and the first line as
    ticketsim's own histories have it (its defaults filled in)."""
    system, safe = head["system"], head.get("safe", False)
    if not isinstance(system, str) or not 0 < len(system) <= MAX_SYSTEM_CHARS:
        raise HistoryError(
            path, number, f"system={system!r} must be a name of 1 to {MAX_SYSTEM_CHARS} characters"
        )
    if not isinstance(safe, bool):
        raise HistoryError(path, number, f"safe={safe!r} must be true or false")
    if "strategy" in head:
        raise HistoryError(
            path, number, "give the system under test or a ticketsim strategy, not both"
        )
    return system, safe, {**_SYSTEM_DEFAULTS, **head, "strategy": "none"}


def load(
    history_path: str | os.PathLike[str],
    db_path: str | os.PathLike[str] | None = None,
    *,
    store: tuple[str, dbfile.TicketDB] | None = None,
) -> RunResult:
    """Rebuild a run from its history file and the db as it is now, for re-checking;
    or, with ``store`` (its name and the state it holds now), from that store.

    A history another program wrote names its ``system`` in its first line instead of
    a strategy; its final state, if it gives one, is a ``{"type": "final", "db": ...}``
    line (``db_path`` is then not read), and without one only the history is checked.
    See ``docs/history.md``.
    """
    path = os.fspath(history_path)
    rows = _lines(path)
    number, head, system, system_safe = _first_line(path, rows)
    if system is None and db_path is None and store is None:
        raise HistoryError(path, number, "a history of ticketsim's own needs the db it ran on")
    # A system's history is its own record: the report names it where a db would be.
    config = _config(path, Path(db_path if system is None and db_path else path), head)
    try:
        initial = dbfile.parse(json.dumps(head.get("initial")), source=f"{path}: initial db")
    except DbError as exc:
        raise HistoryError(path, number, f"the initial db: {exc.reason}") from None
    wrong = check_db(initial)
    if wrong:  # what was on sale is what its count says: it must be the count's
        raise HistoryError(path, number, f"the initial db: {wrong[0].explanation}")
    if system is not None and initial.tickets != config.tickets:
        raise HistoryError(
            path, number, f"the initial db has tickets={initial.tickets}, the sale "
            f"tickets={config.tickets}: give one number",
        )  # fmt: skip
    opened_at, elapsed = seconds(head.get("opened_at")), seconds(head.get("elapsed_s"))
    # Older histories lack it; a sale of hosts joined by hand does not know it (null).
    unknown = head.get("startup_s", 0.0) is None and system is None
    startup = 0.0 if unknown else seconds(head.get("startup_s", 0.0))
    given = system is None or "opened_at" in head or "elapsed_s" in head
    if given and (opened_at is None or elapsed is None or startup is None):
        raise HistoryError(
            path, number, "opened_at, elapsed_s and startup_s must be numbers of seconds"
        )
    if (elapsed or 0.0) < 0 or (startup or 0.0) < 0:
        raise HistoryError(
            path, number, f"elapsed_s={elapsed} and startup_s={startup} are spans of time: "
            "neither can be negative",
        )  # fmt: skip
    stalled = _text_or_null(path, number, head, "stalled")
    # The sale's server went away with what it held: the db file is not its end.
    final_unknown = None if system else _text_or_null(path, number, head, "final_unknown")
    events, told, told_at = _events(path, rows, config.buyers, head["format"], system is not None)
    if system is not None:  # its own final state, or none: then the history alone
        if told is not None and not initial.event:  # it named no event: its final does
            initial = dataclasses.replace(initial, event=told.event)
        foreign = None if told is None else _foreign(initial, told, events)
        if foreign is not None:
            raise HistoryError(path, told_at, f"the final db is not this sale's: {foreign}")
        final, final_error = told, None
        if opened_at is None or elapsed is None:
            opened_at = events[0].t if events else 0.0
            elapsed = (events[-1].t - opened_at) if events else 0.0
    elif final_unknown is not None:
        final, final_error = None, None
    else:
        final, final_error = _final(db_path or "", initial, events, store)
    return RunResult(
        config=config,
        start_method=config.start_method or "unknown",
        seed=config.seed if config.seed is not None else 0,
        initial=initial,
        final=final,
        final_error=final_error,
        history=tuple(events),
        opened_at=opened_at or 0.0,
        elapsed_s=elapsed or 0.0,
        stalled=stalled,
        startup_s=None if unknown else startup or 0.0,
        schedule=config.schedule and str(config.steps()),
        system=system,
        system_safe=system_safe,
        final_unknown=final_unknown,
    )


def _text_or_null(path: str, number: int, head: dict[str, Any], key: str) -> str | None:
    value = head.get(key)
    if value is not None and not isinstance(value, str):
        raise HistoryError(path, number, f"{key} must be null or a string")
    return value


def _first_line(
    path: str, rows: Iterator[tuple[int, dict[str, Any]]]
) -> tuple[int, dict[str, Any], str | None, bool]:
    """The line that describes the sale (a system's, with its defaults filled in), the
    system it names if any, and whether that system claims to be safe."""
    first = next(rows, None)
    if first is None:
        raise HistoryError(path, 0, "is empty; write one with ticketsim run --history")
    number, head = first
    if head.get("type") != "sale" or head.get("format") not in (FORMAT, _FORMAT_1):
        raise HistoryError(path, number, f"the first line must describe the sale ({FORMAT})")
    if head.get("system") is None:
        return number, head, None, False
    system, safe, head = _system(path, number, head)
    if "initial" not in head and type(head.get("tickets")) is int:
        # Fresh tickets of no event's: a system's final state names its own.
        head["initial"] = dbfile.TicketDB.fresh(head["tickets"], event="").to_json()
    return number, head, system, safe


def _events(
    path: str,
    rows: Iterator[tuple[int, dict[str, Any]]],
    buyers: int,
    form: str,
    of_a_system: bool,
) -> tuple[list[Event], dbfile.TicketDB | None, int]:
    """The events in time order, and a system's final state if its history gives one,
    with the number of the line that gives it."""
    events: list[Event] = []
    lines: list[int] = []
    told: dbfile.TicketDB | None = None
    told_at = 0
    for number, row in rows:
        if of_a_system and row.get("type") == "final":
            told, told_at = _told(path, number, row, told), number
            continue
        try:
            event = from_json(row)
        except ValueError as exc:
            raise HistoryError(path, number, str(exc)) from None
        if event.buyer > buyers:
            raise HistoryError(path, number, f"buyer={event.buyer} but the sale had {buyers}")
        events.append(_upgraded(event) if form == _FORMAT_1 else event)
        lines.append(number)
    order = sorted(range(len(events)), key=lambda i: events[i].t)
    _one_purchase_each(path, [(events[i], lines[i]) for i in order])
    return [events[i] for i in order], told, told_at


def _one_purchase_each(path: str, timed: list[tuple[Event, int]]) -> None:
    """Each buyer's events, in time order, are one purchase: invoked (``ready``)
    before it is told an outcome, ended once, and nothing after its end. A history
    that says otherwise (an outcome given twice, a line repeated) cannot be checked:
    which of its words would the verdict believe?"""
    invoked: set[int] = set()
    ended: dict[int, tuple[float, int]] = {}
    for event, number in timed:
        who = f"buyer {event.buyer}"
        if event.buyer in ended:
            at, first = ended[event.buyer]
            if event.step in ENDINGS:
                raise HistoryError(
                    path, number, f"{who} ends a second time ({event.step.value}); its end "
                    f"was on line {first}: give each buyer one",
                )  # fmt: skip
            if event.t > at:
                raise HistoryError(
                    path, number, f"{who}'s {event.step.value} comes after its end on line "
                    f"{first}: a buyer does nothing once it has ended",
                )  # fmt: skip
        if event.step is Step.READY:
            invoked.add(event.buyer)
        elif event.step in (Step.OK, Step.FAIL) and event.buyer not in invoked:
            raise HistoryError(
                path, number, f"{who} is told {event.step.value} but was never invoked: "
                "give its ready (type invoke) first",
            )  # fmt: skip
        if event.step in ENDINGS:
            ended[event.buyer] = (event.t, number)


def _told(
    path: str, number: int, row: dict[str, Any], before: dbfile.TicketDB | None
) -> dbfile.TicketDB:
    """The final state a history of another program gives: a ``final`` line's ``db``."""
    if before is not None:
        raise HistoryError(path, number, "a second final line; give the final state once")
    extra = sorted(repr(key) for key in row if key not in ("type", "db"))
    if extra:
        raise HistoryError(
            path, number, f"{', '.join(extra)} is not a field of the final line; use type, db"
        )
    try:
        return dbfile.parse(json.dumps(row.get("db")), source=f"{path}: line {number}")
    except DbError as exc:
        raise HistoryError(path, number, f"the final db: {exc.reason}") from None
