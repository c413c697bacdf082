"""The protocol of a board, and the channel that records a buyer's events on it.

Buyer processes unpickle these, so this module uses the standard library only.
"""

from __future__ import annotations

import functools
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from ticketsim.core.frozen import frozen, replace
from ticketsim.errors import StoreError, TicketsimError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ticketsim.core.boards import HostRow, SaleCard
    from ticketsim.core.events import Event
    from ticketsim.sale.channel import Channel


_P = ParamSpec("_P")
_R = TypeVar("_R")
_B = TypeVar("_B", bound="Board")


class UnreadableBoard(StoreError):
    """The store holds, where ticketsim keeps a sale of several hosts, something
    ticketsim did not write there: a sale card, a host's row, the gate's time or an
    event it cannot read. Only a new sale (``sale open --replace``) replaces it."""


def reads(
    what: str,
) -> Callable[[Callable[Concatenate[_B, _P], _R]], Callable[Concatenate[_B, _P], _R]]:
    """A board's method that reads ``what`` back from the store: what it cannot read is
    :class:`UnreadableBoard`, one line, where it was an internal error."""

    def wrap(method: Callable[Concatenate[_B, _P], _R]) -> Callable[Concatenate[_B, _P], _R]:
        @functools.wraps(method)
        def reading(self: _B, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return method(self, *args, **kwargs)
            except TicketsimError:
                raise
            except (
                ValueError, TypeError, KeyError, IndexError, ArithmeticError, RecursionError
            ) as exc:  # fmt: skip
                raise UnreadableBoard(
                    self.shown,
                    f"holds a {what} that ticketsim did not write ({_reason(exc)})",
                    "open a new sale there: ticketsim sale open --replace",
                ) from None

        return reading

    return wrap


def gate_time(value: object) -> float:
    """The gate's time as a board keeps it (seconds since the epoch): ``ValueError`` for
    what no gate opened at (text, ``nan``, ``inf``, before the epoch), which a method that
    :func:`reads` it says in one line."""
    seconds = float(value)  # type: ignore[arg-type]
    if not 0 < seconds < float("inf"):  # false for nan too
        raise ValueError(f"{value!r} is no time a gate opened at")
    return seconds


def _reason(exc: BaseException) -> str:
    said = " ".join(str(exc).split())
    return said[:120] + "..." if len(said) > 120 else said or type(exc).__name__


class Board(ABC):
    """A sale kept in a store: its card, its hosts, its gate and its history.

    Every method reaches the store itself; none waits without a bound. The history's
    times are the store's clock: :meth:`record` lets the store stamp each event, and
    :meth:`history` gives them back in that order, ``t`` set to the stamp.
    """

    #: The sale this board writes for, once :meth:`bound`: its joins, host rows and
    #: events go into that sale only, never into one opened over it.
    sale: str | None

    @property
    @abstractmethod
    def shown(self) -> str:
        """Where the board is, as a message names it (a URL without its password)."""

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
