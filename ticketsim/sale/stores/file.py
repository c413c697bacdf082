"""The db file is the shared state: every sale is written to it as it is made.

Buyer processes unpickle these stores, so this module uses the standard library only.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from ticketsim.core import db as dbfile
from ticketsim.core._files import remove_leftovers
from ticketsim.core.events import Step
from ticketsim.errors import DbError
from ticketsim.sale.stores import _ledger
from ticketsim.sale.stores._ledger import WholeSeen
from ticketsim.sale.stores.base import Store

if TYPE_CHECKING:
    from ticketsim.core.events import Recorder
    from ticketsim.sale.stores.base import Seen

#: How often a read re-reads a db it found half written before it gives up.
TORN_RETRIES: Final = 1000
#: The first pause between those re-reads: long enough for a writer that is running to
#: finish its ``json.dump``. Each pause doubles up to ``TORN_BACKOFF_MAX_S``, so a writer
#: preempted mid-write is waited for without a torn event every half millisecond.
TORN_BACKOFF_S: Final = 0.0005
TORN_BACKOFF_MAX_S: Final = 0.02


@dataclass(frozen=True)
class FileStore(Store):
    """Every write is atomic, so a reader sees the db before a sale or after it, never
    half done: a bad db is an error here, not a torn read. A sale reads and writes only
    what changed (:mod:`ticketsim.sale.stores._ledger`)."""

    path: str
    #: This process's memory of the ledger, so that a read decodes only new sales.
    index: _ledger.LedgerIndex = field(
        default_factory=_ledger.LedgerIndex, compare=False, repr=False
    )
    #: The old dbs this process's writes swapped out, removed by :meth:`tidy`.
    leftovers: list[str] = field(default_factory=list, compare=False, repr=False)

    def read(self, record: Recorder) -> Seen:
        del record  # an atomic write is never seen half done
        return _ledger.read_for_sale(self.path, self.index)

    def prepare(self) -> None:
        # A process's first read decodes the whole ledger into its index (the later ones
        # only what was appended since), and its first read and write run code and touch
        # memory for the first time: pay for that here rather than inside the section.
        _ledger.rehearse_sale(self.path, self.index, os.getpid())

    def peek(self, record: Recorder) -> int:
        del record
        return _ledger.read_remaining(self.path)

    def sell(self, seen: Seen, sale: dbfile.Sale) -> None:
        _ledger.append_sale(self.path, seen, sale, self.index, self.leftovers)

    def tidy(self) -> None:
        remove_leftovers(self.leftovers)


@dataclass(frozen=True)
class NaiveFileStore(Store):
    """The tutorial's ``open(path, "w")`` + ``json.dump``, which can be seen half done:
    a read that finds a half-written db records it as ``torn`` and reads again."""

    path: str

    def read(self, record: Recorder) -> WholeSeen:
        pause = TORN_BACKOFF_S
        for _ in range(TORN_RETRIES):
            try:
                return WholeSeen.of(dbfile.load(self.path))
            except DbError as exc:
                record(Step.TORN, note=exc.reason)
            time.sleep(pause)
            pause = min(2 * pause, TORN_BACKOFF_MAX_S)
        raise DbError(self.path, f"still half written after {TORN_RETRIES} reads")

    def sell(self, seen: Seen, sale: dbfile.Sale) -> None:
        if not isinstance(seen, WholeSeen):
            raise TypeError(f"a naive file store sells what it read whole, not {seen!r}")
        dbfile.write_naive(self.path, seen.db.sell(sale))
