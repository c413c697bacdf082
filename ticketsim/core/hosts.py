"""A sale over several hosts (``run --hosts``): how many, how they are made, and the
faults between them, validated once.

Faults are given per host, by name (``host-2``):

* ``--partition host-2@0.5s`` cuts host-2 off 0.5 s after the sale opens, for
  :data:`PARTITION_S` (or ``host-2@0.5s+4s``: for 4 s); its link goes down, then up;
  ``--partition host-2@read`` cuts it off once its first buyer has read, inside its
  critical section, the other hosts' buyers held back until then (a forced
  interleaving: see :mod:`ticketsim.sale.cut`);
* ``--slow-link host-2=50ms`` delays everything host-2 sends or receives by 50 ms;
* ``--clock-skew host-2=+2s`` sets host-2's clock 2 s ahead in the times it records.
"""

from __future__ import annotations

import re
from typing import Final

from ticketsim.core import catalog
from ticketsim.core.frozen import frozen
from ticketsim.core.names import StoreKind, StrategyName
from ticketsim.errors import ConfigError

#: The most hosts one machine simulates.
MAX_HOSTS: Final = 8
#: How hosts are made: ``auto`` takes network namespaces where it can.
HOST_MODES: Final = ("auto", "namespace", "process-group")
#: How long a partition lasts unless it says: longer than a Redis lock's lease, and at
#: least a second longer than PostgreSQL takes to end a cut-off buyer's transaction.
PARTITION_S: Final = 3.0
#: PostgreSQL ends a transaction of a host's buyer idle this long
#: (``idle_in_transaction_session_timeout``, set on each of its sessions): without it,
#: a cut-off buyer's row lock is held until TCP gives the connection up.
HOST_IDLE_S: Final = 2.0
#: On a slow link, a buyer idle in its transaction waits for this many of the link's
#: delays at most: the answer to its last statement on its way back, three of its steps
#: recorded in the store (a round trip each: a sold-out buyer's enter, read and leave),
#: and its next statement on its way out make 8; the rest is room.
IDLE_DELAYS: Final = 12


#: A host's buyers reach the sale's gate after about this many of its link's delays
#: (measured: 37 at 0.7 s each way, 40 at 1 s): the host's connection and join, then
#: each buyer's connection, its rehearsal and its ready step; and this many seconds more.
READY_DELAYS: Final = 40
READY_BASE_S: Final = 2.0


def ready_within(delay: float) -> float:
    """About how long a host whose link delays each way by ``delay`` takes to get its
    buyers to the gate: the sale must wait at least that long for them."""
    return READY_BASE_S + READY_DELAYS * delay


def host_idle(window: float, delay: float) -> float:
    """The ``idle_in_transaction_session_timeout`` of a host's sessions, in seconds: no
    buyer that is not cut off stays idle in its transaction that long, with a race
    window of at most ``window`` and a link that delays each way by ``delay``."""
    return HOST_IDLE_S + window + IDLE_DELAYS * delay


#: The most buyers of a sale over hosts: each is a process of its own with two
#: connections to the store (its purchases and its history), and ticketsim's own
#: PostgreSQL takes 300 connections.
MAX_BUYERS: Final = 120
#: The longest delay, skew or partition time: a sale of minutes, not days.
MAX_FAULT_S: Final = 60.0
#: A duration: ``50ms``, ``2s``, ``+2s``, ``-1.5s`` or bare seconds (``0.3``).
_DURATION: Final = re.compile(r"([+-]?)([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(ms|s)?")
#: Strategies that keep working across hosts: those of a server, which every host
#: reaches over the network.
_NETWORKED: Final = (StoreKind.POSTGRES, StoreKind.REDIS)


def host_name(number: int) -> str:
    """The name of host ``number`` (1-based), as reports and fault options spell it."""
    return f"host-{number}"


def duration(name: str, spec: str, text: str, *, signed: bool = False) -> float:
    """``text`` as seconds; :class:`ConfigError` naming ``name=spec`` otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or (match.group(1) and not signed):
        example = "+2s or -500ms" if signed else "50ms or 0.5s"
        raise ConfigError(name, spec, f"{text!r} is not a duration; write it like {example}")
    value = float(match.group(2)) / (1000 if match.group(3) == "ms" else 1)
    if value > MAX_FAULT_S:
        raise ConfigError(name, spec, f"choose at most {MAX_FAULT_S:g} s")
    return -value if match.group(1) == "-" else value


def _host(name: str, spec: str, text: str, hosts: int) -> str:
    known = [host_name(n) for n in range(1, hosts + 1)]
    if text not in known:
        raise ConfigError(
            name, spec, f"{text!r} is not a host of this sale; name one of {', '.join(known)}"
        )
    return text


@frozen
class Partition:
    """Cut ``host`` off from ``at`` seconds after the sale opens (``None``: once its first
    buyer has read), for ``lasting`` seconds."""

    host: str
    at: float | None
    #: ``None``: as long as it takes to show what the store does (see ``run_hosts``).
    lasting: float | None


def partition(spec: str, hosts: int) -> Partition:
    """``--partition`` parsed: ``host-2@0.5s``, ``host-2@0.5s+4s`` or ``host-2@read``."""
    host, at_sign, when = spec.partition("@")
    if not at_sign:
        raise ConfigError("partition", spec, "write it as HOST@TIME or HOST@read, like host-2@0.5s")
    at, plus, lasting = when.partition("+")
    return Partition(
        _host("partition", spec, host, hosts),
        None if at == "read" else duration("partition", spec, at),
        duration("partition", spec, lasting) if plus else None,
    )


def per_host(name: str, specs: tuple[str, ...], hosts: int, *, signed: bool) -> dict[str, float]:
    """``--slow-link`` or ``--clock-skew`` parsed: ``host-2=50ms``, each host once."""
    found: dict[str, float] = {}
    for spec in specs:
        host, equals, value = spec.partition("=")
        if not equals:
            raise ConfigError(
                name, spec, f"write it as HOST=TIME, like host-2={'+2s' if signed else '50ms'}"
            )
        host = _host(name, spec, host, hosts)
        if host in found:
            raise ConfigError(name, spec, f"{host} is given twice; give each host once")
        found[host] = duration(name, spec, value, signed=signed)
    return found


def across_hosts(strategy: str) -> str | None:
    """Why ``strategy`` cannot sell across hosts, or ``None`` if it can.

    A server's strategies can. ``filelock`` is let through to show why it cannot: each
    host locks a file on its own disk. Every other strategy of the db file protects the
    tickets with something in this machine's memory.
    """
    info = catalog.info(strategy)
    if info.store in _NETWORKED or strategy == StrategyName.FILELOCK.value:
        return None
    if info.store is StoreKind.SQLITE:
        return (
            f"{strategy!r} keeps the tickets in a SQLite file on this machine's disk, which "
            "other hosts cannot open (and SQLite's locks are not to be trusted over a "
            "network file system); use a pg- or redis- strategy"
        )
    if not info.holding and info.store is StoreKind.FILE and not info.guarded:
        return (
            f"{strategy!r} sells from the db file on this machine's disk (or memory its "
            "processes share), which a buyer on another host cannot reach; use a pg- or "
            "redis- strategy, or filelock to watch a lock file fail across hosts"
        )
    what = info.holding.split(",")[0] if info.holding else "memory this machine's processes share"
    return (
        f"{strategy!r} protects the tickets with {what}, which lives in this machine's "
        "memory: a buyer on another host can neither see it nor take it; use a pg- or "
        "redis- strategy, or filelock to watch a lock file fail across hosts"
    )
