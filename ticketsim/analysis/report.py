"""The report of a sale: every figure a person or a script reads, derived from a run.

:func:`build_report` is the only place figures are computed; the rich view and
``--json`` both print a :class:`Report` and compute nothing themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ticketsim.analysis.checker import Kind, Violation, check, names
from ticketsim.core import catalog
from ticketsim.core.events import (
    CUT_OFF_ON_PURPOSE,
    ENDINGS,
    KILLED_ON_PURPOSE,
    Step,
    buyer_name,
    planned,
)
from ticketsim.core.exits import ExitCode
from ticketsim.core.frozen import frozen
from ticketsim.core.schedule import from_history
from ticketsim.errors import DbWriteError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ticketsim.core.events import Event
    from ticketsim.core.result import Hosts, RunResult


@frozen
class NoOutcome:
    """Buyers that ended without an outcome for one reason, which says what to do."""

    why: str
    buyers: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"why": self.why, "buyers": list(self.buyers)}


@frozen
class Report:
    strategy: str
    safe: bool
    buyers: int
    #: Tickets on sale when the sale opened.
    tickets: int
    #: Buyers told "you got a ticket".
    sold: int
    #: Buyers told "sold out".
    refused: int
    #: Buyers that looked (``check``), saw a ticket left, and were then refused.
    saw_but_refused: int
    #: Buyers with no outcome (crashed, timed out, or never got to buy).
    unfinished: int
    #: ``remaining`` in the db afterwards (``None``: unreadable).
    remaining: int | None
    #: Sales this run added to the ledger.
    ledger_sales: int | None
    oversold: int
    #: Seats sold to more than one buyer.
    double_booked: int
    #: Buyers told success with no ledger entry (``None``: the db is unreadable, unknown).
    lost_sales: int | None
    #: Reads that found the db empty or half written.
    torn_reads: int
    elapsed_s: float
    delay: float
    seed: int
    start_method: str
    db: str
    stalled: str | None
    violations: tuple[Violation, ...]
    #: Pool workers the buyers ran on (``None``: one process per buyer).
    pool: int | None = None
    #: Which processes ran the buyers, in words.
    crew: str = "one process per buyer"
    #: What ran each buyer: ``processes``, ``threads`` or ``asyncio`` (``--workers``).
    workers: str = "processes"
    #: What this strategy shows on these workers, in words (the GIL, the await, the
    #: module's variable), when it shows something beyond its row.
    lesson: str | None = None
    #: Wall time from starting the first process to opening the sale.
    startup_s: float | None = 0.0
    #: What a crash mid-sale would cost under this strategy, if anything.
    caveat: str | None = None
    #: What injected faults did, in words (``--kill-holder``, ``--kill``).
    faults: tuple[str, ...] = ()
    #: The first failure to write the db, if any buyer met one.
    io_error: str | None = None
    #: The order in which buyers read and learned their outcome (``1r 2r 1w 2w``), as
    #: ``ticketsim replay --schedule`` takes it.
    schedule: str = ""
    #: Buyers SIGKILLed on purpose (``--kill``, ``--kill-holder``): planned faults.
    killed_on_purpose: tuple[str, ...] = ()
    #: Buyers that ended with no outcome, nobody having planned it, grouped by why.
    died: tuple[NoOutcome, ...] = ()
    #: Transactions a database refused and its buyer tried again (``retry`` steps).
    retries: int = 0
    #: Buyers refused by the database that did not try again: told "no" with tickets
    #: possibly left (their ``fail`` carries the refusal as its ``error``).
    gave_up: int = 0
    #: The hosts of a sale of several hosts, and the clock that ordered its history.
    hosts: Hosts | None = None
    #: Buyers whose host was cut off on purpose (``--partition``) and whose outcome is
    #: unknown: planned faults, as kills are.
    cut_off: tuple[str, ...] = ()
    #: The system under test a history of another program names (``strategy`` is then
    #: ``none``, a stand-in).
    system: str | None = None
    #: Buyers that got as far as their write (committed or not) and were never told its
    #: outcome (a stall caught them after it): they did get to buy.
    wrote_unanswered: tuple[str, ...] = ()
    #: Why the state the sale left is unknown (its server went away), if it is.
    final_unknown: str | None = None

    @property
    def survivors(self) -> int:
        """Buyers not killed or cut off on purpose: the ones the sale's invariants are about."""
        return self.buyers - len(self.killed_on_purpose) - len(self.cut_off)

    @property
    def complete(self) -> bool:
        """Whether the sale ran to its end: nothing stalled, no buyer died unplanned, and
        some buyer was left alive to buy. Liveness is only judged on a complete sale."""
        return (
            self.stalled is None
            and not self.died
            and self.survivors > 0
            and self.final_unknown is None
        )

    @property
    def certain(self) -> tuple[Violation, ...]:
        """The violations that stand however the sale ended: every kind but
        ``undersold``, which a sale that did not finish, or whose db write failed,
        cannot be judged on."""
        if self.complete and self.io_error is None:
            return self.violations
        return tuple(v for v in self.violations if v.kind is not Kind.UNDERSOLD)

    @property
    def ok(self) -> bool:
        return not self.violations and self.complete and self.io_error is None

    @property
    def exit_code(self) -> ExitCode:
        if self.certain:
            return ExitCode.VIOLATED
        if self.io_error is not None:
            return ExitCode.IO_ERROR
        if not self.complete:
            return ExitCode.STALLED
        return ExitCode.VIOLATED if self.violations else ExitCode.OK

    @property
    def throughput(self) -> float:
        """Sales per second from the opening of the sale to the last outcome."""
        return self.sold / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def verdict(self) -> str:
        """One line: what happened, in figures (the explanations say how). It claims only
        what was checked: a sale that did not finish is never "OK"."""
        if self.certain:
            return f"{self._headline()}: {'; '.join(self._found())}" + "".join(
                f"; {clause}" for clause in self._unfinished()
            )
        if self.io_error is not None:
            return f"DB WRITE FAILED: {self.io_error}; the db keeps its last good state"
        return self._judged() if self.complete else self._incomplete()

    def _incomplete(self) -> str:
        """The verdict of a sale that did not run to its end, or whose end is unknown:
        what is known, no more."""
        if self.final_unknown is None:
            return self._unfinished_sale()
        unchecked = f"{self.final_unknown}, so what the db holds was not checked"
        if self.stalled is None and not self.died and self.survivors > 0:
            return (
                f"INCOMPLETE: {self.sold} of {self.buyers} buyer(s) were told they got one of "
                f"{self.tickets} ticket(s){self._planned()}; {unchecked}"
            )
        return f"{self._unfinished_sale()}; {unchecked}"

    def _unfinished_sale(self) -> str:
        """The verdict of a sale that stalled, or whose buyers died or were all killed."""
        planned = self._planned()
        if self.stalled is not None:
            stopped = {*self.killed_on_purpose, *self.cut_off}
            wrote = [name for name in self.wrote_unanswered if name not in stopped]
            never = self.unfinished - len(stopped) - len(wrote)
            verdict = f"STALLED: {self.stalled}{planned}; {never} buyer(s) never got to buy"
            if wrote:
                verdict += f", {len(wrote)} got as far as their write and were never told more"
            return verdict
        if self.survivors == 0:
            if not self.cut_off:
                return (
                    f"INCOMPLETE: all {self.buyers} buyer(s) were killed on purpose "
                    f"({names(self.killed_on_purpose)}); no buyer was left to buy, so nothing "
                    "about the sale was checked"
                )
            return (
                f"INCOMPLETE: all {self.buyers} buyer(s) were stopped on purpose{planned}; no "
                "buyer was left to buy, so nothing about the sale was checked"
            )
        dead = sum(len(d.buyers) for d in self.died)
        finished = self.survivors - dead
        achieved = (
            f"the other {finished} bought {self.sold} of {self.tickets} ticket(s) and no "
            "certain violation was found"
            if finished > 0
            else "no buyer finished, so nothing about the sale was checked"
        )
        return (
            f"INCOMPLETE: {dead} of {self.buyers} buyer(s) ended without an outcome, nobody "
            f"having killed them{planned}; {achieved}"
        )

    def _judged(self) -> str:
        """The verdict of a sale that ran to its end with no certain violation."""
        if self.violations:
            return f"VIOLATED: {'; '.join(self._found())}"
        if self.killed_on_purpose or self.cut_off:
            return (
                f"OK: the {self.survivors} surviving buyer(s) of {self.buyers} bought "
                f"{self.sold} of {self.tickets} ticket(s); every invariant held{self._planned()}"
            )
        return (
            f"OK: sold {self.sold} of {self.tickets} ticket(s) to {self.buyers} buyer(s); "
            "every invariant held"
        )

    def _headline(self) -> str:
        """The word for the worst that happened: more sold than existed, a sale written
        over, a seat told to two buyers, or another broken invariant."""
        if self.oversold:
            return "OVERSOLD"
        if self.lost_sales:
            return "LOST UPDATE"
        if self.double_booked:
            return "DOUBLE-BOOKED"
        return "VIOLATED"

    def _found(self) -> list[str]:
        found: list[str] = []
        if self.oversold:
            found.append(f"{self.sold} sold for {self.tickets} ticket(s), {self.oversold} too many")
        if self.double_booked:
            found.append(f"{self.double_booked} seat(s) sold twice or more")
        if self.lost_sales:
            found.append(f"{self.lost_sales} sale(s) missing from the ledger")
        found.extend(dict.fromkeys(_IN_WORDS[v.kind] for v in self.certain if v.kind in _IN_WORDS))
        return found

    def _planned(self) -> str:
        said = []
        if self.killed_on_purpose:
            said.append(
                f"{len(self.killed_on_purpose)} buyer(s) killed on purpose "
                f"({names(self.killed_on_purpose)})"
            )
        if self.cut_off:
            said.append(
                f"{len(self.cut_off)} buyer(s) cut off on purpose, outcome unknown "
                f"({names(self.cut_off)})"
            )
        return f"; planned faults: {' and '.join(said)}" if said else ""

    def _unfinished(self) -> list[str]:
        """What a violating verdict adds about a sale that did not run to its end."""
        planned = self._planned()
        clauses = [planned.removeprefix("; ")] if planned else []
        if self.stalled is not None:
            clauses.append(f"and the sale stalled ({self.stalled})")
        elif self.died:
            clauses.append(
                f"and {sum(len(d.buyers) for d in self.died)} buyer(s) ended without an outcome"
            )
        if self.final_unknown is not None:
            clauses.append(f"and {self.final_unknown}")
        return clauses

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "safe": self.safe,
            "buyers": self.buyers,
            "tickets": self.tickets,
            "sold": self.sold,
            "refused": self.refused,
            "saw_but_refused": self.saw_but_refused,
            "unfinished": self.unfinished,
            "remaining": self.remaining,
            "ledger_sales": self.ledger_sales,
            "oversold": self.oversold,
            "double_booked": self.double_booked,
            "lost_sales": self.lost_sales,
            "torn_reads": self.torn_reads,
            "retries": self.retries,
            "gave_up": self.gave_up,
            "ok": self.ok,
            "complete": self.complete,
            "survivors": self.survivors,
            "killed_on_purpose": list(self.killed_on_purpose),
            "cut_off": list(self.cut_off),
            "died": [d.to_json() for d in self.died],
            "verdict": self.verdict,
            "exit_code": int(self.exit_code),
            "stalled": self.stalled,
            "final_unknown": self.final_unknown,
            "violations": [v.to_json() for v in self.violations],
            "elapsed_s": round(self.elapsed_s, 6),
            "startup_s": None if self.startup_s is None else round(self.startup_s, 6),
            "throughput": round(self.throughput, 3),
            "delay": self.delay,
            "seed": self.seed,
            # Threads and tasks run in ticketsim's own process: no process was started.
            "start_method": self.start_method if self.workers == "processes" else None,
            "db": self.db,
            "pool": self.pool,
            "crew": self.crew,
            "workers": self.workers,
            "lesson": self.lesson,
            "caveat": self.caveat,
            "schedule": self.schedule,
            "faults": list(self.faults),
            "io_error": self.io_error,
            "hosts": None if self.hosts is None else self.hosts.to_json(),
            "system": self.system,
        }


#: How a buyer's error event starts when its write failed (the buyer records errors
#: as ``"<exception type>: <message>"``).
#: The verdict's words for the violations it does not count in figures.
_IN_WORDS: Final = {
    Kind.COUNT_MISMATCH: "the count disagrees with the ledger",
    Kind.NEGATIVE_REMAINING: "the count went below zero",
    Kind.SEAT_CONFLICT: "a seat was sold twice, or a sale named no seat on sale",
    Kind.UNDERSOLD: "sold fewer tickets than it could",
    Kind.UNREADABLE_DB: "the db was left unreadable, so its sales are unknown",
    Kind.YOUR_INVARIANT: "your own invariant broke",
}
_WRITE_FAILED: Final = DbWriteError.__name__


def _caveat(strategy: str, store: str | None) -> str | None:
    caveat = catalog.info(strategy).caveat
    return None if store is not None and caveat == catalog.IN_STORE else caveat


def build_report(result: RunResult) -> Report:
    """Derive every figure of the report from the run's history and dbs."""
    config, history = result.config, result.history
    violations = check(
        result.initial,
        result.final,
        history,
        buyers=config.buyers,
        safe=result.safe,
        final_error=result.final_error,
        # Another program's history may leave its final state out: the history alone.
        final_known=not (result.system is not None and result.final is None)
        and result.final_unknown is None,
        count_known=result.count_known,
    )
    violations += [Violation(Kind.YOUR_INVARIANT, said) for said in result.broken]
    outcome: dict[int, Step] = {
        e.buyer: e.step for e in history if e.step in (Step.OK, Step.FAIL, Step.ERROR)
    }
    saw: set[int] = {
        e.buyer for e in history if e.step is Step.CHECK and e.value is not None and e.value > 0
    }
    sold = sum(1 for step in outcome.values() if step is Step.OK)
    on_sale = max(result.initial.remaining, 0)
    final = result.final
    return Report(
        strategy=config.strategy,
        safe=result.safe,
        buyers=config.buyers,
        tickets=on_sale,
        sold=sold,
        refused=sum(1 for step in outcome.values() if step is Step.FAIL),
        saw_but_refused=sum(1 for b, step in outcome.items() if step is Step.FAIL and b in saw),
        unfinished=config.buyers - sum(1 for s in outcome.values() if s is not Step.ERROR),
        remaining=None if final is None else final.remaining,
        ledger_sales=None if final is None else len(final.ledger) - len(result.initial.ledger),
        oversold=max(0, sold - on_sale),
        double_booked=sum(1 for v in violations if v.kind is Kind.DOUBLE_BOOKED),
        lost_sales=None
        if final is None
        else sum(len(v.buyers) for v in violations if v.kind is Kind.LOST_SALE),
        torn_reads=sum(1 for e in history if e.step is Step.TORN),
        elapsed_s=result.elapsed_s,
        delay=config.delay,
        seed=result.seed,
        start_method=result.start_method,
        db=config.db,
        stalled=result.stalled,
        violations=tuple(violations),
        pool=config.workers,
        crew=config.crew,
        workers=config.worker_kind,
        lesson=None if result.system else catalog.info(config.strategy).lesson(config.kind),
        startup_s=result.startup_s,
        caveat=None if result.system else _caveat(config.strategy, config.store),
        schedule=str(from_history(history)),
        faults=result.faults,
        io_error=_io_error(history, config.db),
        killed_on_purpose=tuple(
            e.name for e in history if e.error == KILLED_ON_PURPOSE and planned(e)
        ),
        died=_no_outcome(history, outcome, config.buyers),
        retries=sum(1 for e in history if e.step is Step.RETRY),
        gave_up=sum(1 for e in history if e.step is Step.FAIL and e.error is not None),
        hosts=result.hosts,
        system=result.system,
        cut_off=tuple(
            dict.fromkeys(e.name for e in history if e.error == CUT_OFF_ON_PURPOSE and planned(e))
        ),
        wrote_unanswered=tuple(
            dict.fromkeys(
                e.name
                for e in history
                if e.step is Step.WRITE and outcome.get(e.buyer) not in (Step.OK, Step.FAIL)
            )
        ),
        final_unknown=result.final_unknown,
    )


def _io_error(history: Sequence[Event], db: str) -> str | None:
    """The first failed db write a buyer met, if any."""
    return next(
        (
            # The note says the error's class and the db, and so does the report already.
            (e.note or "").removeprefix(f"{e.error}: ").removeprefix(f"{db}: ")
            for e in history
            if e.step is Step.ERROR and e.error == _WRITE_FAILED
        ),
        None,
    )


def _no_outcome(
    history: Sequence[Event], outcome: dict[int, Step], buyers: int
) -> tuple[NoOutcome, ...]:
    """Buyers with no outcome that nobody planned, grouped by the note that says why.

    A buyer whose db write failed is left out: the report's ``io_error`` says that.
    """
    why: dict[str, list[int]] = {}
    ended: set[int] = set()
    for e in history:
        unknown = e.step is Step.LOST or (e.step is Step.ERROR and outcome.get(e.buyer) is e.step)
        if e.step in ENDINGS:
            ended.add(e.buyer)
        note = e.note or "no reason recorded"
        if unknown and not planned(e) and e.error != _WRITE_FAILED:
            why.setdefault(note, []).append(e.buyer)
    silent = [b for b in range(1, buyers + 1) if b not in ended]
    if silent:  # a history written by hand, or cut short: a buyer with no ending died
        why.setdefault("its history has no ending: it never finished", []).extend(silent)
    return tuple(
        NoOutcome(note, tuple(buyer_name(b) for b in sorted(set(buyers))))
        for note, buyers in why.items()
    )
