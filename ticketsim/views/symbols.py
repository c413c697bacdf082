"""How each step of a buyer looks, in every view: one table, so the views agree.

The live view draws each buyer's latest step as its :attr:`Symbol.char` in its
:attr:`Symbol.style`; the terminal timeline draws the same characters along time;
the page colours its marks with :attr:`Symbol.colour` and explains them with
:attr:`Symbol.what`. Every legend is made from the same words.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ticketsim.core.events import Step
from ticketsim.core.frozen import frozen, replace

if TYPE_CHECKING:
    from collections.abc import Iterable


@frozen
class Symbol:
    #: One character wide, for the terminal views.
    char: str
    #: A rich style, for the live view.
    style: str
    #: A CSS colour, for the page. Red is kept for violations, so no step is red there.
    colour: str
    #: The words after :attr:`char` in a terminal legend.
    label: str
    #: The words beside its swatch in the page's legend; steps drawn alike share one.
    key: str
    #: What it means, in a sentence: the page's hover text.
    what: str


# The lock's three steps end its bars on the page, drawn alike there in one quiet grey.
_WAIT: Final = Symbol(
    ".", "yellow", "#475569", "waiting for the lock", "wait / enter / leave the lock",
    "started waiting for the lock",
)  # fmt: skip
_ERROR: Final = Symbol(
    "!", "red", "#7c3aed", "error", "error / lost: outcome unknown",
    "gave up or crashed: its outcome is unknown",
)  # fmt: skip

SYMBOLS: Final = {
    Step.READY: Symbol(
        "·", "dim", "#94a3b8", "ready", "ready (before the opening)",
        "process started, waiting for the sale to open",
    ),
    Step.CHECK: Symbol(
        "c", "cyan", "#0ea5e9", "check", "check (unprotected look)",
        "looked at the remaining count, unprotected",
    ),
    Step.WAIT: _WAIT,
    Step.ENTER: replace(
        _WAIT, char="#", label="holding the lock", what="got the lock: the critical section starts"
    ),
    Step.READ: Symbol(
        "r", "cyan", "#1d4ed8", "read", "read", "read the db inside the critical section"
    ),
    Step.TORN: Symbol(
        "~", "magenta", "#c026d3", "torn read", "torn read",
        "torn read: found the db empty or half written, will read again",
    ),
    Step.WRITE: Symbol("w", "blue", "#ea580c", "write", "write", "wrote the db back"),
    Step.COMMIT: Symbol(
        "C", "blue", "#b45309", "commit", "commit", "the database accepted the transaction"
    ),
    Step.RETRY: Symbol(
        "↺", "yellow", "#ca8a04", "retry", "retry (refused, starts again)",
        "the database refused the transaction; it starts again",
    ),
    Step.MARK: Symbol(
        "m", "cyan", "#0891b2", "mark", "a step of your own", "passed a point its code marked"
    ),
    # Not "#": a buyer that let go of the lock must not look like one that holds it.
    Step.LEAVE: replace(_WAIT, char="-", style="dim", label="released", what="released the lock"),
    Step.OK: Symbol(
        "✓", "green", "#16a34a", "ok", 'ok: "you got a ticket"', 'told "you got a ticket"'
    ),
    Step.FAIL: Symbol("✗", "white", "#64748b", "sold out", 'fail: "sold out"', 'told "sold out"'),
    Step.ERROR: _ERROR,
    # The parent's word for a buyer that ended without one: to a reader, an error too.
    Step.LOST: replace(_ERROR, label="lost", what="its process ended with no outcome: unknown"),
}  # fmt: skip


#: What the terminal fills a buyer's race window (its read to its write) with; the page
#: keys its yellow band with the same character.
RACE_WINDOW: Final = "="
#: What goes before a buyer a violation names, where colour does not reach.
NAMED: Final = "*"


def legend(steps: Iterable[Step]) -> str:
    """``c check  r read …``: each character once, with the words of every step it draws."""
    words: dict[str, list[str]] = {}
    for step in steps:
        symbol = SYMBOLS[step]
        words.setdefault(symbol.char, []).append(symbol.label)
    return "  ".join(f"{char} {' or '.join(labels)}" for char, labels in words.items())
