"""The names and defaults the command line declares its options with, in a module of
their own.

The command line offers the strategies' names as choices on every start, even for
``--help``; importing :mod:`ticketsim.engine.strategies` for that (and with it
multiprocessing and every store) would add about a third to the start-up time. The
strategies themselves are in :mod:`ticketsim.engine.strategies`, which re-exports this enum.
The default db path is here rather than in :mod:`ticketsim.core.db` because buyer
processes import that module, and a ``Path`` would cost each of them ``pathlib``.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Final

#: The db every command uses unless given ``--db`` or ``TICKETSIM_DB``.
DEFAULT_DB: Final = Path("db") / "tickets.json"


class StrategyName(str, Enum):
    """The strategies' names, as the command line spells them."""

    NONE = "none"
    LOCK = "lock"
    SEMAPHORE = "semaphore"
    FILELOCK = "filelock"
    MANAGER = "manager"
    VALUE = "value"
    ARRAY = "array"
    OFFICE = "office"
    VALUE_UNLOCKED = "value-unlocked"
    ARRAY_UNLOCKED = "array-unlocked"
