"""Private, throwaway database servers for the runs against real stores.

Each run starts its own server in a folder of its own, reached by a Unix socket only,
and removes both when it ends, whatever ends it: see :mod:`ticketsim.servers.base`.
The servers are the system's, else those the ``servers`` extra installs from PyPI;
the clients (psycopg, redis-py) are the stores' business, not this package's.

The servers' modules are imported on first use (PEP 562): every sale sweeps the
folders of servers whose ticketsim was killed (:mod:`ticketsim.servers._folder`),
and a sale of the file db starts no server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Final

from ticketsim.errors import ServerUnavailable

if TYPE_CHECKING:
    from ticketsim.servers.base import Server
    from ticketsim.servers.postgres import PostgresAddress, PostgresServer
    from ticketsim.servers.redis import RedisAddress, RedisServer

__all__ = [
    "PostgresAddress",
    "PostgresServer",
    "RedisAddress",
    "RedisServer",
    "Server",
    "ServerUnavailable",
]

#: Where each name is defined.
_MODULES: Final = {
    "Server": "ticketsim.servers.base",
    "PostgresAddress": "ticketsim.servers.postgres",
    "PostgresServer": "ticketsim.servers.postgres",
    "RedisAddress": "ticketsim.servers.redis",
    "RedisServer": "ticketsim.servers.redis",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: the next look-up finds it here
    return value
