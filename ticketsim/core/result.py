"""What one sale produced: the raw material every report, check and picture is derived from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ticketsim.core import catalog

if TYPE_CHECKING:
    from ticketsim.core import db as dbfile
    from ticketsim.core.events import Event
    from ticketsim.core.settings import RunConfig


@dataclass(frozen=True)
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
    #: the first task of every pool worker, ready at the gate).
    startup_s: float = 0.0

    @property
    def safe(self) -> bool:
        return catalog.info(self.config.strategy).safe
