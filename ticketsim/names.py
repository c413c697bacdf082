"""The strategies' names, in a module of their own.

The command line offers them as choices when it declares its options, on every start,
even for ``--help``; importing :mod:`ticketsim.strategies` for that (and with it
multiprocessing and every store) would add about a third to the start-up time. The
strategies themselves are in :mod:`ticketsim.strategies`, which re-exports this enum.
"""

from __future__ import annotations

from enum import Enum


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
