"""``--partition HOST@read``: a partition that lands where it hurts, every time.

The first buyer of the host to be cut off reads inside its critical section (holding
whatever its strategy holds) and waits there until ticketsim has cut its host off;
every other host's buyers wait at their first step until then. So the cut always
catches a holder in the middle of its purchase, however the processes are scheduled: a
forced interleaving, not a race against a timer. The handshake needs a folder every
host can see: the hosts of ``run --hosts``, all on this machine.

The handshake is two files in a folder ticketsim made for the sale: ``hold``, made by
the buyer (``O_EXCL``: only the first one), and ``cut``, made by ticketsim once the
link is down. Every wait is bounded by the buyer's timeout.

Buyer processes unpickle this pacer, so this module uses the standard library only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Final

from ticketsim.core.frozen import frozen
from ticketsim.sale.steps import Pacer

#: How often a waiting buyer looks for the ``cut`` file.
_POLL_S: Final = 0.005
HOLD, CUT = "hold", "cut"


def wait_for(path: Path, timeout: float) -> bool:
    """Wait for ``path`` to exist, at most ``timeout`` seconds; whether it does."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_S)
    return True


@frozen
class CutAfterRead(Pacer):
    """The pacer of every buyer of a sale with ``--partition HOST@read``; ``mine``:
    the buyer runs on the host to be cut off."""

    folder: str
    mine: bool

    def before_check(self, number: int, timeout: float) -> None:
        del number
        if not self.mine:
            wait_for(Path(self.folder, CUT), timeout)

    def after_read(self, number: int, timeout: float) -> None:
        if not self.mine:
            return
        try:
            handle = os.open(Path(self.folder, HOLD), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return  # another buyer of this host is the one caught
        try:
            os.write(handle, str(number).encode())
        finally:
            os.close(handle)
        wait_for(Path(self.folder, CUT), timeout)
