"""Someone else's checkout, which knows nothing of ticketsim: 4 threads sell 2 tickets
and it writes its history in ticketsim's format (docs/history.md). With ``--racy``
every thread reads before any writes (a barrier forces it); else a lock guards it."""

import json
import os
import sys
import threading
import time
from typing import Any

path, racy = sys.argv[1], "--racy" in sys.argv
shop: dict[str, Any] = {"remaining": 2, "sold": []}
lines: list[dict[str, Any]] = []
guard, all_read = threading.Lock(), threading.Barrier(4)


def note(buyer: int, step: str, kind: str, **more: int) -> None:
    at = {"t": time.monotonic(), "pid": os.getpid()}
    lines.append({"type": kind, "buyer": buyer, "step": step, **at, **more})


def buy(buyer: int) -> None:
    note(buyer, "ready", "invoke")
    with threading.Lock() if racy else guard:
        seen = shop["remaining"]
        note(buyer, "read", "step", value=seen)
        if racy:
            all_read.wait()
        if seen <= 0:
            note(buyer, "fail", "fail")
            return
        shop["remaining"], seat = seen - 1, 3 - seen
        sale = {"buyer": f"buyer-{buyer}", "seat": seat, "pid": os.getpid(), "time": time.time()}
        shop["sold"].append(sale)
        note(buyer, "write", "step", value=seen - 1, seat=seat)
    note(buyer, "ok", "ok", seat=seat)


threads = [threading.Thread(target=buy, args=(n,)) for n in range(1, 5)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
head = {"type": "sale", "format": "ticketsim-history/2", "system": "a checkout", "buyers": 4}
head |= {"tickets": 2, "safe": True}
final = {"format": "ticketsim/1", "event": "Gig", "tickets": 2, "ledger": shop["sold"]}
final["remaining"] = shop["remaining"]
rows = [head, *sorted(lines, key=lambda row: row["t"]), {"type": "final", "db": final}]
with open(path, "w", encoding="utf-8") as out:
    out.writelines(json.dumps(row) + "\n" for row in rows)
