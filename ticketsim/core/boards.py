"""A sale kept in the store, for buyers on many hosts: its card, its hosts, its clock.

``ticketsim sale open`` writes a :class:`SaleCard` into the store; each host that joins
(``ticketsim buyers``) is a :class:`HostRow`; ``sale start`` opens the gate; ``sale
check`` reads the history back, in the order of the store's clock (:data:`CLOCKS`).

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any, Final

from ticketsim.core import db as dbfile
from ticketsim.core.frozen import frozen

#: The clock that orders a sale of several hosts, by store (a ``StoreKind`` value).
CLOCKS: Final = {
    "postgres": "PostgreSQL's clock_timestamp(), as each event was inserted",
    "redis": "Redis's clock, in the stream IDs XADD gave each event",
    "file": "this machine's clock, as each event was appended (one machine: one clock)",
}
#: A sale's id: ``s-`` and eight hex digits.
SALE_ID: Final = re.compile(r"s-[0-9a-f]{8}")
#: A host's name as the history shows it: letters, digits, ``.``, ``_`` and ``-``.
HOST_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def new_sale_id() -> str:
    return "s-" + secrets.token_hex(4)


@frozen
class SaleCard:
    """What every host needs to join a sale: how it sells, and the tickets it opened with."""

    id: str
    strategy: str
    #: The tickets as the sale opened (the store holds the same).
    initial: dbfile.TicketDB
    delay: float
    seed: int
    #: Buyers wait this long at most for the gate, and a sale with no progress for this
    #: long is stalled.
    timeout: float

    def to_text(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "strategy": self.strategy,
                "initial": dbfile.dumps(self.initial),
                "delay": self.delay,
                "seed": self.seed,
                "timeout": self.timeout,
            }
        )

    @classmethod
    def from_text(cls, text: str | bytes) -> SaleCard:
        raw: dict[str, Any] = json.loads(text)
        return cls(
            id=str(raw["id"]),
            strategy=str(raw["strategy"]),
            initial=dbfile.parse(str(raw["initial"]), source="the sale's card"),
            delay=float(raw["delay"]),
            seed=int(raw["seed"]),
            timeout=float(raw["timeout"]),
        )


@frozen
class HostRow:
    """One host that joined a sale: its buyers are numbers ``first`` to ``first + count - 1``."""

    name: str
    first: int
    count: int
    #: How many of its buyers were at the gate when it last said.
    ready: int = 0
    #: Whether it has reported every one of its buyers' outcomes.
    done: bool = False

    @property
    def buyers(self) -> range:
        return range(self.first, self.first + self.count)

    def to_text(self) -> str:
        return json.dumps([self.first, self.count, self.ready, self.done])

    @classmethod
    def from_text(cls, name: str, text: str | bytes) -> HostRow:
        first, count, ready, done = json.loads(text)
        return cls(name, int(first), int(count), int(ready), bool(done))


@frozen
class ClockCheck:
    """What ordering a history by its hosts' own clocks would have done
    (:func:`ticketsim.analysis.merged.clock_check`)."""

    #: Events that carry a host's time.
    timed: int
    #: Of those, events that a host's clock puts before one the store saw earlier: each
    #: would move if the history were ordered by the hosts' clocks.
    misplaced: int
    #: Each host's clock minus the store's, the median over its events, in seconds.
    offsets: tuple[tuple[str, float], ...]
