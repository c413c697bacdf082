"""The protocol of a board, and the channel that records a buyer's events on it.

Buyer processes unpickle these, so this module uses the standard library only.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from ticketsim.core.frozen import frozen, replace
from ticketsim.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ticketsim.core.boards import HostRow, SaleCard
    from ticketsim.core.events import Event
    from ticketsim.sale.channel import Channel


class Board(ABC):
    """A sale kept in a store: its card, its hosts, its gate and its history.

    Every method reaches the store itself; none waits without a bound. The history's
    times are the store's clock: :meth:`record` lets the store stamp each event, and
    :meth:`history` gives them back in that order, ``t`` set to the stamp.
    """

    #: The sale this board writes for, once :meth:`bound`: its joins, host rows and
    #: events go into that sale only, never into one opened over it.
    sale: str | None

    def bound(self, sale: str) -> Board:
        """This board, writing for ``sale`` only."""
        return replace(self, sale=sale)  # type: ignore[type-var]

    @abstractmethod
    def open(self, card: SaleCard) -> None:
        """Make ``card`` the store's sale, with no hosts and no history yet."""

    @abstractmethod
    def card(self) -> SaleCard | None:
        """The store's sale, ``None`` if it has none."""

    @abstractmethod
    def join(self, host: str, count: int) -> int:
        """Number ``count`` new buyers of ``host``; the first of their numbers."""

    @abstractmethod
    def update(self, row: HostRow) -> None:
        """Say how ``row``'s host is doing (how many are ready, whether it is done)."""

    @abstractmethod
    def hosts(self) -> tuple[HostRow, ...]:
        """Every host that joined, in the order they joined."""

    @abstractmethod
    def start(self) -> float:
        """Open the gate; the store's time it opened (the time it first opened, if it was)."""

    @abstractmethod
    def started(self) -> float | None:
        """The store's time the gate opened, ``None`` while it is shut."""

    @abstractmethod
    def record(self, events: Sequence[Event]) -> None:
        """Append ``events`` to the history, each stamped by the store's clock."""

    @abstractmethod
    def history(self) -> list[Event]:
        """The history in the store's order, ``t`` the store's stamp of each event."""

    @abstractmethod
    def close(self) -> None:
        """Close this process's connection, if it made one."""


def sale_moved_on(where: str, sale: str | None) -> StoreError:
    """The error of a host that joins a sale that has started, or is no longer the store's."""
    which = f"sale {sale}" if sale else "the sale"
    return StoreError(
        where,
        f"{which} has started, or another was opened over it",
        "join a sale before 'sale start' (ticketsim sale check says which is the store's)",
    )


def host_taken(where: str, host: str) -> StoreError:
    """The error of a second host that joins a sale under a name already taken."""
    return StoreError(
        where, f"host {host!r} has joined this sale already", "give this host another --host"
    )


@frozen
class HostChannel:
    """A buyer's events, to its host's pipe and to the sale's board.

    The pipe tells the host's own ``ticketsim buyers`` how its buyers do; the board is
    the record. An event the board cannot take (the host is cut off) raises, and the
    buyer's history there ends unknown, as it is.
    """

    local: Channel
    board: Board
    host: str
    #: Added to this host's clock: a host whose clock is wrong (``--clock-skew``).
    skew: float = 0.0

    def put(self, event: Event) -> None:
        self.local.put(event)
        stamped = replace(event, host=self.host, host_t=time.time() + self.skew)
        self.board.record((stamped,))
