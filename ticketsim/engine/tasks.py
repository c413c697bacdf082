"""Buyers as asyncio tasks (``--workers asyncio``): one event loop, in a thread of
ticketsim's own, runs every buyer task.

The loop runs in a thread so that the parent's side of the sale (the gate, the events'
pipe, the stall guard, Ctrl-C) stays exactly as it is for processes. The gate is the
same pipe: the loop watches it with ``add_reader`` and opens an ``asyncio.Event``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any, Final

from ticketsim.engine.crews import Crew
from ticketsim.sale import _signals
from ticketsim.sale.tasks import TaskEnding, TaskPacer, run_task_buyer

if TYPE_CHECKING:
    from collections.abc import Collection

    from ticketsim.sale.gate import PipeGate
    from ticketsim.sale.steps import BuyerSpec
    from ticketsim.sale.tasks import TaskTools

#: How long ending the loop may take once its tasks are told to stop.
STOP_S: Final = 5.0
#: How often the tasks still running are cancelled again meanwhile.
CANCEL_AGAIN_S: Final = 0.1


class TaskCrew(Crew):
    """One ``asyncio`` task per buyer, named ``buyer-N``, on one loop."""

    def __init__(self, pacer: TaskPacer | None = None) -> None:
        self.pacer = pacer or TaskPacer()
        self.specs: list[BuyerSpec] = []
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self._started = threading.Event()
        #: Set when ticketsim ends the sale early: it cuts a blocking race window short.
        self.ended = threading.Event()
        #: Set once the parent ends the sale: what the loop meets after that (the gate's
        #: pipe closed under it by a Ctrl-C during the start) is no bug.
        self._ending = False

    def start(self, specs: list[BuyerSpec], args: tuple[Any, ...]) -> None:
        tools, channel, gate, pacer = args
        if isinstance(pacer, TaskPacer):  # a caller's own (run_sale's pacer=)
            self.pacer = pacer
        self.pacer = TaskEnding(self.pacer, self.ended)
        self.specs = specs
        thread = threading.Thread(
            target=self._run,
            args=(tools, channel, gate),
            name="ticketsim-event-loop",
            daemon=True,  # a loop blocked by a task must not keep ticketsim from exiting
        )
        # A Ctrl-C between the start and the record would leave end() a thread it cannot
        # join, or none to stop; held, it lands once the loop is known.
        with _signals.held():
            thread.start()
            self.thread = thread
        self._started.wait(STOP_S)

    def _run(self, tools: TaskTools, channel: Any, gate: PipeGate) -> None:
        try:
            asyncio.run(self._sale(tools, channel, gate))
        except Exception:
            if not self._ending:
                raise

    async def _sale(self, tools: TaskTools, channel: Any, gate: PipeGate) -> None:
        self.loop = asyncio.get_running_loop()
        opened = asyncio.Event()
        fd = gate.conn.fileno()

        def open_gate() -> None:
            self.loop.remove_reader(fd)  # type: ignore[union-attr]
            opened.set()

        self.loop.add_reader(fd, open_gate)
        with contextlib.suppress(Exception):  # it fails again in each buyer's first step
            tools.prepare()
        helpers = [asyncio.create_task(helper) for helper in tools.helpers()]
        for spec in self.specs:
            task = asyncio.create_task(
                run_task_buyer(spec, tools, channel, opened, self.pacer), name=spec.name
            )
            self.tasks[spec.number] = task
        self._started.set()
        if self._ending:  # ended while the tasks were made: end() may not have seen them
            for task in self.tasks.values():
                task.cancel()
        try:
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        finally:
            self.loop.remove_reader(fd)
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    @property
    def at_once(self) -> int:
        return len(self.specs)

    def alive(self, ended: Collection[int] = frozenset()) -> bool:
        if self.thread is None or not self.thread.is_alive():
            return False
        return any(not t.done() for n, t in list(self.tasks.items()) if n not in ended)

    def end(self, *, at_once: bool) -> set[int]:
        self._ending = True
        thread, loop = self.thread, self.loop
        if thread is None:
            return set()
        thread.join(0.0 if at_once else STOP_S)
        unfinished = {n for n, t in list(self.tasks.items()) if not t.done()}
        self.ended.set()  # after the count: those it stops were ended by ticketsim
        deadline = time.monotonic() + STOP_S
        while thread.is_alive() and loop is not None and time.monotonic() < deadline:
            # Again and again: a cancel can be lost (asyncio.wait_for in 3.11 returns a
            # lock granted in the same turn). A task blocking the loop delays them all.
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                for task in list(self.tasks.values()):
                    if not task.done():
                        loop.call_soon_threadsafe(task.cancel)
            thread.join(CANCEL_AGAIN_S)
        return unfinished

    def exit_codes(self) -> tuple[int | None, ...]:
        return ()
