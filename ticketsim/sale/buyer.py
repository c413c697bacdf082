"""One buyer: the steps it takes, run inside its own process.

This is the tutorial's ``search`` then ``get``, split into named steps that are each
sent to the parent as an :class:`~ticketsim.core.events.Event`. The buyer never prints;
whatever happens to it, including a crash, ends up in the history. How it buys (under
a guard, or at the ticket office) is its :class:`~ticketsim.sale.steps.Tools`' business.

Everything a buyer uses arrives as an argument (no module state), so the same code
runs under ``fork``, ``spawn`` and ``forkserver``. This module, and everything it
imports, uses the standard library (and ``filelock``) only, so that starting a buyer
under ``spawn`` stays cheap.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import signal
import time
from typing import TYPE_CHECKING, Any, Final, Protocol

from ticketsim.core.events import Step
from ticketsim.core.frozen import frozen
from ticketsim.errors import Conflict, GuardTimeout
from ticketsim.sale import _signals
from ticketsim.sale.channel import Channel, StepRecorder
from ticketsim.sale.gate import PipeGate
from ticketsim.sale.steps import BuyerSpec as BuyerSpec  # noqa: PLC0414 - re-exported
from ticketsim.sale.steps import Pacer as Pacer  # noqa: PLC0414 - re-exported

if TYPE_CHECKING:
    from ticketsim.sale.steps import Tools


class Gate(Protocol):
    """The moment the sale opens: a ``multiprocessing.Event``."""

    def wait(self, timeout: float | None = ...) -> bool: ...


@frozen
class Lockstep(Pacer):
    """Every buyer reads, then they write one at a time in buyer order.

    This is the race made certain and repeatable (schedule ``1r 2r .. 1w 2w ..``):
    each buyer waits at a barrier sized to the number of buyers right after its
    read, then for its turn to write. Writes are taken in turn because unprotected
    writes that overlap in time can interleave their bytes, and which of them wins
    would be luck. Only unguarded strategies can pass the barrier: under a lock the
    second buyer cannot read until the first has written.
    """

    barrier: Any
    #: ``multiprocessing.Value('i')``: the number of the buyer whose turn it is to write.
    turn: Any
    #: ``multiprocessing.Condition`` that guards ``turn``.
    changed: Any

    def after_read(self, number: int, timeout: float) -> None:
        self.barrier.wait(timeout)
        self.wait_turn(number, timeout)

    def wait_turn(self, number: int, timeout: float) -> None:
        """Wait until it is buyer ``number``'s turn to write."""
        with self.changed:
            if not self.changed.wait_for(lambda: self.turn.value == number, timeout):
                raise TimeoutError(f"buyer {number} never got its turn to write")

    def done(self, number: int) -> None:
        with self.changed:
            self.turn.value = number + 1
            self.changed.notify_all()

    def abort(self) -> None:
        # Those who wait for their turn to write are let go in turn by the others.
        self.barrier.abort()


#: Where a :class:`Killer` can strike, as its ``plan`` and ``killed`` cells number them.
KILL_POINTS: Final = {
    1: "before its check",
    2: "inside its critical section, just after its read",
    3: "at the end of its critical section (after its write, if it bought), "
    "before learning its outcome",
}
_BEFORE_CHECK, _IN_SECTION, _AFTER_WRITE = KILL_POINTS


@frozen
class Killer(Pacer):
    """SIGKILL buyers at chosen points of their purchase: fault injection.

    ``plan[n]`` is the point (a key of :data:`KILL_POINTS`, 0 for none) at which buyer
    ``n`` dies; with ``first_holder``, the first buyer to reach its critical section
    dies there, whoever it is. ``killed`` (a ``multiprocessing.Array('i')`` of
    ``buyers + 1`` cells) records where each victim died; cell 0 says whether the
    first holder has been taken.

    What a kill inside the critical section costs depends on the strategy: a
    ``multiprocessing.Lock`` has no owner, so nobody ever releases it and the sale
    stalls; the kernel releases a file lock when its holder dies.
    """

    plan: tuple[int, ...]
    killed: Any
    first_holder: bool = False

    def _die(self, number: int, point: int) -> None:
        self.killed[number] = point
        os.kill(os.getpid(), signal.SIGKILL)

    def before_check(self, number: int, timeout: float) -> None:
        if self.plan[number] == _BEFORE_CHECK:
            self._die(number, _BEFORE_CHECK)

    def after_read(self, number: int, timeout: float) -> None:
        if self.first_holder:
            with self.killed.get_lock():
                if self.killed[0]:
                    return
                self.killed[0] = number
            self._die(number, _IN_SECTION)
        if self.plan[number] == _IN_SECTION:
            self._die(number, _IN_SECTION)

    def done(self, number: int) -> None:
        if self.plan[number] == _AFTER_WRITE:
            self._die(number, _AFTER_WRITE)


#: How often the resumer of a paused holder sends SIGCONT until the holder says it runs:
#: a SIGCONT sent before the holder's SIGSTOP would be lost.
RESUME_POLL_S: Final = 0.01


@frozen
class PauseHolder(Pacer):
    """SIGSTOP the first buyer to read inside its critical section, and SIGCONT it once
    every other buyer has its outcome (or after its timeout): a holder paused (by a GC,
    a VM migration, a slow disk) for longer than anything it holds is meant to last.

    A lock with a lease expires meanwhile and another buyer takes it; the paused buyer
    then writes what it read before. The resumer is a child forked by the buyer itself,
    so nothing in the parent has to know which buyer it is.
    """

    #: ``Value('i')``: the paused buyer (0: none yet), and whether it runs again.
    paused: Any
    resumed: Any
    #: ``Value('i')``: buyers with an outcome; ``Condition`` guarding it.
    finished_count: Any
    changed: Any
    buyers: int

    def after_read(self, number: int, timeout: float) -> None:
        with self.paused.get_lock():
            if self.paused.value or self.buyers < 2:
                return
            self.paused.value = number
        pid = os.getpid()
        child = os.fork()
        if child == 0:  # the resumer: wait for the others, then wake the holder
            try:
                _signals.tie_to_parent(pid)  # never outlives the holder ticketsim ends
                with self.changed:
                    self.changed.wait_for(
                        lambda: self.finished_count.value >= self.buyers - 1, timeout
                    )
                deadline = time.monotonic() + timeout
                while not self.resumed.value and time.monotonic() < deadline:
                    os.kill(pid, signal.SIGCONT)
                    time.sleep(RESUME_POLL_S)
            finally:
                os._exit(0)
        os.kill(pid, signal.SIGSTOP)
        self.resumed.value = 1
        os.waitpid(child, 0)

    def finished(self, number: int, error: BaseException | None) -> None:
        del number, error
        with self.changed:
            self.finished_count.value += 1
            self.changed.notify_all()


#: What a buyer tells the conductor about the step it was granted.
DONE: Final = 1  #: the step ran
BLOCKED: Final = 2  #: the step would wait for a lock another buyer holds; it did not run
GONE: Final = 3  #: the buyer ended early (an error); it has no steps left


@frozen
class Conductor(Pacer):
    """Controlled mode: a buyer takes each step only when the parent grants it.

    A buyer's steps are ``r`` (check, lock, read) and ``w`` (decide, write, unlock,
    outcome); see :mod:`ticketsim.core.schedule`. The parent grants one step at a time with
    :meth:`grant` and waits for the buyer's report. A buyer never waits for a lock in
    this mode: if the lock is taken, it reports ``BLOCKED`` instead of deadlocking the
    parent, which is waiting for it.
    """

    #: ``Value('i')``: the buyer whose step is granted (0: none).
    turn: Any
    #: ``Value('i')``: the granted buyer's report (0 until it makes one).
    status: Any
    #: ``Condition`` guarding both.
    changed: Any

    def _await_turn(self, number: int, timeout: float) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: self.turn.value == number, timeout):
                raise TimeoutError(f"buyer {number} was never granted its next step")
            self.turn.value = 0

    def _report(self, status: int) -> None:
        with self.changed:
            self.status.value = status
            self.changed.notify_all()

    def before_check(self, number: int, timeout: float) -> None:
        self._await_turn(number, timeout)

    def patience(self, timeout: float) -> float:
        del timeout
        return 0.0

    def after_read(self, number: int, timeout: float) -> None:
        self._report(DONE)
        self._await_turn(number, timeout)

    def finished(self, number: int, error: BaseException | None) -> None:
        del number
        if isinstance(error, GuardTimeout):
            self._report(BLOCKED)
        else:
            self._report(DONE if error is None else GONE)

    def grant(self, number: int, timeout: float) -> int | None:
        """In the parent: let buyer ``number`` take its next step; its report, or
        ``None`` if it made none within ``timeout``."""
        with self.changed:
            self.status.value = 0
            self.turn.value = number
            self.changed.notify_all()
            if not self.changed.wait_for(lambda: self.status.value != 0, timeout):
                return None
            report: int = self.status.value
            return report


def run_buyer(
    spec: BuyerSpec,
    tools: Tools,
    channel: Channel,
    gate: Gate,
    pacer: Pacer,
    *,
    prepared: bool = False,
) -> None:
    """The body of a buyer process (or of one pool task, ``prepared`` by the worker)."""
    pid = os.getpid()
    record = StepRecorder(channel, spec.number, pid)

    error: BaseException | None = None
    try:
        if not prepared:
            _signals.as_child()
            tools.prepare()
            tools.rehearse(spec, pid)
        record(Step.READY)
        if not gate.wait(spec.opens_within):
            _signals.die_if_orphaned()  # the gate hung up as ticketsim died
            record(Step.ERROR, note=f"the sale did not open within {spec.opens_within:g} s")
            return
        pacer.before_check(spec.number, spec.timeout)
        record(Step.CHECK, value=tools.store.peek(record))
        try:
            seat = tools.purchase(spec, pid, record, pacer)
        except Conflict as exc:
            # The store refused, undid it, and the strategy does not try again: the buyer
            # knows for certain it has no ticket, though tickets may be left.
            record(Step.FAIL, note=f"gave up: {exc.why}", error=type(exc).__name__)
            return
        if seat is None:
            record(Step.FAIL)
        else:
            record(Step.OK, seat=seat)
    except BaseException as exc:
        # The history, not stderr, must say why; nothing may escape a buyer. When the
        # pipe itself is gone, ticketsim has ended the sale (it is refused, interrupted
        # or dead) and nobody is left to tell; a thread told the sale is over has no
        # outcome of its own, and ticketsim records how it ended.
        error = exc
        if not pacer.stopped():
            with contextlib.suppress(OSError):
                note = f"{type(exc).__name__}: {exc}"
                record(Step.ERROR, note=note, error=type(exc).__name__)
    finally:
        pacer.finished(spec.number, error)


def run_buyer_process(
    spec: BuyerSpec, tools: Tools, channel: Channel, gate: Gate, pacer: Pacer
) -> None:
    """The target of a buyer's own process: :func:`run_buyer`, and then the end that
    multiprocessing gives a forked process, whatever the start method.

    Under ``fork`` and ``forkserver`` multiprocessing ends a process with ``os._exit``
    once its target returned and its own exit handlers ran. Under ``spawn`` the process
    exits through the interpreter instead, which first tears down every module and
    object it holds: that cost a buyer several times the CPU of its purchase, taken
    from the buyers still buying, so that under spawn the sale crawled.
    """
    run_buyer(spec, tools, channel, gate, pacer)
    if multiprocessing.parent_process() is None:
        return  # run in ticketsim's own process: there is no process of its own to end
    if isinstance(gate, PipeGate):
        # Ending now would take a core from the buyers still buying (sale/gate.py).
        gate.wait_over(spec.timeout)
    # Reached only when nothing escaped run_buyer, so the exit code is 0. Exit
    # handlers run once multiprocessing has ended the process its own way (its
    # finalizers run, threads joined, std streams flushed); this one, the last
    # registered, runs first and skips what a fork's os._exit skips: the other
    # handlers (none of a buyer's) and the interpreter's teardown.
    atexit.register(os._exit, 0)


#: What a pool worker was given by the pool's initializer. Locks cannot travel as task
#: arguments, only through inheritance when the worker starts, so this global is the
#: one place a worker can keep them; it is set once per worker process.
_pool_worker: tuple[Tools, Channel, Gate, Pacer] | None = None


def init_pool_worker(tools: Tools, channel: Channel, gate: Gate, pacer: Pacer) -> None:
    """``multiprocessing.Pool`` initializer: keep this worker's primitives."""
    global _pool_worker  # noqa: PLW0603 - see _pool_worker
    _signals.as_child()  # first: a worker dies with ticketsim, and ignores Ctrl-C
    _pool_worker = (tools, channel, gate, pacer)
    # An initializer that raises kills its worker, and the pool starts another, forever.
    # What failed here fails again in the buyer's first step, where it is recorded.
    with contextlib.suppress(Exception):
        tools.prepare()


def run_pool_task(specs: tuple[BuyerSpec, ...]) -> None:
    """Buyers run one after another as one task of a pool worker (a big sale hands
    them out in batches: a task each cost a worker a tenth of its time in the pool's
    queues, and the parent as much again)."""
    if _pool_worker is None:
        raise RuntimeError("run_pool_task needs init_pool_worker as the pool initializer")
    tools, channel, gate, pacer = _pool_worker
    for spec in specs:
        run_buyer(spec, tools, channel, gate, pacer, prepared=True)
