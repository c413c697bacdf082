"""A buyer as an asyncio task: the same steps, events and stores as a buyer process,
with guards, a pacer and a ticket office of asyncio's own.

asyncio switches tasks only at an ``await``. So whether an unprotected buyer can
oversell depends on whether an ``await`` sits between its read and its write
(:func:`take_ticket`'s ``yields``); a ``multiprocessing`` or file lock would block
the one thread every task runs on, which is why these guards are asyncio's.

Runs inside ticketsim's process on the buyers' event loop; standard library only, as
every module a buyer runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from ticketsim.core.db import Sale
from ticketsim.core.events import Step, buyer_name
from ticketsim.core.frozen import field, frozen
from ticketsim.errors import GuardTimeout, SaleEnded
from ticketsim.sale.channel import Channel, StepRecorder

if TYPE_CHECKING:
    import threading
    from collections.abc import AsyncIterator

    from ticketsim.core.events import Recorder
    from ticketsim.sale.steps import BuyerSpec
    from ticketsim.sale.stores import Store


class TaskPacer:
    """Hooks that force an interleaving of tasks. This one forces nothing.

    ``after_read`` is called at the first ``await`` after the read: between the read
    and the write when the buyer awaits there, after the write when it does not."""

    async def after_read(self, number: int, timeout: float) -> None:
        del number, timeout

    async def done(self, number: int) -> None:
        del number

    def race_window(self, seconds: float) -> None:
        """A race window that does not await: it blocks the loop, and every task on it."""
        time.sleep(seconds)

    def stop_if_ended(self) -> None:
        """Raise :class:`SaleEnded` if ticketsim has ended the sale (this one never does)."""


@frozen
class TaskEnding(TaskPacer):
    """``pacer``'s hooks, with a blocking race window that ends once ``ended`` is set:
    a task is cancelled when ticketsim ends the sale early, but not while a blocking
    sleep holds the loop, so that sleep is a wait on ``ended`` instead, and a task that
    wakes from it to find the sale ended raises :class:`SaleEnded` instead of writing."""

    pacer: TaskPacer
    ended: threading.Event

    async def after_read(self, number: int, timeout: float) -> None:
        await self.pacer.after_read(number, timeout)

    async def done(self, number: int) -> None:
        await self.pacer.done(number)

    def race_window(self, seconds: float) -> None:
        self.ended.wait(seconds)
        self.stop_if_ended()

    def stop_if_ended(self) -> None:
        # A cancel can be lost (asyncio.wait_for in 3.11 returns a lock granted in the
        # same turn), and tasks woken before it run first: each looks for itself.
        if self.ended.is_set():
            raise SaleEnded("ticketsim ended the sale before this buyer wrote")


class TaskBarrier:
    """``parties`` tasks wait until all have arrived (``asyncio.Barrier`` is 3.11's)."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.everyone = asyncio.Event()

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived >= self.parties:
            self.everyone.set()
        await self.everyone.wait()


@frozen
class TaskLockstep(TaskPacer):
    """Every task that reaches an ``await`` after its read waits there for all the
    others, then they go on one at a time in buyer order (``1r 2r .. 1w 2w ..`` when
    each awaits between its read and its write)."""

    barrier: TaskBarrier
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    #: The buyer whose turn it is to go on, in a cell the tasks share.
    turn: list[int] = field(default_factory=lambda: [1])

    async def after_read(self, number: int, timeout: float) -> None:
        await asyncio.wait_for(self._after_read(number), timeout)

    async def _after_read(self, number: int) -> None:
        await self.barrier.wait()
        async with self.changed:
            await self.changed.wait_for(lambda: self.turn[0] == number)

    async def done(self, number: int) -> None:
        async with self.changed:
            self.turn[0] = number + 1
            self.changed.notify_all()


async def take_ticket(
    store: Store,
    number: int,
    window: float,
    record: Recorder,
    pacer: TaskPacer,
    timeout: float,
    *,
    yields: bool,
) -> int | None:
    """Read, decide, wait out the race window, write; with ``yields`` the window is
    awaited (other tasks run in it), without, it is a blocking sleep (nothing runs)."""
    pacer.stop_if_ended()
    seen = store.read(record)
    record(Step.READ, value=seen.remaining)
    try:
        if yields:
            await pacer.after_read(number, timeout)
        seat = None
        if seen.remaining > 0:
            if yields:
                # Even with no window: sleep(0) is an await, and every other task ready to
                # run runs in it. That is the lesson, so it is there whatever --delay says.
                await asyncio.sleep(window)
            elif window:
                pacer.race_window(window)  # blocks the loop: no other task runs until it ends
            pacer.stop_if_ended()
            store.sell(seen, Sale(buyer_name(number), seen.seat, os.getpid(), time.time()))
            record(Step.WRITE, value=seen.remaining - 1, seat=seen.seat)
            seat = seen.seat
        if not yields:
            await pacer.after_read(number, timeout)  # the first await after the read
        return seat
    finally:
        await pacer.done(number)


class TaskGuard(ABC):
    """Who may run the read-decide-write section, in asyncio's terms."""

    what = "asyncio"

    @abstractmethod
    async def _acquire(self) -> None: ...

    @abstractmethod
    def _release(self) -> None: ...

    @contextlib.asynccontextmanager
    async def hold(self, record: Recorder, timeout: float) -> AsyncIterator[None]:
        """As :meth:`ticketsim.sale.guards.Guard.hold`: a bounded wait, recorded."""
        record(Step.WAIT)
        try:
            await asyncio.wait_for(self._acquire(), timeout)
        except asyncio.TimeoutError:
            raise GuardTimeout(self.what, timeout) from None
        try:
            record(Step.ENTER)
            yield
        finally:
            try:
                record(Step.LEAVE)
            finally:
                self._release()


class NoTaskGuard(TaskGuard):
    """No protection, and no wait, entry or leave recorded."""

    @contextlib.asynccontextmanager
    async def hold(self, record: Recorder, timeout: float) -> AsyncIterator[None]:
        del record, timeout
        yield

    async def _acquire(self) -> None:
        return

    def _release(self) -> None:
        return


@frozen
class TaskLockGuard(TaskGuard):
    """An ``asyncio.Lock`` or ``asyncio.Semaphore(1)``."""

    lock: asyncio.Lock | asyncio.Semaphore
    what: str = "asyncio.Lock"

    async def _acquire(self) -> None:
        await self.lock.acquire()

    def _release(self) -> None:
        self.lock.release()


@frozen
class TaskTools(ABC):
    """What one buyer task needs from its strategy."""

    store: Store

    def prepare(self) -> None:
        self.store.prepare()

    def helpers(self) -> tuple[Any, ...]:
        """Coroutines to run beside the buyers for the sale (the office's writer)."""
        return ()

    def end_sale(self, timeout: float) -> None:
        """As :meth:`ticketsim.sale.steps.Tools.end_sale`: a task office's writer is a
        task, ended with the buyers."""
        del timeout

    @abstractmethod
    async def purchase(self, spec: BuyerSpec, record: Recorder, pacer: TaskPacer) -> int | None: ...


@frozen
class GuardedTaskTools(TaskTools):
    """The buyer task runs the critical section itself, under ``guard``; with
    ``yields``, its race window is an ``await``."""

    guard: TaskGuard
    yields: bool = True

    async def purchase(self, spec: BuyerSpec, record: Recorder, pacer: TaskPacer) -> int | None:
        try:
            async with self.guard.hold(record, spec.timeout):
                return await take_ticket(
                    self.store,
                    spec.number,
                    spec.window,
                    record,
                    pacer,
                    spec.timeout,
                    yields=self.yields,
                )
        finally:
            self.store.tidy()  # the old db its write swapped out, once the lock is let go


@frozen
class TaskOfficeTools(TaskTools):
    """One writer task owns the db and serves the buyers' requests from an
    ``asyncio.Queue``, one at a time: nothing needs a lock."""

    requests: asyncio.Queue[tuple[BuyerSpec, Recorder, asyncio.Future[int | None]]] = field(
        default_factory=asyncio.Queue
    )

    def helpers(self) -> tuple[Any, ...]:
        return (self._serve(),)

    async def _serve(self) -> None:
        while True:
            spec, record, answer = await self.requests.get()
            if answer.done():  # its buyer gave up waiting: it is told nothing, sold nothing
                continue
            try:
                seat = await take_ticket(
                    self.store,
                    spec.number,
                    spec.window,
                    record,
                    TaskPacer(),
                    spec.timeout,
                    yields=True,
                )
            except Exception as exc:  # the buyer's to record, not the office's
                if not answer.done():
                    answer.set_exception(exc)
            else:
                if not answer.done():  # it gave up while the office sold: the sale stands
                    answer.set_result(seat)
            finally:
                self.store.tidy()  # the old db its write swapped out

    async def purchase(self, spec: BuyerSpec, record: Recorder, pacer: TaskPacer) -> int | None:
        answer: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        await self.requests.put((spec, record, answer))
        try:
            seat = await asyncio.wait_for(answer, spec.timeout)
        except asyncio.TimeoutError:
            raise GuardTimeout("ticket office's answer", spec.timeout) from None
        await pacer.after_read(spec.number, spec.timeout)
        await pacer.done(spec.number)
        return seat


async def run_task_buyer(
    spec: BuyerSpec, tools: TaskTools, channel: Channel, gate: asyncio.Event, pacer: TaskPacer
) -> None:
    """The body of a buyer task: :func:`ticketsim.sale.buyer.run_buyer`'s steps."""
    record = StepRecorder(channel, spec.number, os.getpid())
    try:
        record(Step.READY)
        try:
            await asyncio.wait_for(gate.wait(), spec.opens_within)
        except asyncio.TimeoutError:
            record(Step.ERROR, note=f"the sale did not open within {spec.opens_within:g} s")
            return
        pacer.stop_if_ended()
        record(Step.CHECK, value=tools.store.peek(record))
        seat = await tools.purchase(spec, record, pacer)
        if seat is None:
            record(Step.FAIL)
        else:
            record(Step.OK, seat=seat)
    except (asyncio.CancelledError, SaleEnded):
        raise  # ticketsim ended the sale: the history says so with a lost event
    except Exception as exc:  # the history, not stderr, must say why
        with contextlib.suppress(OSError):
            record(Step.ERROR, note=f"{type(exc).__name__}: {exc}", error=type(exc).__name__)
