"""A pacer that a buyer process unpickles: it looks at what the process has imported.

Standard library only, so that importing it adds nothing heavy to the buyer.
"""

from __future__ import annotations

import sys

from ticketsim.sale.buyer import Pacer

#: What a buyer process must never import: the command line's libraries and the tests'.
HEAVY = ("typer", "rich", "click", "hypothesis", "pytest", "pydantic")


class ImportProbe(Pacer):
    """Fails the buyer (an ``error`` event naming them) if a heavy library is loaded."""

    def before_check(self, number: int, timeout: float) -> None:
        loaded = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
        if loaded:
            raise RuntimeError(f"buyer {number} imported {', '.join(loaded)}")
