"""A sale of several hosts kept in PostgreSQL, beside its tickets (schema ``ticketsim``).

The history is a table whose ``at`` column defaults to ``clock_timestamp()``: the
server's clock when each event arrived, one clock for every host. The gate is the
board's ``started`` column, which each host polls (one connection per host, not per
buyer).

Buyer processes unpickle this board, so it imports only the standard library and
psycopg, and psycopg only when it connects.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from ticketsim.core.boards import HostRow, SaleCard
from ticketsim.core.events import from_json
from ticketsim.core.frozen import field, frozen
from ticketsim.core.stores import redacted
from ticketsim.errors import ServerUnavailable, StoreError
from ticketsim.sale import _answer
from ticketsim.sale.boards.base import Board, gate_time, host_taken, reads, sale_moved_on
from ticketsim.sale.stores.database import ProcessConnection
from ticketsim.sale.stores.postgres import SCHEMA, connect, one_line

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import psycopg

    from ticketsim.core.events import Event


@frozen
class PostgresBoard(Board):
    """The board in the PostgreSQL at ``url`` (the sale's tables must be loaded first)."""

    url: str
    #: The sale this board writes for (:meth:`Board.bound`); ``None``: whichever.
    sale: str | None = None
    _connection: ProcessConnection[psycopg.Connection[Any]] = field(
        default_factory=ProcessConnection, compare=False, repr=False
    )

    @property
    def db(self) -> psycopg.Connection[Any]:
        return self._connection.get(lambda: connect(self.url, answer_s=_answer.ANSWER_S))

    @property
    def shown(self) -> str:
        return redacted(self.url)

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._said():
            cursor = self.db.execute(sql, args)
            return list(cursor.fetchall()) if cursor.description else []

    @contextlib.contextmanager
    def _said(self) -> Iterator[None]:
        """psycopg's errors, as ticketsim's: a store with no sale, a server gone."""
        import psycopg  # noqa: PLC0415 - imported by the connection already

        try:
            yield
        except psycopg.errors.UndefinedTable:
            raise StoreError(
                redacted(self.url),
                "holds no sale of several hosts",
                "open one with 'ticketsim sale open --store URL'",
            ) from None
        except psycopg.OperationalError as exc:
            self.close()
            raise ServerUnavailable(
                redacted(self.url),
                one_line(exc),
                "is the server up, and the network to it?",
            ) from None

    def open(self, card: SaleCard) -> None:
        with self._said(), self.db.transaction():  # no join may see half a sale
            self.db.execute(f"DELETE FROM {SCHEMA}.board")
            self.db.execute(f"TRUNCATE {SCHEMA}.hosts, {SCHEMA}.history RESTART IDENTITY")
            self.db.execute(
                f"INSERT INTO {SCHEMA}.board (id, sale, card) VALUES (1, %s, %s)",
                (card.id, card.to_text()),
            )

    @reads("sale card")
    def card(self) -> SaleCard | None:
        rows = self._run(f"SELECT card FROM {SCHEMA}.board")
        return SaleCard.from_text(rows[0][0]) if rows else None

    def join(self, host: str, count: int) -> int:
        with self._said(), self.db.transaction():  # all of it, or none of it
            taken = self.db.execute(
                f"INSERT INTO {SCHEMA}.hosts (name, row) VALUES (%s, '') ON CONFLICT (name)"
                " DO NOTHING RETURNING n",
                (host,),
            ).fetchone()
            if taken is None:
                raise host_taken(redacted(self.url), host)
            joined = self.db.execute(
                f"UPDATE {SCHEMA}.board SET joined = joined + %s WHERE started IS NULL"
                f" AND sale = coalesce(%s, sale) RETURNING joined",
                (count, self.sale),
            ).fetchone()
            if joined is None:
                raise sale_moved_on(redacted(self.url), self.sale)
            first = int(joined[0]) - count + 1
            self.db.execute(
                f"UPDATE {SCHEMA}.hosts SET row = %s WHERE name = %s",
                (HostRow(host, first, count).to_text(), host),
            )
        return first

    def update(self, row: HostRow) -> None:
        self._run(
            f"UPDATE {SCHEMA}.hosts SET row = %s WHERE name = %s AND EXISTS"
            f" (SELECT 1 FROM {SCHEMA}.board WHERE sale = coalesce(%s, sale))",
            (row.to_text(), row.name, self.sale),
        )

    @reads("host's row")
    def hosts(self) -> tuple[HostRow, ...]:
        rows = self._run(f"SELECT name, row FROM {SCHEMA}.hosts WHERE row <> ''")
        # By their numbers: hosts that join at once may insert their rows in either order.
        found = [HostRow.from_text(name, text) for name, text in rows]
        return tuple(sorted(found, key=lambda row: row.first))

    @reads("gate's time")
    def start(self) -> float:
        rows = self._run(
            f"UPDATE {SCHEMA}.board SET started = coalesce(started,"
            " extract(epoch FROM clock_timestamp())) RETURNING started"
        )
        return gate_time(rows[0][0])

    @reads("gate's time")
    def started(self) -> float | None:
        rows = self._run(f"SELECT started FROM {SCHEMA}.board")
        return None if not rows or rows[0][0] is None else gate_time(rows[0][0])

    def record(self, events: Sequence[Event]) -> None:
        # Into this board's sale only: a host of a sale opened over (--replace) writes
        # nothing into the new one's history.
        sql = (
            f"INSERT INTO {SCHEMA}.history (event) SELECT %s FROM {SCHEMA}.board"
            " WHERE sale = coalesce(%s, sale)"
        )
        if len(events) == 1:  # a buyer's every step: one statement
            self._run(sql, (json.dumps(events[0].to_json()), self.sale))
            return
        rows = [(json.dumps(e.to_json()), self.sale) for e in events]
        with self._said(), self.db.cursor() as cursor:
            cursor.executemany(sql, rows)

    @reads("history event")
    def history(self) -> list[Event]:
        rows = self._run(f"SELECT at, event FROM {SCHEMA}.history ORDER BY at, n")
        return [_stamped(json.loads(text), at) for at, text in rows]

    def close(self) -> None:
        self._connection.close()


def _stamped(row: dict[str, Any], at: float) -> Event:
    row["t"] = float(at)
    return from_json(row)
