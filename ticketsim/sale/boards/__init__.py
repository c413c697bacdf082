"""Boards: a sale kept in its store, for buyers on many hosts (see
:mod:`ticketsim.core.boards`). One module per store, one line in :data:`BOARDS`.

Buyer processes unpickle a board to record their events, so this package uses the
standard library only and imports a board's module (and its client) when it is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ticketsim.sale.boards.base import Board

#: Each board by store (a ``StoreKind`` value), as ``module:Class``.
BOARDS: Final = {
    "postgres": "ticketsim.sale.boards.postgres:PostgresBoard",
    "redis": "ticketsim.sale.boards.redis:RedisBoard",
    "file": "ticketsim.sale.boards.folder:FolderBoard",
}


def board_for(kind: str, where: str) -> Board:
    """The board of the store ``kind`` at ``where`` (a URL, or a folder for ``file``)."""
    module, _, name = BOARDS[kind].partition(":")
    made: Board = getattr(import_module(module), name)(where)
    return made
