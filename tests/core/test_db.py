"""Unit tests of the ticket db module (the data classes, parsing, reading and writing)
and of the file store's fast path over it (:mod:`ticketsim.sale.stores._ledger`)."""

from __future__ import annotations

import itertools
import json
import os
import pickle
import stat
import tracemalloc
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ticketsim.core.db
from ticketsim.core.db import (
    DEFAULT_EVENT,
    FORMAT,
    Sale,
    TicketDB,
    dumps,
    load,
    parse,
    read_text,
    write_atomic,
    write_naive,
)
from ticketsim.errors import ConfigError, DbError, GuardTimeout, NoVerdict
from ticketsim.sale.boards.base import UnreadableBoard
from ticketsim.sale.stores import _ledger as ledger

if TYPE_CHECKING:
    from pathlib import Path

SOURCE = "/srv/sale/tickets.json"

SALE_1 = Sale(buyer="buyer-1", seat=1, pid=4101, time=1795000000.25)
SALE_2 = Sale(buyer="buyer-2", seat=2, pid=4102, time=1795000001.5)
SOLD_TWO = TicketDB(tickets=5, remaining=3, ledger=(SALE_1, SALE_2), event="Opera")


def _folder_names(folder: Path) -> list[str]:
    """Every entry of ``folder``, hidden temp files included."""
    return sorted(os.listdir(folder))


# --- TicketDB and Sale ------------------------------------------------------------------


def test_fresh_puts_every_ticket_on_sale() -> None:
    db = TicketDB.fresh(7)
    assert db == TicketDB(tickets=7, remaining=7, ledger=(), event=DEFAULT_EVENT, format=FORMAT)
    assert TicketDB.fresh(3, event="Opera").event == "Opera"


def test_sell_appends_to_the_ledger_and_leaves_the_original_alone() -> None:
    fresh = TicketDB.fresh(2)
    once = fresh.sell(SALE_1)
    twice = once.sell(SALE_2)
    assert (once.remaining, once.ledger) == (1, (SALE_1,))
    assert (twice.remaining, twice.ledger) == (0, (SALE_1, SALE_2))
    assert fresh == TicketDB.fresh(2)
    assert twice.tickets == 2


def test_sell_does_not_check_that_a_ticket_is_left() -> None:
    assert TicketDB(tickets=1, remaining=0).sell(SALE_1).remaining == -1


@pytest.mark.parametrize(
    ("tickets", "remaining", "seat"),
    [(5, 5, 1), (5, 4, 2), (5, 1, 5), (5, 0, 6), (10, 3, 8)],
    ids=["fresh", "one-sold", "last-ticket", "sold-out", "ten-seven-sold"],
)
def test_next_seat_is_tickets_minus_remaining_plus_one(
    tickets: int, remaining: int, seat: int
) -> None:
    assert TicketDB(tickets=tickets, remaining=remaining).next_seat() == seat


def test_next_seat_follows_sales() -> None:
    db = TicketDB.fresh(3)
    assert db.next_seat() == 1
    assert db.sell(SALE_1).next_seat() == 2


def test_to_json_gives_the_documented_document() -> None:
    assert SOLD_TWO.to_json() == {
        "format": "ticketsim/1",
        "event": "Opera",
        "tickets": 5,
        "remaining": 3,
        "ledger": [
            {"buyer": "buyer-1", "seat": 1, "pid": 4101, "time": 1795000000.25},
            {"buyer": "buyer-2", "seat": 2, "pid": 4102, "time": 1795000001.5},
        ],
    }


def test_dumps_is_stable_one_sale_a_line_and_ends_with_a_newline() -> None:
    text = dumps(SOLD_TWO)
    assert text == dumps(SOLD_TWO)
    assert json.loads(text) == SOLD_TWO.to_json()
    assert list(json.loads(text)) == ["format", "event", "tickets", "remaining", "ledger"]
    head, *sales, close = text.splitlines()
    assert json.loads(head.removesuffix(', "ledger": [') + "}")["remaining"] == 3
    assert [json.loads(line.rstrip(",")) for line in sales] == [
        SALE_1.to_json(),
        SALE_2.to_json(),
    ]
    assert close == "]}"
    assert text.endswith("]}\n")
    assert dumps(TicketDB.fresh(3)).count("\n") == 2


# --- reading for a sale: the first line and the new ledger lines ------------------------


def _holes_db() -> TicketDB:
    """Seats 1, 2 and 4 sold, 3 refunded: the lowest free seat is not the formula's."""
    sales = tuple(Sale(f"buyer-{n}", n, 4100 + n, 1795000000.0 + n) for n in (1, 2, 4))
    return TicketDB(tickets=6, remaining=3, ledger=sales)


def test_a_buyer_takes_the_lowest_free_seat_without_decoding_the_whole_db(tmp_path: Path) -> None:
    path = tmp_path / "tickets.json"
    write_atomic(path, _holes_db())
    seen = ledger.read_for_sale(path, ledger.LedgerIndex())
    assert isinstance(seen, ledger.LedgerSeen)
    assert (seen.tickets, seen.remaining, seen.head.event) == (6, 3, DEFAULT_EVENT)
    assert seen.seat == _holes_db().next_seat() == 3
    assert ledger.read_remaining(path) == 3


def test_appending_a_sale_writes_what_encoding_the_whole_db_would(tmp_path: Path) -> None:
    path = tmp_path / "tickets.json"
    index = ledger.LedgerIndex()
    expected = TicketDB.fresh(3, "Opera")
    write_atomic(path, expected)
    for number in (1, 2, 3):
        seen = ledger.read_for_sale(path, index)
        sale = Sale(f"buyer-{number}", seen.seat, 4100 + number, 1795000000.5)
        ledger.append_sale(path, seen, sale, index)
        expected = expected.sell(sale)
        assert path.read_text() == dumps(expected)
    assert [sale.seat for sale in load(path).ledger] == [1, 2, 3]
    assert ledger.read_for_sale(path, index).remaining == 0


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(SOLD_TWO.to_json(), indent=2) + "\n",  # another layout: decoded whole
        json.dumps(SOLD_TWO.to_json()),
    ],
    ids=["indented", "one-line"],
)
def test_a_db_in_another_layout_is_read_whole(tmp_path: Path, text: str) -> None:
    path = tmp_path / "tickets.json"
    path.write_text(text)
    seen = ledger.read_for_sale(path, ledger.LedgerIndex())
    assert isinstance(seen, ledger.WholeSeen)
    assert (seen.db, seen.seat) == (SOLD_TWO, 3)
    assert ledger.read_remaining(path) == 3
    ledger.append_sale(path, seen, Sale("buyer-3", 3, 4103, 1795000002.0), ledger.LedgerIndex())
    assert path.read_text() == dumps(SOLD_TWO.sell(Sale("buyer-3", 3, 4103, 1795000002.0)))


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('  {"buyer": "buyer-3", "seat": "3", "pid": 1, "time": 1.0}', "no whole-number seat"),
        ("  {oops}", "not valid JSON"),
    ],
)
def test_a_bad_ledger_line_is_a_db_error(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "tickets.json"
    text = dumps(SOLD_TWO)
    path.write_text(text.replace("\n]}", f",\n{line}\n]}}"))
    with pytest.raises(DbError, match=reason) as caught:
        ledger.read_for_sale(path, ledger.LedgerIndex())
    assert caught.value.path == str(path)


def test_a_pickled_ledger_index_arrives_empty() -> None:
    index = ledger.LedgerIndex()
    line = dumps(SOLD_TWO).splitlines()[1].rstrip(",").encode()
    assert index.lowest_free(line, len(line), SOURCE) == 2
    copy = pickle.loads(pickle.dumps(index))
    assert copy.lowest_free(b"", 0, SOURCE) == 1


def test_an_index_decodes_afresh_a_ledger_that_changed_under_it(tmp_path: Path) -> None:
    path = tmp_path / "tickets.json"
    index = ledger.LedgerIndex()
    write_atomic(path, _holes_db())
    assert ledger.read_for_sale(path, index).seat == 3
    # Another program refunds seat 1 and sells seat 3: same length, other lines.
    changed = _holes_db().refund(1).sell(Sale("buyer-9", 3, 4109, 1795000009.0))
    write_atomic(path, changed)
    assert ledger.read_for_sale(path, index).seat == changed.next_seat() == 1


def test_reads_take_turns_in_two_buffers_and_each_compares_with_the_last(
    tmp_path: Path,
) -> None:
    """A buyer's reads go into two buffers in turn, each left longer than the file
    by what it held before: every read must see the file as it is, not the rest of an
    older one, and a read must compare with the last read, not with its own buffer."""
    path = tmp_path / "tickets.json"
    index = ledger.LedgerIndex()
    expected = _holes_db()
    write_atomic(path, expected)
    buffers: list[bytes | bytearray] = []  # kept, so that no buffer's id is reused
    for number in range(5):
        seen = ledger.read_for_sale(path, index)
        assert isinstance(seen, ledger.LedgerSeen)
        buffers.append(seen.rest)
        assert seen.seat == expected.next_seat()
        if number == 1:  # another program refunds a seat: the ledger shrinks
            expected = expected.refund(expected.ledger[0].seat)
            write_atomic(path, expected)
            continue
        sale = Sale(f"buyer-{number}", seen.seat, 4100 + number, 1795000000.5)
        ledger.append_sale(path, seen, sale, index)
        expected = expected.sell(sale)
        assert path.read_text() == dumps(expected)
    assert all(isinstance(buffer, bytearray) for buffer in buffers)
    assert all(a is not b for a, b in itertools.pairwise(buffers))
    assert all(a is c for a, c in zip(buffers, buffers[2:], strict=False))


def test_a_read_buffer_has_room_to_grow_but_not_without_bound() -> None:
    index = ledger.LedgerIndex()
    small = index.buffer(1000)
    assert len(small) >= 1000
    assert index.buffer(1000) is small  # not the index's data: reused
    assert index.buffer(50_000) is small  # within its room
    big = index.buffer(3_000_000)
    assert 3_000_000 <= len(big) <= 3_000_000 + (1 << 20)
    assert len(index.buffer(10_000)) < 100_000  # the db shrank: a buffer its size again


def test_a_rehearsal_leaves_a_spare_buffer_the_size_of_the_db(tmp_path: Path) -> None:
    path = tmp_path / "tickets.json"
    db = TicketDB.fresh(5000)
    for seat in range(1, 3001):
        db = db.sell(Sale(f"buyer-{seat}", seat, 4100, 1795000000.5))
    write_atomic(path, db)
    size = path.stat().st_size
    index = ledger.LedgerIndex()
    ledger.rehearse_sale(path, index, os.getpid())
    # The first read of the sale, inside the critical section, allocates nothing the
    # size of the db: its buffer is there already.
    tracemalloc.start()
    try:
        seen = ledger.read_for_sale(path, index)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(seen, ledger.LedgerSeen)
    assert peak < size // 4, (peak, size)
    assert size <= len(seen.rest) <= 2 * size + (1 << 16)


def test_a_read_of_a_bad_db_leaves_the_index_as_it_was(tmp_path: Path) -> None:
    """The index knew seats 1 and 2; a read finds the db damaged and fails; the db is
    mended and seat 3 sold. The next read must still count seats 1 and 2 as taken."""
    path = tmp_path / "tickets.json"
    index = ledger.LedgerIndex()
    write_atomic(path, SOLD_TWO)
    assert ledger.read_for_sale(path, index).seat == 3
    path.write_text(dumps(SOLD_TWO).replace('"seat": 1', '"seat": "one"'))
    with pytest.raises(DbError):
        ledger.read_for_sale(path, index)
    mended = SOLD_TWO.sell(Sale("buyer-3", 3, 4103, 1795000002.0))
    write_atomic(path, mended)
    assert ledger.read_for_sale(path, index).seat == mended.next_seat() == 4


def test_a_db_that_grows_while_it_is_read_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tickets.json"
    write_atomic(path, _holes_db())
    real = os.fstat
    # The size a reader sees first is short of the file: it grew after the look.
    monkeypatch.setattr(
        os, "fstat", lambda fd: os.stat_result((*real(fd)[:6], real(fd).st_size - 10, 0, 0, 0))
    )
    seen = ledger.read_for_sale(path, ledger.LedgerIndex())
    monkeypatch.undo()
    assert isinstance(seen, ledger.LedgerSeen)  # read whole, not cut and parsed afresh
    assert seen.seat == _holes_db().next_seat()
    sale = Sale("buyer-9", seen.seat, 4109, 1795000009.0)
    ledger.append_sale(path, seen, sale, ledger.LedgerIndex())
    assert load(path) == _holes_db().sell(sale)


def test_a_buyer_who_finds_no_ticket_reads_the_first_line_only(tmp_path: Path) -> None:
    path = tmp_path / "tickets.json"
    sold_out = TicketDB(tickets=1, remaining=0, ledger=(SALE_1,))
    # The ledger is broken past the first line: only a read of it would notice.
    path.write_text(dumps(sold_out).replace('"seat"', '"seat?"'))
    seen = ledger.read_for_sale(path, ledger.LedgerIndex())
    assert (seen.tickets, seen.remaining, seen.seat) == (1, 0, 0)
    with pytest.raises(DbError):
        load(path)


def test_a_rehearsal_leaves_the_db_and_its_folder_as_they_were(tmp_path: Path) -> None:
    path = tmp_path / "tickets.json"
    write_atomic(path, _holes_db())
    before = path.read_bytes()
    index = ledger.LedgerIndex()
    ledger.rehearse_sale(path, index, pid=4242)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tickets.json"]
    # and what it read stays known: the sale that follows appends to it
    seen = ledger.read_for_sale(path, index)
    ledger.append_sale(path, seen, Sale("buyer-3", 3, 4103, 1.5), index)
    assert load(path) == _holes_db().sell(Sale("buyer-3", 3, 4103, 1.5))


# --- parse: accepted documents ----------------------------------------------------------


@pytest.mark.parametrize(
    "db",
    [TicketDB.fresh(0), TicketDB.fresh(10), SOLD_TWO, TicketDB(tickets=1, remaining=-2)],
    ids=["no-tickets", "fresh", "two-sold", "negative-remaining"],
)
def test_dumps_then_parse_round_trips(db: TicketDB) -> None:
    assert parse(dumps(db), source=SOURCE) == db


def test_parse_without_format_key_reads_as_current_format() -> None:
    raw = SOLD_TWO.to_json()
    del raw["format"]
    assert parse(json.dumps(raw)) == SOLD_TWO


def test_parse_turns_a_whole_number_time_into_a_float() -> None:
    raw = SOLD_TWO.to_json()
    raw["ledger"][0]["time"] = 1795000000
    sale = parse(json.dumps(raw)).ledger[0]
    assert sale.time == 1795000000.0
    assert type(sale.time) is float


_SALES = st.builds(
    Sale,
    buyer=st.text(min_size=1),
    seat=st.integers(),
    pid=st.integers(),
    time=st.floats(allow_nan=False, allow_infinity=False),
)
_DBS = st.builds(
    TicketDB,
    tickets=st.integers(),
    remaining=st.integers(),
    ledger=st.lists(_SALES, max_size=5).map(tuple),
    event=st.text(),
)


@given(db=_DBS)
def test_any_valid_db_round_trips_exactly(db: TicketDB) -> None:
    back = parse(dumps(db), source=SOURCE)
    assert back == db
    assert dumps(back) == dumps(db)


# --- parse: rejected documents ----------------------------------------------------------


def _doc(**changes: Any) -> str:
    """The JSON of SOLD_TWO with top-level keys replaced (a value of ... deletes the key)."""
    raw = SOLD_TWO.to_json()
    for key, value in changes.items():
        if value is ...:
            del raw[key]
        else:
            raw[key] = value
    return json.dumps(raw)


def _doc_sale(**changes: Any) -> str:
    """The JSON of SOLD_TWO with keys of its first ledger entry replaced or deleted."""
    raw = SOLD_TWO.to_json()
    for key, value in changes.items():
        if value is ...:
            del raw["ledger"][0][key]
        else:
            raw["ledger"][0][key] = value
    return json.dumps(raw)


_VALID = dumps(SOLD_TWO)

REJECTED: list[tuple[str, str]] = [
    ("", "the file is empty"),
    (" \n\t\r\n  ", "the file is empty"),
    ("hello, tickets", "not valid JSON"),
    (_VALID[: len(_VALID) // 2], "not valid JSON"),
    ("\ufeff" + _VALID, "byte-order mark"),
    (_VALID + "garbage", "not valid JSON (Extra data"),
    (_VALID + _VALID, "not valid JSON (Extra data"),
    ("[]", "the top level must be a JSON object, got list"),
    (json.dumps([SOLD_TWO.to_json()]), "the top level must be a JSON object, got list"),
    ('"tickets"', "the top level must be a JSON object, got str"),
    ("null", "the top level must be a JSON object, got NoneType"),
    ("[" * 100_000, "nested too deeply"),
    ('{"a":' * 100_000, "nested too deeply"),
    (_doc(tickets="5"), 'tickets must be a whole number, got "5"'),
    (_doc(tickets=True), "tickets must be a whole number, got true"),
    (_doc(tickets=5.0), "tickets must be a whole number, got 5.0"),
    (_doc(tickets=None), "tickets must be a whole number, got null"),
    (_doc(remaining=3.0), "remaining must be a whole number, got 3.0"),
    (_doc(remaining=False), "remaining must be a whole number, got false"),
    (_doc(tickets=float("nan")), "NaN is not a number JSON allows"),
    (_doc(remaining=float("inf")), "Infinity is not a number JSON allows"),
    (_doc(tickets=float("-inf")), "-Infinity is not a number JSON allows"),
    (_doc(event=5), "event must be a string"),
    (_doc(ledger={"buyer": "buyer-1"}), "ledger must be a list, got dict"),
    (_doc(ledger="buyer-1"), "ledger must be a list, got str"),
    (_doc(ledger=None), "ledger must be a list, got NoneType"),
    (_doc(ledger=[5]), "ledger[0] must be an object, got 5"),
    (_doc(ledger=[SALE_1.to_json(), ["buyer-2", 2]]), "ledger[1] must be an object"),
    (_doc_sale(pid=..., time=...), "ledger[0] lacks pid, time"),
    (_doc_sale(buyer=...), "ledger[0] lacks buyer"),
    (_doc_sale(seat=True), "ledger[0].seat must be a whole number, got true"),
    (_doc_sale(seat=1.0), "ledger[0].seat must be a whole number, got 1.0"),
    (_doc_sale(pid="4101"), 'ledger[0].pid must be a whole number, got "4101"'),
    (_doc_sale(buyer=""), "ledger[0].buyer must be a non-empty string"),
    (_doc_sale(buyer=7), "ledger[0].buyer must be a non-empty string"),
    (_doc_sale(time="noon"), "ledger[0].time must be a number of seconds"),
    (_doc_sale(time=True), "ledger[0].time must be a number of seconds"),
    (_doc(format="ticketsim/2"), "format='ticketsim/2' is not 'ticketsim/1'"),
    (_doc(format=1), "format=1 is not 'ticketsim/1'"),
    (_doc(remaining=..., ledger=...), "lacks the key(s) ledger, remaining"),
    (_doc(tickets=...), "lacks the key(s) tickets"),
    ("{}", "lacks the key(s) event, ledger, remaining, tickets"),
]
REJECTED_IDS = [
    "empty",
    "whitespace-only",
    "not-json",
    "truncated",
    "utf8-bom",
    "trailing-garbage",
    "two-documents",
    "top-level-empty-list",
    "top-level-list-of-db",
    "top-level-string",
    "top-level-null",
    "deeply-nested-lists",
    "deeply-nested-objects",
    "tickets-string",
    "tickets-true",
    "tickets-float",
    "tickets-null",
    "remaining-float",
    "remaining-false",
    "tickets-nan",
    "remaining-infinity",
    "tickets-minus-infinity",
    "event-not-string",
    "ledger-object",
    "ledger-string",
    "ledger-null",
    "ledger-entry-number",
    "ledger-entry-list",
    "ledger-entry-lacks-pid-time",
    "ledger-entry-lacks-buyer",
    "ledger-seat-bool",
    "ledger-seat-float",
    "ledger-pid-string",
    "ledger-buyer-empty",
    "ledger-buyer-number",
    "ledger-time-string",
    "ledger-time-bool",
    "wrong-format",
    "format-not-string",
    "missing-remaining-ledger",
    "missing-tickets",
    "empty-object",
]


@pytest.mark.parametrize(("text", "problem"), REJECTED, ids=REJECTED_IDS)
def test_parse_rejects_with_source_and_problem(text: str, problem: str) -> None:
    with pytest.raises(DbError) as caught:
        parse(text, source=SOURCE)
    error = caught.value
    assert error.path == SOURCE
    assert problem in error.reason
    assert str(error) == f"{SOURCE}: {error.reason}"
    assert isinstance(error, ValueError)


def test_parse_names_the_default_source() -> None:
    with pytest.raises(DbError, match=r"^<db>: the file is empty$"):
        parse("")


def test_parse_rejects_a_time_too_large_for_a_float() -> None:
    text = _doc_sale(time=10**400)
    with pytest.raises(DbError, match=r"ledger\[0\]\.time must be a number of seconds"):
        parse(text, source=SOURCE)


@pytest.mark.parametrize(
    "text",
    [
        _doc(x=0.25).replace("0.25", "1e400"),  # a key ticketsim keeps without reading it
        _doc_sale(time=0.25).replace("0.25", "-2.5e999"),
    ],
    ids=["unknown-key", "sale-time"],
)
def test_parse_rejects_a_fraction_too_large_for_a_float(text: str) -> None:
    """Python reads ``1e400`` as infinity, which ``json`` writes back as ``Infinity``:
    a db that no reader, ticketsim included, would take as JSON again."""
    with pytest.raises(DbError, match="is too large a number to keep as written"):
        parse(text, source=SOURCE)


def test_a_key_kept_for_another_program_may_nest_100_levels_and_no_deeper() -> None:
    """A buyer reads the db deep in its own calls: a value the parent could just read
    would exhaust the buyer's stack, so the parent refuses it first."""
    kept = parse(_doc(x=0).replace('"x": 0', '"x": ' + "[" * 100 + "]" * 100), source=SOURCE)
    assert len(kept.extra) == 1
    deep = _doc(x=0).replace('"x": 0', '"x": ' + "[" * 101 + "]" * 101)
    with pytest.raises(DbError, match=r'the key "x" nests deeper than the 100 levels'):
        parse(deep, source=SOURCE)


# --- read_text and load -----------------------------------------------------------------


def test_load_reads_what_write_atomic_wrote(db_path: Path) -> None:
    write_atomic(db_path, SOLD_TWO)
    assert load(db_path) == SOLD_TWO
    assert load(os.fspath(db_path)) == SOLD_TWO
    assert read_text(db_path) == dumps(SOLD_TWO)


def test_load_missing_file(db_path: Path) -> None:
    with pytest.raises(DbError, match="no such file") as caught:
        load(db_path)
    assert caught.value.path == os.fspath(db_path)
    assert str(caught.value).startswith(f"{db_path}: ")


def test_load_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DbError, match="is a directory") as caught:
        load(tmp_path)
    assert caught.value.path == os.fspath(tmp_path)


@pytest.mark.parametrize(
    "data",
    [b"\xff\xfe{\x00}\x00", b'{"event": "Caf\xe9"}', b"\x80"],
    ids=["utf16-bom", "latin1", "lone-continuation-byte"],
)
def test_read_text_rejects_non_utf8(db_path: Path, data: bytes) -> None:
    db_path.write_bytes(data)
    with pytest.raises(DbError, match="is not UTF-8 text") as caught:
        read_text(db_path)
    assert caught.value.path == os.fspath(db_path)


def test_load_rejects_a_utf8_bom_file(db_path: Path) -> None:
    db_path.write_bytes(b"\xef\xbb\xbf" + dumps(SOLD_TWO).encode())
    with pytest.raises(DbError, match="byte-order mark") as caught:
        load(db_path)
    assert caught.value.path == os.fspath(db_path)


def test_load_rejects_an_empty_file_naming_it(db_path: Path) -> None:
    db_path.write_bytes(b"")
    with pytest.raises(DbError, match="the file is empty") as caught:
        load(db_path)
    assert caught.value.path == os.fspath(db_path)


def test_read_text_refuses_a_file_over_the_limit(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = dumps(SOLD_TWO)
    monkeypatch.setattr(ticketsim.core.db, "MAX_DB_BYTES", len(text.encode()))
    db_path.write_text(text, encoding="utf-8")
    assert load(db_path) == SOLD_TWO  # exactly at the limit is fine
    db_path.write_text(text + " ", encoding="utf-8")
    with pytest.raises(DbError, match="larger than") as caught:
        read_text(db_path)
    assert caught.value.path == os.fspath(db_path)


# --- write_atomic and write_naive -------------------------------------------------------


def test_write_atomic_creates_a_parseable_file_and_no_temp(db_path: Path) -> None:
    write_atomic(db_path, SOLD_TWO)
    assert parse(db_path.read_text(encoding="utf-8")) == SOLD_TWO
    assert _folder_names(db_path.parent) == [db_path.name]


def test_write_atomic_replaces_the_old_db(db_path: Path) -> None:
    write_atomic(db_path, TicketDB.fresh(5))
    write_atomic(db_path, SOLD_TWO)
    assert db_path.read_text(encoding="utf-8") == dumps(SOLD_TWO)
    assert _folder_names(db_path.parent) == [db_path.name]


def test_write_atomic_failing_replace_keeps_old_db_and_leaves_no_temp(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_atomic(db_path, TicketDB.fresh(5))
    before = db_path.read_bytes()

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("ticketsim.core._files.commit", refuse)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(db_path, SOLD_TWO)
    assert db_path.read_bytes() == before
    assert _folder_names(db_path.parent) == [db_path.name]
    assert not [name for name in _folder_names(db_path.parent) if name.endswith(".tmp")]


def test_write_atomic_interrupted_mid_write_leaves_no_temp(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_atomic(db_path, TicketDB.fresh(5))
    before = db_path.read_bytes()

    def interrupt(db: TicketDB) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(ticketsim.core.db, "dumps", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(db_path, SOLD_TWO)
    assert db_path.read_bytes() == before
    assert _folder_names(db_path.parent) == [db_path.name]


def test_write_atomic_keeps_the_permission_bits(db_path: Path) -> None:
    write_atomic(db_path, TicketDB.fresh(5))
    db_path.chmod(0o640)
    write_atomic(db_path, SOLD_TWO)
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o640
    assert load(db_path) == SOLD_TWO


def test_write_atomic_through_a_symlink_updates_the_target(tmp_path: Path) -> None:
    real_dir = tmp_path / "real"
    link_dir = tmp_path / "links"
    real_dir.mkdir()
    link_dir.mkdir()
    target = real_dir / "tickets.json"
    link = link_dir / "tickets.json"
    write_atomic(target, TicketDB.fresh(5))
    target.chmod(0o640)
    link.symlink_to(target)

    write_atomic(link, SOLD_TWO)

    assert link.is_symlink()
    assert os.readlink(link) == os.fspath(target)
    assert load(target) == SOLD_TWO
    assert load(link) == SOLD_TWO
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _folder_names(real_dir) == ["tickets.json"]
    assert _folder_names(link_dir) == ["tickets.json"]


@pytest.mark.parametrize("db", [TicketDB.fresh(3), SOLD_TWO], ids=["fresh", "two-sold"])
def test_write_naive_writes_parseable_json(db_path: Path, db: TicketDB) -> None:
    write_naive(db_path, TicketDB.fresh(99))
    write_naive(db_path, db)
    assert parse(db_path.read_text(encoding="utf-8"), source=os.fspath(db_path)) == db
    assert _folder_names(db_path.parent) == [db_path.name]


# --- errors pickle ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "attributes"),
    [
        (DbError("/srv/tickets.json", "the file is empty"), {"path", "problem", "advice"}),
        (DbError("t.json", "no such file", "create it"), {"path", "problem", "advice"}),
        (ConfigError("buyers", 0, "choose from 1 to 1000"), {"name", "value", "advice"}),
        (ConfigError("delay", [1.5], "must be a number"), {"name", "value", "advice"}),
        (GuardTimeout("file lock", 2.5), {"what", "seconds"}),
        (NoVerdict("sale s-0000000a", "no host joined it", "join it"), {"what", "problem"}),
        (
            UnreadableBoard("redis://h/0", "holds a sale card ticketsim did not write", "open one"),
            {"store", "problem", "advice"},
        ),
    ],
    ids=[
        "db-error",
        "db-error-advised",
        "config-error",
        "config-error-list-value",
        "guard-timeout",
        "no-verdict",
        "unreadable-board",
    ],
)
def test_errors_survive_pickle(error: Exception, attributes: set[str]) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert back.args == error.args
    for name in attributes:
        assert getattr(back, name) == getattr(error, name)


def test_error_messages() -> None:
    assert str(DbError("p.json", "is a directory")) == "p.json: is a directory"
    advised = DbError("p.json", "is a directory", "give a file")
    assert (advised.reason, str(advised)) == (
        "is a directory; give a file",
        "p.json: " + advised.reason,
    )
    assert str(ConfigError("buyers", 0, "choose more")) == "buyers=0: choose more"
    assert str(ConfigError("strategy", "x", "choose")) == "strategy='x': choose"
    assert str(GuardTimeout("lock", 2.5)) == "gave up waiting for the lock after 2.5 s"
    assert isinstance(GuardTimeout("lock", 1.0), TimeoutError)
    assert isinstance(ConfigError("a", 1, "b"), ValueError)


@given(taken=st.sets(st.integers(1, 40), max_size=20), n=st.integers(0, 30))
def test_the_nth_free_seat_skips_the_seats_taken(taken: set[int], n: int) -> None:
    free = [seat for seat in range(1, 100) if seat not in taken]
    assert ticketsim.core.db.nth_free_seat(tuple(sorted(taken)), n) == free[n]


@pytest.mark.parametrize("swap", [True, False], ids=["swapped", "replaced"])
def test_an_atomic_write_over_a_db_swaps_it_in_or_replaces_it(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, swap: bool
) -> None:
    """Where renameat2 can swap the files it does (no ext4 flush); elsewhere os.replace."""
    if not swap:
        monkeypatch.setattr("ticketsim.core._files._renameat2", lambda: None)
    replaced: list[str] = []
    real = os.replace

    def replace(source: str, target: str) -> None:
        replaced.append(target)
        real(source, target)

    monkeypatch.setattr(os, "replace", replace)
    write_atomic(db_path, TicketDB.fresh(5))  # a new db: there is nothing to swap with
    write_atomic(db_path, SOLD_TWO)
    assert load(db_path) == SOLD_TWO
    assert _folder_names(db_path.parent) == [db_path.name]
    expect_swap = swap and ticketsim.core._files._renameat2() is not None
    assert len(replaced) == (1 if expect_swap else 2)


@pytest.mark.parametrize(
    "text", [_doc(event="Gala\ud800"), _doc_sale(buyer="buyer-\udcff")], ids=["event", "buyer"]
)
def test_parse_rejects_half_a_character_no_store_can_keep(text: str) -> None:
    """JSON's "\\ud800" is valid JSON, but the lone surrogate it makes cannot be written
    as UTF-8, to a file, a database or a terminal."""
    with pytest.raises(DbError, match="holds half a character, which no store keeps"):
        parse(text, source=SOURCE)
