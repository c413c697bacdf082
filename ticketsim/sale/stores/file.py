"""The db file is the shared state: every sale is written to it as it is made.

Buyer processes unpickle these stores, so this module uses the standard library only.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Final

from ticketsim.core import db as dbfile
from ticketsim.core._files import remove_leftovers
from ticketsim.core.events import Step
from ticketsim.core.frozen import field, frozen
from ticketsim.errors import DbError
from ticketsim.sale.stores import _ledger
from ticketsim.sale.stores._ledger import WholeSeen
from ticketsim.sale.stores.base import Store

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ticketsim.core.events import Recorder
    from ticketsim.sale.stores.base import Seen

#: How long a read keeps finding the db half written before the buyer gives up (an
#: ``error``, outcome unknown). A torn read lasts as long as one unprotected write: well
#: under a millisecond, unless the writer is preempted in the middle of it, which on a
#: busy machine takes tens or hundreds of milliseconds. A db still torn after this long
#: was most likely left unreadable, and reading it longer would only keep the buyer
#: from its outcome. A count of quick re-reads (100, 0.5 ms apart) gave up on writers
#: that were only slow; a sale's own stall guard caps this at half its timeout.
TORN_GIVE_UP_S: Final = 1.0
#: The first pause between those re-reads: long enough for a writer that is running to
#: finish its ``json.dump``. Each pause doubles up to ``TORN_BACKOFF_MAX_S``, so a writer
#: preempted mid-write is waited for without a torn event every half millisecond.
TORN_BACKOFF_S: Final = 0.0005
TORN_BACKOFF_MAX_S: Final = 0.02


def torn_pauses(seconds: float) -> Iterator[float]:
    """The pauses between the re-reads of a torn db, for ``seconds`` of them in all."""
    pause, slept = TORN_BACKOFF_S, 0.0
    while slept < seconds:
        yield pause
        slept += pause
        pause = min(2 * pause, TORN_BACKOFF_MAX_S)


@frozen
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


@frozen
class NaiveFileStore(Store):
    """The tutorial's ``open(path, "w")`` + ``json.dump``, which can be seen half done:
    a read that finds a half-written db records it as ``torn`` and reads again, for
    ``give_up_s`` at most."""

    path: str
    give_up_s: float = TORN_GIVE_UP_S
    #: The db as it was (inode, size, modification time) when a read of this process
    #: gave up on it. A crew's buyers run one after another in a process: the next one
    #: that finds the db torn and unchanged since gives up at once, instead of waiting
    #: out the same bound again, and again for every buyer of the crew.
    abandoned: list[tuple[int, int, int]] = field(default_factory=list, compare=False, repr=False)

    def read(self, record: Recorder) -> WholeSeen:
        started, torn, pauses = 0.0, 0, torn_pauses(self.give_up_s)
        while True:
            try:
                return WholeSeen.of(dbfile.load(self.path))
            except DbError as exc:
                record(Step.TORN, note=exc.reason)
                torn += 1
            if torn == 1:
                # The bound runs from the first torn read as recorded: from before the
                # read, a preempted buyer gave up less than the bound after it.
                started = time.monotonic()
            state = _state(self.path)
            if state is not None and state in self.abandoned:
                raise DbError(
                    self.path,
                    "still half written, unchanged since another buyer of this process "
                    "gave up on it; the buyer gave up",
                )
            pause = next(pauses, None)
            if pause is None or time.monotonic() - started >= self.give_up_s:
                self.abandoned[:] = [] if state is None else [state]
                raise DbError(
                    self.path,
                    f"still half written after {torn} torn read(s) over "
                    f"{time.monotonic() - started:.1f} s; the buyer gave up",
                )
            time.sleep(pause)

    def sell(self, seen: Seen, sale: dbfile.Sale) -> None:
        if not isinstance(seen, WholeSeen):
            raise TypeError(f"a naive file store sells what it read whole, not {seen!r}")
        dbfile.write_naive(self.path, seen.db.sell(sale))


def _state(path: str) -> tuple[int, int, int] | None:
    """What tells one version of the file at ``path`` from another, if it is there."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_ino, found.st_size, found.st_mtime_ns
