"""A sale kept in the store, for buyers on many hosts: its card, its hosts, its clock.

``ticketsim sale open`` writes a :class:`SaleCard` into the store; each host that joins
(``ticketsim buyers``) is a :class:`HostRow`; ``sale start`` opens the gate; ``sale
check`` reads the history back, in the order of the store's clock (:data:`CLOCKS`).

Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import json
import math
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
#: The most buyers one host may start (``ticketsim buyers --count``).
MAX_HOST_BUYERS: Final = 120
#: The highest buyer number a sale of several hosts may give: 1,000 hosts of the most.
MAX_NUMBERED: Final = 1000 * MAX_HOST_BUYERS


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
        """The card :meth:`to_text` wrote; ``ValueError`` (or ``TypeError``,
        ``KeyError``) for anything else. Whether its values make a sale ticketsim can
        run is the engine's to check."""
        raw: dict[str, Any] = json.loads(text)
        if not SALE_ID.fullmatch(raw["id"]):
            raise ValueError(f"id={raw['id']!r} is not a sale's id")
        try:
            initial = dbfile.parse(_text(raw["initial"]), source="the sale's card")
        except ValueError as exc:  # a DbError names a --db, which this is not
            raise ValueError(f"its tickets: {exc}") from None
        return cls(
            id=raw["id"],
            strategy=_text(raw["strategy"]),
            initial=initial,
            delay=_number(raw["delay"]),
            seed=_whole(raw["seed"]),
            timeout=_number(raw["timeout"]),
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
        """The row :meth:`to_text` wrote for host ``name``; ``ValueError`` (or
        ``TypeError``) for anything else, a count no host can have included."""
        first, count, ready, done = json.loads(text)
        if not HOST_NAME.fullmatch(name):
            raise ValueError(f"host={name!r} is not a host's name")
        first, count, ready = _whole(first), _whole(count), _whole(ready)
        if not (1 <= first <= MAX_NUMBERED and 1 <= count <= MAX_HOST_BUYERS):
            raise ValueError(f"host {name}: first={first}, count={count} are not a host's buyers")
        if not 0 <= ready <= count or type(done) is not bool:
            raise ValueError(f"host {name}: ready={ready!r}, done={done!r}")
        return cls(name, first, count, ready, done)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not text")
    return value


def _whole(value: object) -> int:
    if type(value) is not int:
        raise TypeError(f"{value!r} is not a whole number")
    return value


def _number(value: object) -> float:
    try:  # an int past a float's range overflows math.isfinite
        if type(value) in (int, float) and math.isfinite(value):  # type: ignore[arg-type]
            return float(value)  # type: ignore[arg-type]
    except OverflowError:
        pass
    raise ValueError(f"{value!r:.40} is not a finite number")


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
