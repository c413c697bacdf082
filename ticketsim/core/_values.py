"""Checks on values read from JSON files, shared by the db and the history readers."""

from __future__ import annotations

import math


def seconds(value: object) -> float | None:
    """``value`` as a finite number of seconds, or ``None`` if it is not one.

    JSON integers are unbounded, and a huge one overflows ``float()``; ``true`` is a
    bool, not a number, whatever Python's ``int`` subclassing says.
    """
    if type(value) not in (int, float):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def unicode_text(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8: JSON's ``"\\ud800"`` is valid JSON, and
    Python keeps an undecodable byte of a command line the same way, as a lone
    surrogate, half a character that no file or database can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
