"""What every SVG ticketsim draws is made of: escaped text, elements, round ticks.

The timeline page and the comparison chart both embed text they do not control
(notes, strategy names, titles), so both go through :func:`escape`, and both pick
their axis ticks with :func:`ticks`. Standard library only: the page needs no more.
"""

from __future__ import annotations

import html
import math
import re
from typing import TYPE_CHECKING, Final

from ticketsim.core.frozen import frozen

if TYPE_CHECKING:
    from collections.abc import Sequence

# What XML 1.0 cannot hold at all (C0 controls but tab, newline and return; lone
# surrogates; U+FFFE and U+FFFF), and the C1 controls, which XML discourages and HTML
# calls parse errors: a page and a chart must stay valid whatever a note says.
_UNSAFE_CHARS: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

#: The usual round steps: 1, 2 and 5 times a power of ten.
ROUND: Final = (1.0, 2.0, 5.0)


def escape(text: object) -> str:
    """``text`` as XML character data, also safe in a quoted attribute; never refuses.

    What XML cannot carry becomes U+FFFD (so the rest of the text still reads), and
    ``& < > " '`` become references (so ``]]>`` and markup stay text).
    """
    return html.escape(_UNSAFE_CHARS.sub("\ufffd", str(text)), quote=True)


def fmt(value: float) -> str:
    """A coordinate: two decimals are finer than any screen, and keep the file small."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def start_tag(name: str, /, **attrs: object) -> str:
    """``<name a="…">`` with every value escaped: ``class_`` is ``class``, ``_`` in a
    name ``-``, and a float is written by :func:`fmt` (pass a str for another format)."""
    parts = [name]
    for key, value in attrs.items():
        shown = fmt(value) if isinstance(value, float) else str(value)
        parts.append(f'{key.rstrip("_").replace("_", "-")}="{escape(shown)}"')
    return "<" + " ".join(parts) + ">"


def el(name: str, /, **attrs: object) -> str:
    """One whole element, as :func:`start_tag` writes its attributes: ``title`` becomes a
    ``<title>`` child (what hovering shows), ``text`` its content; empty, it closes itself."""
    title = attrs.pop("title", None)
    text = attrs.pop("text", "")
    head = start_tag(name, **attrs)[:-1]
    inner = (f"<title>{escape(title)}</title>" if title is not None else "") + escape(text)
    return f"{head}>{inner}</{name}>" if inner else f"{head}/>"


@frozen
class Ticks:
    """Round values along an axis, ``step`` apart."""

    values: tuple[float, ...]
    step: float

    @property
    def decimals(self) -> int:
        """How many decimals a label needs to tell the ticks apart."""
        return max(0, -math.floor(math.log10(self.step)))


def ticks(
    low: float,
    high: float,
    count: int,
    *,
    multiples: Sequence[float] = ROUND,
    whole: bool = False,
    cover: bool = False,
) -> Ticks:
    """About ``count`` steps over ``[low, high]``, each a round number.

    The step is the smallest of ``multiples`` times a power of ten that makes at most
    ``count`` steps; ``whole`` makes it a whole number, for things that are counted.
    The ticks are the multiples of the step from ``low`` on: up to ``high`` (a plot
    whose ends are fixed), or with ``cover`` up to the first at or past it (an axis
    that ends on a round number). An empty range gets one step of 1.
    """
    if high <= low:
        return Ticks((low, low + 1.0), 1.0)
    rough = (high - low) / count
    power = 10.0 ** math.floor(math.log10(rough))
    step = next(m * power for m in (*multiples, 10.0) if m * power >= rough)
    if whole:
        step = float(max(1, math.ceil(step)))
    # The tolerances keep a tick that lands on an end, give or take a rounding error.
    first = math.ceil(low / step - 1e-9)
    if cover:
        last = max(first + 1, math.ceil(high / step - 1e-9))
        return Ticks(tuple(step * i for i in range(first, last + 1)), step)
    values = []
    index = first
    while index * step <= high + step * 1e-9:
        values.append(index * step)
        index += 1
    return Ticks(tuple(values), step)
