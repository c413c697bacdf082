"""The asyncio ticket office serves its requests in turn, and skips one whose buyer
has given up waiting (its answer is already settled)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ticketsim.core import db as dbfile
from ticketsim.sale.steps import BuyerSpec
from ticketsim.sale.stores import FileStore
from ticketsim.sale.tasks import TaskOfficeTools

if TYPE_CHECKING:
    from pathlib import Path


def _nothing(*args: Any, **kwargs: Any) -> None:
    del args, kwargs


def test_the_office_skips_a_buyer_that_gave_up_and_serves_the_next(db_path: Path) -> None:
    dbfile.write_atomic(db_path, dbfile.TicketDB.fresh(2))

    async def sale() -> int | None:
        office = TaskOfficeTools(FileStore(str(db_path)))
        office.prepare()
        serving = asyncio.ensure_future(office._serve())
        loop = asyncio.get_running_loop()
        gave_up: asyncio.Future[int | None] = loop.create_future()
        gave_up.cancel()  # as wait_for leaves it when its buyer's timeout runs out
        answer: asyncio.Future[int | None] = loop.create_future()
        await office.requests.put((BuyerSpec(1, 0.0, 5.0), _nothing, gave_up))
        await office.requests.put((BuyerSpec(2, 0.0, 5.0), _nothing, answer))
        try:
            return await asyncio.wait_for(answer, 5)
        finally:
            serving.cancel()

    assert asyncio.run(sale()) == 1  # the first seat: the buyer who gave up got none
    assert dbfile.load(db_path).remaining == 1
