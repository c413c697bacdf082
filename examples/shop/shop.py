"""A tiny ticket shop over SQLite: one table of stock, one of sales.

``buy`` has the classic bug: it checks the stock, then sells, in two statements, so two
buyers can both see the last ticket. ``buy_fixed`` decides and takes it in one.
The ``race.step`` marks are where another buyer may come in; outside ticketsim they do
nothing, so this is the shop's real code.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from ticketsim import race

TICKETS = 1


def open_shop() -> str:
    """A new shop with TICKETS tickets, in place of the last one; its file's path."""
    path = Path(tempfile.gettempdir()) / "ticketsim-example-shop.sqlite"
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE stock (remaining INTEGER NOT NULL)")
        db.execute("CREATE TABLE sales (buyer INTEGER NOT NULL, seat INTEGER NOT NULL)")
        db.execute("INSERT INTO stock VALUES (?)", (TICKETS,))
    return str(path)


def sales(path: str) -> list[tuple[int, int]]:
    with sqlite3.connect(path) as db:
        return [(int(buyer), int(seat)) for buyer, seat in db.execute("SELECT * FROM sales")]


def buy(path: str, buyer: int) -> int | None:
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    remaining = int(db.execute("SELECT remaining FROM stock").fetchone()[0])
    race.step("check stock", remaining)
    if remaining <= 0:
        return None
    seat = TICKETS - remaining + 1
    db.execute("UPDATE stock SET remaining = ?", (remaining - 1,))
    db.execute("INSERT INTO sales VALUES (?, ?)", (buyer, seat))
    return seat


def buy_fixed(path: str, buyer: int) -> int | None:
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    race.step("take a ticket")
    row = db.execute(
        "UPDATE stock SET remaining = remaining - 1 WHERE remaining > 0 RETURNING remaining"
    ).fetchone()
    if row is None:
        return None
    seat = TICKETS - int(row[0])
    race.step("record the sale", seat)
    db.execute("INSERT INTO sales VALUES (?, ?)", (buyer, seat))
    return seat
