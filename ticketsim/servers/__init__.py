"""Private, throwaway database servers for the runs against real stores.

Each run starts its own server in a folder of its own, reached by a Unix socket only,
and removes both when it ends, whatever ends it: see :mod:`ticketsim.servers.base`.
The servers are the system's, else those the ``servers`` extra installs from PyPI;
the clients (psycopg, redis-py) are the stores' business, not this package's.
"""

from __future__ import annotations

from ticketsim.errors import ServerUnavailable
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
