"""Text that came from a file, made safe to show on a terminal.

A db's event name, a ledger's buyer names, a history's notes and the paths a user
typed all reach the screen. Written by another program, or by a hostile one, they
could hold escape sequences that move the cursor, clear the screen, retitle the
window or hide text (ESC, CSI and OSC; a bare CR; backspaces; Unicode's bidirectional
overrides, which reorder what a reader sees). rich strips a few control codes but
passes ESC through, so every such string goes through :func:`printable` first. The
data itself is not changed: ``--json`` carries it as it is, JSON-escaped.
"""

from __future__ import annotations

import re
from typing import Final

#: C0 controls but tab and newline, DEL, C1 controls, the bidirectional embedding,
#: override and isolate characters (the "Trojan Source" set), and lone surrogates
#: (a JSON "\\ud800", or a name's undecodable byte as Python keeps it), which no
#: output encoding can write.
_UNSAFE: Final = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every character that could drive a terminal written as an escape
    (``\\x1b``, ``\\u202e``); newline and tab stay, and nothing else changes."""
    return _UNSAFE.sub(_escape, text)


def line(text: str) -> str:
    """:func:`printable`, and a newline escaped too: for text that must stay one line
    (an error message, a table cell)."""
    return printable(text).replace("\n", "\\n")
