"""One sale, many hosts: the sale kept in the store, buyers that join it from anywhere,
and one history, ordered by the store's clock, checked as ``run`` checks its own.

The four moves, each a function here and a command on top:

* :func:`open_sale` (``ticketsim sale open``) loads the tickets and writes the sale's
  card into the store;
* :func:`serve_buyers` (``ticketsim buyers``, on any host) starts that host's buyers,
  which record every step into the store and wait at its gate;
* :func:`start_sale` (``ticketsim sale start``) opens the gate;
* :func:`check_sale` (``ticketsim sale check``) waits for every host to report, reads
  the history back and returns a :class:`RunResult`.

:func:`run_hosts` (``ticketsim run --hosts N``) does all four on this machine, with each
host a network namespace (or a process group) reaching the store over a link of its
own, through which it injects the faults between hosts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ticketsim.analysis.merged import clock_check, in_store_order, unreported
from ticketsim.core import db as dbfile
from ticketsim.core import stores
from ticketsim.core.boards import CLOCKS, HostRow, SaleCard, new_sale_id
from ticketsim.core.events import CUT_OFF_ON_PURPOSE, ENDINGS, OUTCOMES, Event, Step
from ticketsim.core.frozen import frozen
from ticketsim.core.hosts import PARTITION_S, Partition, host_idle, host_name
from ticketsim.core.names import StoreKind, StrategyName
from ticketsim.core.result import Hosts, RunResult
from ticketsim.core.settings import JITTER, RunConfig
from ticketsim.engine import databases, strategies
from ticketsim.engine.collect import Inbox
from ticketsim.engine.crews import OneProcessEach
from ticketsim.engine.link import Link, open_link
from ticketsim.engine.network import KIND_WORDS, Machines
from ticketsim.engine.runner import (
    BUYER_PATIENCE,
    START_TIMEOUT_S,
    lost_events,
    prepare_db,
    window,
)
from ticketsim.errors import ConfigError, NoVerdict, ServerUnavailable, StoreError
from ticketsim.sale import _limits, _scratch
from ticketsim.sale.boards import board_for
from ticketsim.sale.boards.base import Board, HostChannel, UnreadableBoard
from ticketsim.sale.buyer import BuyerSpec, Pacer
from ticketsim.sale.channel import EventChannel
from ticketsim.sale.cut import CUT, HOLD
from ticketsim.sale.gate import StartGate
from ticketsim.servers.base import kill_group

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

#: How often a host looks at the store's gate, and the coordinator at the hosts.
POLL_S: Final = 0.02
#: A host's own copy of the db file, in the folder of a ``file`` board.
_COPY: Final = "tickets.json"
#: How often a host waiting at the gate makes sure its sale is still the store's.
_LOOK_S: Final = 0.5
#: How long a host's program has to end by itself once the sale is over, at each step.
_AGENT_EXIT_S: Final = 5.0


@frozen
class Place:
    """Where a sale of several hosts is kept: its store, and how to reach it."""

    kind: StoreKind
    #: The store's URL, or the board's folder for the db file's strategies.
    where: str

    def board(self) -> Board:
        return board_for(self.kind.value, self.where)

    @property
    def shown(self) -> str:
        return self.where if self.kind is StoreKind.FILE else stores.redacted(self.where)


def place(store: str) -> Place:
    """The place a ``--store`` URL names; only a server keeps a sale of several hosts."""
    parsed = stores.parse(store)
    if parsed.kind not in (StoreKind.POSTGRES, StoreKind.REDIS):
        raise StoreError(
            parsed.shown,
            "is a file on one machine, which buyers on other hosts cannot reach",
            "give a postgresql:// or redis:// URL",
        )
    return Place(parsed.kind, parsed.url)


def open_sale(
    at: Place,
    strategy: str,
    tickets: int,
    *,
    delay: float,
    seed: int | None,
    timeout: float,
    replace: bool = False,
) -> SaleCard:
    """Load fresh tickets into the store at ``at`` and make a new sale of them its sale.

    A store whose sale still has hosts that have not reported is refused
    (:class:`StoreError`): their buyers would sell in the new sale. ``replace`` opens
    one anyway (a host that died never reports).
    """
    require_sale(at, strategy, tickets, delay=delay, seed=seed, timeout=timeout)
    info = strategies.get(strategy).info
    if not replace:
        _refuse_if_busy(at)
    initial = dbfile.TicketDB.fresh(tickets)
    card = SaleCard(
        new_sale_id(),
        info.name.value,
        initial,
        delay,
        seed if seed is not None else random.SystemRandom().randrange(2**32),
        timeout,
    )
    if at.kind is not StoreKind.FILE:
        plan = databases.PLANS[StrategyName(info.name.value)]
        databases.make_store(at.kind, at.where, plan=plan.plan, initial=initial).load(initial)
    board = at.board()
    try:
        board.open(card)
    finally:
        board.close()
    return card


def require_sale(
    at: Place, strategy: str, tickets: int, *, delay: float, seed: int | None, timeout: float
) -> None:
    """Refuse settings no sale of several hosts at ``at`` can have (:class:`ConfigError`,
    :class:`StoreError`): those ``run`` refuses, and a strategy of another store."""
    RunConfig(
        strategy=strategy,
        tickets=tickets,
        delay=delay,
        seed=seed,
        timeout=timeout,
        store=None if at.kind is StoreKind.FILE else at.where,
    )
    if at.kind is not StoreKind.FILE:
        stores.require_match(strategy, stores.parse(at.where))
    elif StoreKind.of(strategy) is not StoreKind.FILE:
        raise ConfigError("strategy", strategy, "sells from a server, not a folder")


def _refuse_if_busy(at: Place) -> None:
    board = at.board()
    try:
        try:
            card = board.card()
        except UnreadableBoard:
            raise
        except StoreError:
            return  # no sale of several hosts there yet
        pending = [row.name for row in board.hosts() if not row.done] if card else []
        if card is not None:
            # Read, not used: what ticketsim did not write there, only --replace replaces.
            board.started()
            board.history()
    finally:
        board.close()
    if card is not None and pending:
        raise StoreError(
            at.shown,
            f"its sale {card.id} has host(s) that have not reported ({', '.join(pending)}), "
            "whose buyers would sell in a new one",
            "check it first (ticketsim sale check), or, if its hosts are gone, open "
            "the new one with 'ticketsim sale open --replace'",
        )


def store_from_stdin(timeout: float = START_TIMEOUT_S) -> str:
    """In a host of ``run --hosts``, as its program starts: the store's URL, through the
    host's link, which ticketsim writes on its stdin once the host is plugged in."""
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    line = sys.stdin.readline().strip() if ready else ""
    if not line:
        raise ServerUnavailable("the store", "ticketsim never said where it is", "run it again")
    return line


def _card(board: Board, at: Place, sale: str | None, ours: Hosts | None = None) -> SaleCard:
    """The store's sale (``sale``, if given); ``ours``: the hosts of the run that opened it."""
    card = board.card()
    if card is None:
        raise StoreError(
            at.shown, "holds no sale of several hosts", "open one: ticketsim sale open"
        )
    if sale is not None and card.id != sale:
        raise StoreError(
            at.shown,
            f"holds sale {card.id}, not sale={sale}",
            "give --sale as 'ticketsim sale open' printed it"
            if ours is None
            else "another program opened a sale there during this run; give each run a "
            "store of its own",
        )
    try:  # the checks of 'sale open', on a card that another program may have written
        require_sale(
            at,
            card.strategy,
            card.initial.tickets,
            delay=card.delay,
            seed=card.seed,
            timeout=card.timeout,
        )
    except (ConfigError, StoreError) as exc:
        raise UnreadableBoard(
            at.shown,
            f"holds a sale card that ticketsim did not write ({exc})",
            "open a new sale there: ticketsim sale open --replace",
        ) from None
    return card


def start_sale(at: Place, sale: str | None) -> float:
    """Open the gate of the sale ``sale`` (``None``: the store's sale); the store's time."""
    board = at.board()
    try:
        _card(board, at, sale)
        return board.start()
    finally:
        board.close()


@frozen
class Served:
    """What one host's buyers did, as the host saw it."""

    host: str
    first: int
    count: int
    ok: int
    sold_out: int
    unknown: int
    #: Why the host's sale ended early, if it did.
    stalled: str | None = None


def serve_buyers(
    at: Place,
    *,
    sale: str | None,
    count: int,
    host: str,
    skew: float = 0.0,
    start_method: str | None = None,
    pacer: Pacer | None = None,
) -> Served:
    """Join the store's sale with ``count`` buyers of host ``host``, wait at its gate,
    sell, and report every outcome into the store; never prints. ``pacer`` forces an
    interleaving (``run --partition HOST@read`` hands its buyers one)."""
    _scratch.provide()
    board = at.board()
    try:
        card = _card(board, at, sale)
        if board.started() is not None:
            raise StoreError(at.shown, f"sale {card.id} has started", "join it before 'sale start'")
        if at.kind is not StoreKind.FILE:  # each buyer holds two connections: see below
            store = databases.user_store(at.where)
            databases.require_room(store, 2 * count, at.shown, "raise that limit, or lower --count")
        # From here on it writes for this sale only: never into one opened over it.
        board = board.bound(card.id)
        first = board.join(host, count)
        try:
            return _sell(at, board, card, host, first, count, skew, start_method, pacer or Pacer())
        except BaseException:
            # Interrupted or failed: say this host is done, so that a check need not wait
            # for it (its buyers' missing outcomes are then unknown: info).
            with contextlib.suppress(Exception):
                now = board.card()
                if now is not None and now.id == card.id:
                    board.update(HostRow(host, first, count, done=True))
            raise
    finally:
        board.close()


def _sell(
    at: Place,
    board: Board,
    card: SaleCard,
    host: str,
    first: int,
    count: int,
    skew: float,
    start_method: str | None,
    pacer: Pacer,
) -> Served:
    ctx = _limits.context(start_method)
    strategy = strategies.get(card.strategy)
    db_path, store = "", None
    if at.kind is StoreKind.FILE:  # each host sells from a copy of its own
        copy = Path(at.where, host)
        copy.mkdir(exist_ok=True)
        db_path = str(copy / _COPY)
        dbfile.write_atomic(db_path, card.initial)
    else:
        store = at.where
    channel = EventChannel(ctx)
    # The run's own gate: every buyer leaves it at once, and its process ends with the sale.
    gate = StartGate(ctx)
    crew = OneProcessEach(ctx)
    inbox = Inbox(channel, crew)
    patience = card.timeout * BUYER_PATIENCE
    setup = strategies.Setup(
        ctx, db_path, card.initial, count, channel.sender, card.timeout, store=store
    )
    stalled: str | None = None
    with contextlib.ExitStack() as stack:
        stack.callback(channel.close)
        stack.callback(gate.close)
        tools = stack.enter_context(strategy.provide(setup))
        sender = HostChannel(channel.sender, at.board().bound(card.id), host, skew)
        specs = [
            BuyerSpec(n, window(card.delay, card.seed, n), patience)
            for n in range(first, first + count)
        ]
        try:
            crew.start(specs, (tools, sender, gate.gate, pacer))
            stalled = inbox.wait_ready(max(card.timeout, START_TIMEOUT_S), ctx.get_start_method())
            # At the gate, or already ended (a buyer that could not even connect): the
            # sale opens for the others, and the history says why that one did not go.
            ready = len(
                {e.buyer for e in inbox.history if e.step is Step.READY or e.step in ENDINGS}
            )
            board.update(HostRow(host, first, count, ready))
            if stalled is None:
                stalled = _wait_gate(board, card.id, patience)
            if stalled is None:
                gate.set()
                stalled = inbox.collect(until=None, expected=count, timeout=card.timeout)
        finally:
            gate.end()  # the buyers' processes that wait for it go
            # The crew numbers its processes from 1; this host's buyers from `first`.
            ended = {
                first - 1 + n
                for n in crew.end(at_once=stalled is not None or sys.exc_info()[0] is not None)
            }
            inbox.drain()
        history = inbox.history
        numbered = dataclasses.replace(RunConfig(), buyers=first + count - 1)
        codes = (None,) * (first - 1) + crew.exit_codes()
        lost = lost_events(numbered, history, codes, ended, stalled or "the sale ended", {})
        history += [e for e in lost if e.buyer >= first]
        now = board.card()
        if now is not None and now.id == card.id:  # not into a sale opened over this one
            _report_late(board, host, history, skew)
            board.update(HostRow(host, first, count, ready, done=True))
    outcomes = {e.buyer: e.step for e in history if e.step in ENDINGS}
    return Served(
        host,
        first,
        count,
        ok=sum(step is Step.OK for step in outcomes.values()),
        sold_out=sum(step is Step.FAIL for step in outcomes.values()),
        unknown=count - sum(step in (Step.OK, Step.FAIL) for step in outcomes.values()),
        stalled=stalled,
    )


def _wait_gate(board: Board, sale: str, patience: float) -> str | None:
    deadline = time.monotonic() + patience
    looked = time.monotonic()
    while board.started() is None:
        if time.monotonic() > deadline:
            return f"the sale did not start within {patience:g} s of joining it"
        if time.monotonic() - looked > _LOOK_S:  # a sale opened over this one: not ours
            looked = time.monotonic()
            card = board.card()
            if card is None or card.id != sale:
                return f"sale {sale} was replaced in the store before it started"
        time.sleep(POLL_S)
    card = board.card()
    if card is None or card.id != sale:
        return f"sale {sale} was replaced in the store before it started"
    return None


def _report_late(board: Board, host: str, history: list[Event], skew: float) -> None:
    """Record each buyer's ending the store never got (the host was cut off when its
    buyer learnt it, or the buyer died): late, but the outcome is known."""
    on_board = {e.buyer for e in board.history() if e.host == host and e.step in ENDINGS}
    late, seen = [], set()
    for event in history:
        if event.step in ENDINGS and event.buyer not in on_board and event.buyer not in seen:
            seen.add(event.buyer)
            note = event.note or ""
            late.append(
                dataclasses.replace(
                    event,
                    host=host,
                    host_t=time.time() + skew,
                    note=(note + "; " if note else "") + "reported late by its host",
                )
            )
    if late:
        board.record(late)


def _require_agreement(at: Place, rows: Sequence[HostRow], history: Sequence[Event]) -> None:
    """Refuse (:class:`UnreadableBoard`) host rows and events that are each well formed
    but that no sale of ticketsim's leaves together: hosts join one after another, each
    numbering its buyers from where the last left off, and every event is a buyer's of
    the host that numbered it."""
    advice = "open a new sale there: ticketsim sale open --replace"
    expected = 1
    for row in rows:  # in the order of their numbers
        if row.first != expected:
            raise UnreadableBoard(
                at.shown,
                f"holds a host's row that ticketsim did not write (host {row.name}'s buyers "
                f"begin at {row.first}, not {expected})",
                advice,
            )
        expected += row.count
    host_of = {n: row.name for row in rows for n in row.buyers}
    for event in history:
        if host_of.get(event.buyer) != event.host:
            raise UnreadableBoard(
                at.shown,
                f"holds a history event that ticketsim did not write ({event.name}'s, from "
                f"host {event.host!r}, which numbered no such buyer)",
                advice,
            )


def check_sale(
    at: Place,
    sale: str | None,
    *,
    wait: float | None = None,
    hosts: Hosts | None = None,
    faults: tuple[str, ...] = (),
    running: Callable[[], bool] | None = None,
) -> RunResult:
    """Wait (at most ``wait`` seconds, or the sale's patience) for every host that joined
    the sale to report, then read its history and the store back; never prints.
    ``running`` says whether any host's program still runs (``run --hosts`` knows): once
    none does, a host that has not reported never will."""
    board = at.board()
    try:
        card = _card(board, at, sale, hosts)
        patience = card.timeout * BUYER_PATIENCE + START_TIMEOUT_S if wait is None else wait
        deadline = time.monotonic() + patience
        rows = board.hosts()
        while not rows or not all(row.done for row in rows):
            if time.monotonic() > deadline or (running is not None and not running()):
                rows = board.hosts()
                break
            time.sleep(POLL_S * 5)
            rows = board.hosts()
        quiet = [row.name for row in rows if not row.done]
        started = board.started()
        history = in_store_order(board.history())
        # The rows as they are now: a host that joined since they were read may have
        # recorded events already (its row is written as it joins, before any).
        _require_agreement(at, board.hosts(), history)
        if not rows and hosts is None:  # no buyer at all: a report would have to invent one
            raise NoVerdict(
                f"sale {card.id}",
                f"no host joined it within {patience:g} s, so nothing was sold or checked",
                "join it with 'ticketsim buyers --store URL' on each host, then "
                "'ticketsim sale start', then check it",
            )
        buyers = {n: row.name for row in rows for n in row.buyers}
        gone = running is not None and not running()
        why = "its program ended first" if gone else f"no word from it within {patience:g} s"
        end_at = max((e.t for e in history), default=started or 0.0)
        history += unreported(history, buyers, end_at, why)
        final, final_error = _final(at, card, rows)
        now = board.card()  # after the tickets were read back: they are this sale's
        if now is None or now.id != card.id:
            raise StoreError(
                at.shown,
                f"sale {card.id} was replaced by another while it was checked",
                "check the store's sale now, or open a new one",
            )
    finally:
        board.close()
    config = RunConfig(
        # run --hosts, whose hosts all failed to join, puts its own buyers in after.
        buyers=max(1, len(buyers)),
        tickets=card.initial.tickets,
        strategy=card.strategy,
        delay=card.delay,
        seed=card.seed,
        timeout=card.timeout,
        store=None if at.kind is StoreKind.FILE else at.where,
    )
    outcomes = [e.t for e in history if e.step in OUTCOMES]
    opened = started if started is not None else (history[0].t if history else 0.0)
    stalled = None
    if quiet:
        stalled = f"{', '.join(quiet)} did not report: {why}"
    elif started is None:
        stalled = "the sale was never started"
    made = hosts or Hosts(kind="joined by hand", count=len(rows))
    return RunResult(
        config=config,
        start_method="(on each host)",
        seed=card.seed,
        initial=card.initial,
        final=final,
        final_error=final_error,
        history=tuple(history),
        opened_at=opened,
        elapsed_s=0.0
        if started is None
        else max(0.0, (max(outcomes) if outcomes else opened) - opened),
        stalled=stalled,
        faults=faults,
        # Known to 'run --hosts', which started the hosts' programs (it sets it).
        startup_s=None,
        hosts=dataclasses.replace(
            made,
            count=len(rows),
            sale=card.id,
            rows=rows,
            clock=CLOCKS[at.kind.value],
            clocks=clock_check(history),
        ),
    )


def _final(
    at: Place, card: SaleCard, rows: tuple[HostRow, ...]
) -> tuple[dbfile.TicketDB | None, str | None]:
    if at.kind is not StoreKind.FILE:
        try:
            return databases.user_store(at.where).snapshot(), None
        except StoreError as exc:
            return None, str(exc)
    # Each host sold from its own copy: together they are what the sale left.
    ledger: list[dbfile.Sale] = []
    remaining = card.initial.remaining
    for row in rows:
        try:
            copy = dbfile.load(Path(at.where, row.name, _COPY))
        except (OSError, ValueError) as exc:
            return None, f"{row.name}'s copy: {exc}"
        ledger += copy.ledger
        remaining = min(remaining, copy.remaining)
    return dataclasses.replace(card.initial, remaining=remaining, ledger=tuple(ledger)), None


def _prepare(config: RunConfig, kind: StoreKind) -> None:
    """The db file as ``run`` leaves it: reset as the sale opens (vetted first), and given
    the store's tickets when it ends; the user's --store is the record instead (a sale of
    hosts still pending there is refused before it is reset, which would wipe that
    sale), and filelock's hosts keep copies of their own."""
    if config.store is not None:
        _refuse_if_busy(Place(kind, config.store))
    prepare_db(config)


def run_hosts(config: RunConfig, *, servers: Mapping[StoreKind, str] | None = None) -> RunResult:
    """``config``'s sale with its buyers spread over ``config.hosts`` hosts of this
    machine, each on a link of its own; every host, link and process is gone when it
    returns, also on an error or an interrupt."""
    assert config.hosts is not None
    cut, slow, skew = config.faults_between_hosts()
    kind = StoreKind.of(config.strategy)
    _prepare(config, kind)
    own = databases.PrivateServers()
    # In ticketsim's own folder (when multiprocessing has none of someone else's), which
    # the next run sweeps if this one is SIGKILLed.
    scratch = _scratch.provide()
    with contextlib.ExitStack() as stack:
        stack.callback(own.stop)
        if kind is StoreKind.FILE:
            folder = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="ticketsim-hosts-", dir=scratch)
            )
            at = Place(kind, folder)
        else:
            at = Place(kind, config.store or (servers or own)[kind])
            if config.store is None:  # also when interrupted: the db keeps every sale made
                stack.callback(_keep_sales, at, config.db_path)
        card = open_sale(
            at,
            config.strategy,
            config.tickets,
            delay=config.delay,
            seed=config.seed,
            timeout=config.timeout,
            # ticketsim's own server is nobody else's: a sale a killed run left is not news.
            replace=config.store is None,
        )
        if kind is StoreKind.FILE:  # before the copies go, also when interrupted
            stack.callback(_keep_copies, at, card, config.db_path)
        machines = stack.enter_context(Machines(config.hosts, config.host_mode))
        ctx = multiprocessing.get_context(
            "fork" if "fork" in multiprocessing.get_all_start_methods() else None
        )
        # Removed last of the hosts' things: a buyer may wait on its cut file until then.
        logs = stack.enter_context(
            tempfile.TemporaryDirectory(prefix="ticketsim-hostlogs-", dir=scratch)
        )
        links: dict[int, Link] = {}
        stack.callback(_close_links, links)  # after the hosts' programs have ended
        agents: dict[int, subprocess.Popen[bytes]] = {}
        # On an error or an interrupt the hosts' programs are ended at once.
        stack.push(lambda kind, *_: _end_agents(agents, at_once=kind is not None))
        idle = {
            host_name(n): host_idle(config.delay * (1 + JITTER), slow.get(host_name(n), 0.0))
            for n in range(1, config.hosts + 1)
        }
        launched = time.monotonic()
        for number in range(1, config.hosts + 1):
            agents[number] = _launch(config, at, card, machines, number, skew, logs, cut)
            if kind is not StoreKind.FILE:
                target = stores.server_address(stores.parse(at.where))
                delay = slow.get(host_name(number), 0.0)
                links[number] = open_link(ctx, machines.gateway(number), target, delay)
            _hand_store(agents[number], at, links.get(number), idle[host_name(number)])
        if cut is not None and cut.lasting is None:  # long enough to see the store let go
            cut = dataclasses.replace(cut, lasting=max(PARTITION_S, idle[cut.host] + 1.0))
        faults = _Faults(machines, links, cut, slow, skew, Path(logs), config.timeout, kind, idle)
        stack.callback(faults.done)
        unready = open_gate(at, agents, config, logs)
        result_startup = time.monotonic() - launched
        if unready is None:
            faults.start()
        else:
            _end_agents(agents, at_once=True)
        result = check_sale(
            at,
            card.id,
            wait=config.timeout * BUYER_PATIENCE + START_TIMEOUT_S if unready is None else 0.0,
            hosts=Hosts(kind=KIND_WORDS[machines.kind], count=config.hosts, why=machines.why),
            running=lambda: any(agent.poll() is None for agent in agents.values()),
        )
        result = dataclasses.replace(result, startup_s=result_startup)
        _refuse_if_refused(links)
        result = _as_run(result, config, faults, cut, unready)
    return dataclasses.replace(
        result,
        config=config,
        start_method=config.start_method or multiprocessing.get_start_method(),
    )


def _as_run(
    result: RunResult,
    config: RunConfig,
    faults: _Faults,
    cut: Partition | None,
    unready: str | None,
) -> RunResult:
    """What ``run --hosts`` adds to the check of its sale: what its faults did, a cut
    drawn on the history's clock, and the buyers it cut off on purpose."""
    kind = StoreKind.of(config.strategy)
    said = _faults_said(faults, result, config, kind)
    if result.hosts is not None and faults.cut_at is not None and config.store is None:
        # The private server's clock is this machine's: the cut can be drawn on it.
        until = faults.healed_at or time.time()
        cut_span = (cut.host if cut else "", faults.cut_at, until)
        result = dataclasses.replace(result, hosts=dataclasses.replace(result.hosts, cut=cut_span))
    return dataclasses.replace(
        result,
        faults=said,
        stalled=unready or result.stalled,
        history=_cut_off(
            result.history,
            cut.host if cut and faults.cut_at else None,
            faults.cut_at if config.store is None else None,
        ),
    )


def _keep_copies(at: Place, card: SaleCard, db_path: Path) -> None:
    """The db file takes what the hosts' copies hold together (as the report reads
    them), before the copies go: the db a report of the sale names, and 'check' reads."""
    board = at.board()
    try:
        rows = board.hosts()
    except StoreError:
        return  # the board's own error is the run's to say
    finally:
        board.close()
    final, _ = _final(at, card, rows)
    if final is not None:
        dbfile.write_atomic(db_path, final)


def _keep_sales(at: Place, db_path: Path) -> None:
    """The db file takes what ticketsim's own server holds, before the server goes: the
    sales the hosts made, also those of a run that was interrupted."""
    with contextlib.suppress(StoreError, ServerUnavailable):
        dbfile.write_atomic(db_path, databases.user_store(at.where).snapshot())


def _cut_off(
    history: tuple[Event, ...], host: str | None, cut_at: float | None
) -> tuple[Event, ...]:
    """The history, each buyer of the cut-off ``host`` still in its purchase when it was
    cut off (at ``cut_at`` on the history's clock, when that clock is known to be this
    machine's) and whose outcome is unknown, marked as cut off on purpose: a planned
    fault, as a kill is, not a death. One that had ended before the cut keeps its ending."""
    if host is None:
        return history
    before = {
        e.buyer
        for e in history
        if cut_at is not None and e.host == host and e.step in ENDINGS and e.t <= cut_at
    }
    return tuple(
        dataclasses.replace(
            e,
            error=CUT_OFF_ON_PURPOSE,
            note=f"cut off on purpose with {host}: {e.note or 'no outcome'}",
        )
        if e.host == host and e.step in (Step.ERROR, Step.LOST) and e.buyer not in before
        else e
        for e in history
    )


def _launch(
    config: RunConfig,
    at: Place,
    card: SaleCard,
    machines: Machines,
    number: int,
    skew: dict[str, float],
    logs: str,
    cut: Partition | None,
) -> subprocess.Popen[bytes]:
    """Start ``ticketsim buyers`` on host ``number``, with its share of the buyers and
    its output to a log of its own (read when it fails). It reads where the store is
    on its stdin: its link can listen only once the host is plugged in."""
    name = host_name(number)
    share, extra = divmod(config.buyers, config.hosts or 1)
    where = ["--board", at.where] if at.kind is StoreKind.FILE else ["--store-on-stdin"]
    argv = [
        sys.executable, "-m", "ticketsim", "buyers", *where, "--sale", card.id,
        "--count", str(share + (1 if number <= extra else 0)), "--host", name,
        "--clock-skew", f"{skew.get(name, 0.0)}s",
    ]  # fmt: skip
    if config.start_method:
        argv += ["--start-method", config.start_method]
    if cut is not None and cut.at is None:
        argv += ["--cut-folder", logs] + (["--cut-here"] if cut.host == name else [])
    log = os.open(Path(logs, name + ".log"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        return machines.launch(number, argv, log)
    finally:
        os.close(log)


def _hand_store(agent: subprocess.Popen[bytes], at: Place, link: Link | None, idle: float) -> None:
    """Tell a host's program where its store is: through its link, its PostgreSQL
    sessions ended when idle in a transaction for ``idle`` seconds (longer than its race
    window and its link's round trips: only a cut-off buyer stays idle that long)."""
    assert agent.stdin is not None
    with contextlib.suppress(BrokenPipeError), agent.stdin:  # a dead one says why in its log
        if link is not None:
            settings = {"idle_in_transaction_session_timeout": str(int(idle * 1000))}
            parsed = stores.parse(at.where)
            url = stores.through(
                parsed, link.address, settings if at.kind is StoreKind.POSTGRES else {}
            )
            agent.stdin.write(url.encode() + b"\n")


def _faults_said(
    faults: _Faults, result: RunResult, config: RunConfig, kind: StoreKind
) -> tuple[str, ...]:
    """What the faults between hosts did, and what the history shows they did."""
    holds = bool(strategies.get(config.strategy).info.holding)
    said = faults.done() + faults.detected(
        result.history, own_clock=config.store is None, holds=holds
    )
    if kind is StoreKind.FILE:
        said += (
            "each host sold from its own copy of the db, locked by a lock file on its "
            "own disk: no host's lock kept another host's buyers out",
        )
    return said


def _refuse_if_refused(links: dict[int, Link]) -> None:
    """The machine's refusal of a link a file descriptor: it cut its host's connections,
    which is neither the store's fault nor the sale's (:meth:`Link.refused`)."""
    for link in links.values():
        refused = link.refused()
        if refused is not None:
            raise refused


def _close_links(links: dict[int, Link]) -> None:
    for link in links.values():
        link.close()


def open_gate(
    at: Place, agents: dict[int, subprocess.Popen[bytes]], config: RunConfig, logs: str
) -> str | None:
    """Open the sale once every host's buyers wait at the gate; why not, if they never did."""
    board = at.board()
    deadline = time.monotonic() + max(config.timeout, START_TIMEOUT_S)
    try:
        while True:
            rows = board.hosts()
            if len(rows) == len(agents) and all(row.ready == row.count for row in rows):
                board.start()
                return None
            dead = [n for n, agent in agents.items() if agent.poll() is not None]
            if dead or time.monotonic() > deadline:
                # The first that ended, else the first that never joined, else the first
                # whose buyers were not all at the gate.
                ready = {row.name for row in rows if row.ready == row.count}
                joined = {row.name for row in rows}
                late = sorted(agents, key=lambda n: (host_name(n) in joined, n))
                late = [n for n in late if host_name(n) not in ready]
                if not dead and not late:  # every host of ours was ready: not ours
                    strangers = sorted(joined - {host_name(n) for n in agents})
                    return f"host(s) this run did not start joined its sale: {', '.join(strangers)}"
                number = dead[0] if dead else late[0]
                said = _last_line(Path(logs, host_name(number) + ".log"))
                what = "ended" if dead else "was not ready in time"
                return f"{host_name(number)} {what} before the sale opened" + (
                    f": {said}" if said else ""
                )
            time.sleep(POLL_S)
    finally:
        board.close()


def _last_line(log: Path) -> str:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def _end_agents(agents: dict[int, subprocess.Popen[bytes]], *, at_once: bool = False) -> None:
    """Every host's program is gone: it ends by itself once it has reported; one still
    running (cut off, stalled, or the run was interrupted: ``at_once``) is ended, then
    killed, each step bounded."""
    deadline = time.monotonic() + (0.0 if at_once else _AGENT_EXIT_S)
    for agent in agents.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            agent.wait(max(0.0, deadline - time.monotonic()))
    for agent in agents.values():
        if agent.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(agent.pid, signal.SIGTERM)
    for agent in agents.values():
        try:
            agent.wait(_AGENT_EXIT_S)
        except subprocess.TimeoutExpired:
            kill_group(agent)


class _Faults:
    """The faults between hosts, injected on time in a thread of their own, and what
    they did, in words."""

    def __init__(
        self,
        machines: Machines,
        links: dict[int, Link],
        cut: Partition | None,
        slow: dict[str, float],
        skew: dict[str, float],
        folder: Path,
        timeout: float,
        kind: StoreKind,
        idle: dict[str, float],
    ) -> None:
        self.machines, self.links, self.cut = machines, links, cut
        self.slow, self.skew = slow, skew
        self.folder, self.timeout, self.kind = folder, timeout, kind
        #: Each host's idle_in_transaction_session_timeout, in seconds (PostgreSQL).
        self.idle = idle
        #: When the host was cut off and when its link came back, by this machine's
        #: clock (``time.time()``).
        self.cut_at: float | None = None
        self.healed_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._said: list[str] = []
        self._cut_number: int | None = None

    def start(self) -> None:
        if self.cut is not None:
            self._thread = threading.Thread(
                target=self._partition, name="ticketsim-partition", daemon=True
            )
            self._thread.start()

    def _partition(self) -> None:
        try:
            self._cut_and_heal()
        except Exception as exc:  # said in the report: the library never prints
            self._heal()
            self._said.append(f"cutting {self.cut.host if self.cut else '?'} off failed: {exc}")

    def _cut_and_heal(self) -> None:
        assert self.cut is not None
        assert self.cut.lasting is not None
        opened = time.monotonic()
        if self.cut.at is not None and self._stop.wait(self.cut.at):
            return
        if self.cut.at is None and not self._wait_hold():
            return
        number = int(self.cut.host.removeprefix("host-"))
        how = "its link to the store held (the process group's link process stopped)"
        if self.machines.cut(number):
            how = "its veth link down"
        elif number in self.links:
            self.links[number].cut()
        else:
            how = "nothing to cut: it reaches no store"
        self._cut_number = number
        self.cut_at = time.time()
        (self.folder / CUT).touch()  # the held buyers go on: the link is down now
        began = time.monotonic() - opened
        self._stop.wait(self.cut.lasting)
        self._heal()
        self.healed_at = time.time()
        lasted = time.monotonic() - opened - began
        self._said.append(
            f"{self.cut.host} was cut off {began:.2f} s after the sale opened, for "
            f"{lasted:.2f} s ({how}, then up again)"
        )

    def detected(
        self, history: tuple[Event, ...], *, own_clock: bool, holds: bool
    ) -> tuple[str, ...]:
        """How long after the cut a buyer of another host, waiting for what the cut-off
        buyer held, got it: how long the store took to let go. Only for a strategy that
        holds a lock, for a buyer that did wait, and when the store's clock is this
        machine's (its private server), which stamped the history."""
        if self.cut is None or self.cut_at is None or not own_clock or not holds:
            return ()
        cut_at, host = self.cut_at, self.cut.host
        waited: dict[int, float] = {}
        for event in history:
            if event.host == host or event.step not in (Step.WAIT, Step.ENTER):
                continue
            if event.step is Step.WAIT:
                waited.setdefault(event.buyer, event.t)
            elif event.t > cut_at and event.buyer in waited:
                after = event.t - cut_at
                said = (
                    f"{event.name} of {event.host} waited for the lock and got it "
                    f"{after:.2f} s after {host} was cut off (by the store's clock)"
                )
                lasted = (self.healed_at or float("inf")) - cut_at
                if after >= lasted:  # the heal let it go, not the store
                    return (said + f", once {host}'s link was back up",)
                if self.kind is StoreKind.POSTGRES:
                    said += (
                        ": PostgreSQL ended the cut-off transaction once it had been idle for "
                        f"idle_in_transaction_session_timeout ({self.idle.get(host, 0):g} s on "
                        f"{host}'s sessions; the server's default, 0, would leave it to TCP "
                        "keepalives, hours by default)"
                    )
                elif self.kind is StoreKind.REDIS:
                    said += ": a Redis lock lets go when its lease runs out"
                return (said,)
        return ()

    def _wait_hold(self) -> bool:
        """Wait for the cut host's first buyer to have read, or for the run to end."""
        deadline = time.monotonic() + self.timeout * BUYER_PATIENCE
        while not (self.folder / HOLD).exists():
            if self._stop.wait(POLL_S) or time.monotonic() > deadline:
                return False
        return True

    def _heal(self) -> None:
        number, self._cut_number = self._cut_number, None
        if number is not None:
            self.machines.heal(number)
            if number in self.links:
                self.links[number].heal()

    def done(self) -> tuple[str, ...]:
        """Stop injecting (healing a cut still open); what the faults did."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(_AGENT_EXIT_S)
        self._heal()
        with contextlib.suppress(OSError):  # no buyer may wait for a cut that never came
            (self.folder / CUT).touch()
        if self.cut is not None and self.cut_at is None and not self._said:
            when = "any of its buyers read" if self.cut.at is None else "it was due"
            self._said.append(f"{self.cut.host} was never cut off: the sale was over before {when}")
        said = list(self._said)
        said += [
            f"{host}'s link delayed everything it sent or received by {delay * 1000:g} ms"
            for host, delay in sorted(self.slow.items())
        ]
        said += [
            f"{host}'s clock ran {offset:+g} s off in the times it recorded"
            for host, offset in sorted(self.skew.items())
        ]
        return tuple(said)
