"""What one sale produced: the raw material every report, check and picture is derived from."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ticketsim.core import catalog
from ticketsim.core.frozen import field, frozen

if TYPE_CHECKING:
    from ticketsim.core import db as dbfile
    from ticketsim.core.boards import ClockCheck, HostRow
    from ticketsim.core.events import Event
    from ticketsim.core.settings import RunConfig


@frozen
class Hosts:
    """The hosts of a sale of several hosts, and how its history was put in order."""

    #: How the hosts were made, in words ("network namespaces, ...").
    kind: str
    count: int
    #: Why they are not network namespaces, when those were not to be had.
    why: str | None = None
    #: The sale's id in its store.
    sale: str = ""
    rows: tuple[HostRow, ...] = ()
    #: The clock that orders the history, in words.
    clock: str = ""
    #: What the hosts' own clocks would have done to the order.
    clocks: ClockCheck | None = None
    #: The host cut off (``--partition``), from when to when, on the history's clock.
    cut: tuple[str, float, float] | None = None

    def lines(self) -> tuple[str, ...]:
        """The hosts, in words, for the report."""
        made = f"{self.count} host(s), {self.kind}" + (f" ({self.why})" if self.why else "")
        spread = ", ".join(
            f"{row.name} buyers {row.first}-{row.first + row.count - 1}" for row in self.rows
        )
        said = [made + (f": {spread}" if spread else "")]
        if self.clock:
            order = f"History ordered by the store's clock: {self.clock}"
            if self.clocks is not None and self.clocks.misplaced:
                order += (
                    f"; ordered by the hosts' own clocks, {self.clocks.misplaced} of "
                    f"{self.clocks.timed} events would have moved"
                )
            said.append(order)
        return tuple(said)

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "kind": self.kind,
            "why": self.why,
            "sale": self.sale,
            "hosts": [
                {"name": r.name, "first": r.first, "count": r.count, "done": r.done}
                for r in self.rows
            ],
            "clock": self.clock,
            "cut": None
            if self.cut is None
            else {"host": self.cut[0], "from": self.cut[1], "until": self.cut[2]},
            "misplaced_by_host_clocks": None if self.clocks is None else self.clocks.misplaced,
            "host_clock_offsets_s": None
            if self.clocks is None
            else {host: round(offset, 6) for host, offset in self.clocks.offsets},
        }


@frozen
class RunResult:
    """What happened in one sale: the raw material every report is derived from."""

    config: RunConfig
    start_method: str
    seed: int
    #: The db as the sale opened.
    initial: dbfile.TicketDB
    #: The db after the sale, or ``None`` if it could not be read back.
    final: dbfile.TicketDB | None
    #: Why ``final`` is ``None``.
    final_error: str | None
    history: tuple[Event, ...]
    #: ``time.monotonic()`` when the sale opened (buyers' event times are on this clock).
    opened_at: float
    #: Wall time from opening the sale to the last buyer's outcome (or the stall).
    elapsed_s: float
    #: ``None``, or why the sale was abandoned before every buyer finished.
    stalled: str | None = None
    #: Exit code of each buyer process (negative: killed by that signal).
    exit_codes: tuple[int | None, ...] = field(default=())
    #: The complete schedule a controlled run followed.
    schedule: str | None = None
    #: What injected faults did (``--kill-holder``, ``--kill``), in words.
    faults: tuple[str, ...] = ()
    #: Wall time from starting the first process to opening the sale (every buyer, or
    #: the first task of every pool worker, ready at the gate); ``None`` when nobody
    #: knows (hosts that joined a sale by hand started their processes themselves).
    startup_s: float | None = 0.0
    #: The hosts the buyers ran on, in a sale of several hosts.
    hosts: Hosts | None = None
    #: The system under test, named by a history another program wrote (``None``: one
    #: of ticketsim's strategies, ``config.strategy``, ran the sale).
    system: str | None = None
    #: Whether that system claims to be safe: then it must also sell every ticket it can.
    system_safe: bool = False
    #: What the user's own invariants found broken after the sale, in their words.
    broken: tuple[str, ...] = ()
    #: Whether ``final``'s remaining count is the store's own (a user's store that
    #: lists only its ledger has none: what it leaves is not checked against it).
    count_known: bool = True
    #: Why nobody can know the state the sale left (``final`` is then ``None``): the
    #: private server it sold on went away with its sales. Not a finding about them.
    final_unknown: str | None = None

    @property
    def safe(self) -> bool:
        if self.system is not None:
            return self.system_safe
        return catalog.info(self.config.strategy).safe
