"""The link between a host and the store: a relay that delays, cuts, heals and closes.

Real sockets on 127.0.0.1, against an echo server of the test's own. Every wait is
bounded; the timings checked are lower bounds (what the delay guarantees), or upper
bounds far from what a broken link would take.
"""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sales import python

from ticketsim.engine.link import Link, open_link
from ticketsim.errors import SystemRefused

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: The bound on every wait that should succeed.
_WAIT_S = 5.0


class _Echo:
    """An echo server on 127.0.0.1, a thread per connection; with ``once``, it closes
    each connection after its first reply.

    It listens at once, and serves (starts its threads) only when told: a link is
    forked before, since forking a process that runs threads is deprecated.
    """

    def __init__(self, *, once: bool = False) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.address: tuple[str, int] = self.listener.getsockname()
        self.once = once
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def serve(self) -> None:
        self._thread(self._accept)

    def _thread(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._thread(self._echo, conn)

    def _echo(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        with conn:
            while not self.stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                try:
                    conn.sendall(data)
                except OSError:
                    return
                if self.once:
                    return

    def close(self) -> None:
        self.stop.set()
        for thread in list(self.threads):
            thread.join(_WAIT_S)
        self.listener.close()


@contextlib.contextmanager
def _linked(
    start_method: str = "fork", delay: float = 0.0, *, once: bool = False
) -> Iterator[Link]:
    """A link to a fresh echo server, both ended on the way out."""
    echo = _Echo(once=once)
    try:
        link = open_link(
            multiprocessing.get_context(start_method), "127.0.0.1", echo.address, delay
        )
        try:
            echo.serve()
            yield link
        finally:
            link.close()
    finally:
        echo.close()


def _client(link: Link) -> socket.socket:
    client = socket.create_connection(link.address, timeout=_WAIT_S)
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # timings are the link's only
    return client


def _receive(client: socket.socket, size: int, timeout: float = _WAIT_S) -> bytes:
    """``size`` bytes, or what came before EOF or ``timeout`` s."""
    deadline = time.monotonic() + timeout
    data = b""
    while len(data) < size:
        client.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            chunk = client.recv(size - len(data))
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return data


def _eof(client: socket.socket) -> bool:
    """Whether the connection ends within the bound (a reset counts as an end)."""
    client.settimeout(_WAIT_S)
    try:
        return client.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def _gone(pid: int) -> bool:
    """Whether ``pid`` has ended: no such process, or one waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True
    return stat.rpartition(b")")[2].split()[0] == b"Z"


@pytest.mark.parametrize("start_method", ["fork", "spawn", "forkserver"])
def test_bytes_go_through_intact_both_ways(start_method: str) -> None:
    payload = bytes(range(256)) * 1024  # more than one read of the relay, every byte value
    with _linked(start_method) as link, _client(link) as client:
        assert link.process.name == "ticketsim-link"
        assert link.pid == link.process.pid
        assert link.address[0] == "127.0.0.1"
        sending = threading.Thread(target=client.sendall, args=(payload,), daemon=True)
        sending.start()  # while the reply is read: neither side waits on a full buffer
        assert _receive(client, len(payload)) == payload
        sending.join(_WAIT_S)


@pytest.mark.parametrize("delay", [0.2, 0.0])
def test_a_round_trip_takes_the_delay_each_way(delay: float) -> None:
    with _linked(delay=delay) as link, _client(link) as client:
        began = time.monotonic()
        client.sendall(b"ping")
        assert _receive(client, 4) == b"ping"
        assert time.monotonic() - began >= 2 * delay


def test_the_delay_is_a_latency_not_a_throughput_cap() -> None:
    """20 messages sent at once over a 0.2 s link: pipelined they are back after about
    0.4 s; a link that held each until the one before was delivered would take 20 x 0.2 s
    one way alone, the bound this asserts."""
    messages = [f"message {n:02}".encode() for n in range(20)]
    with _linked(delay=0.2) as link, _client(link) as client:
        began = time.monotonic()
        for message in messages:
            client.sendall(message)
        assert _receive(client, sum(map(len, messages))) == b"".join(messages)  # in order
        assert 0.4 <= time.monotonic() - began < 20 * 0.2


def test_a_cut_link_moves_nothing_until_it_is_healed() -> None:
    with _linked() as link, _client(link) as client:
        client.sendall(b"before")
        assert _receive(client, 6) == b"before"  # connected through the relay
        link.cut()
        try:
            client.sendall(b"during")  # the kernel takes it, as a lossy link would
            assert _receive(client, 6, timeout=0.3) == b""
            with _client(link) as other:  # a new connection waits in the backlog
                other.sendall(b"other")
                assert _receive(other, 5, timeout=0.3) == b""
                link.heal()
                assert _receive(other, 5) == b"other"
            assert _receive(client, 6) == b"during"
        finally:
            link.heal()


def test_the_store_closing_reaches_the_client_after_its_data() -> None:
    with _linked(delay=0.1, once=True) as link, _client(link) as client:
        client.sendall(b"last words")
        assert _receive(client, 10) == b"last words"
        assert _eof(client)


def test_the_client_closing_its_side_reaches_the_store() -> None:
    """The echo server ends a connection when it reads EOF: the client's half-close
    goes through, after what was sent before it, and the store's close comes back."""
    with _linked(delay=0.1) as link, _client(link) as client:
        client.sendall(b"bye")
        client.shutdown(socket.SHUT_WR)
        assert _receive(client, 3) == b"bye"
        assert _eof(client)


def test_a_store_that_refuses_the_connection_closes_the_client() -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        nobody = placeholder.getsockname()  # a port nobody listens on, once closed
    link = open_link(multiprocessing.get_context("fork"), "127.0.0.1", nobody)
    try:
        with _client(link) as client:
            assert _eof(client)
    finally:
        link.close()


def test_a_link_that_cannot_listen_raises_and_leaves_no_process() -> None:
    with pytest.raises(SystemRefused, match="starting the link") as raised:
        # TEST-NET-1: an address this machine does not have.
        open_link(multiprocessing.get_context("fork"), "192.0.2.1", ("127.0.0.1", 9))
    assert "\n" not in str(raised.value)
    assert not [p for p in multiprocessing.active_children() if p.name == "ticketsim-link"]


@pytest.mark.parametrize("how", ["running", "cut", "dead"])
def test_close_leaves_no_process_and_can_be_repeated(how: str) -> None:
    with _linked() as link:
        if how == "cut":
            link.cut()
        elif how == "dead":
            link.process.kill()
            link.process.join(_WAIT_S)
        began = time.monotonic()
        link.close()
        assert time.monotonic() - began < _WAIT_S  # a stopped relay is ended, not waited for
        assert not link.process.is_alive()
        assert link.process.exitcode is not None
        link.close()
        link.cut()  # on a closed link: nothing to stop, and no error
        link.heal()


def test_a_socket_the_owner_closes_is_not_held_open_by_a_forked_link() -> None:
    """The relay is forked while its owner holds a connection; the owner closes it,
    and its peer is told at once, though the relay still runs."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        owner_side = socket.create_connection(server.getsockname(), timeout=_WAIT_S)
        peer, _ = server.accept()
        with peer:
            link = open_link(multiprocessing.get_context("fork"), "127.0.0.1", ("127.0.0.1", 9))
            try:
                owner_side.close()
                assert _eof(peer)
                assert link.process.is_alive()
            finally:
                link.close()


_OWNER = """
import multiprocessing, time
from ticketsim.engine.link import open_link
link = open_link(multiprocessing.get_context("fork"), "127.0.0.1", ("127.0.0.1", 9))
print(link.pid, flush=True)
time.sleep(60)
"""


def test_the_link_dies_with_its_owner_even_killed() -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", _OWNER],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],  # where ticketsim imports from
    )
    pid = None
    try:
        assert owner.stdout is not None
        ready, _, _ = select.select([owner.stdout], [], [], 10.0)
        assert ready, "the owner never said its link's pid"
        pid = int(owner.stdout.readline())
        assert not _gone(pid)
        owner.kill()  # SIGKILL: no finally, no atexit runs in the owner
        owner.wait(_WAIT_S)
        deadline = time.monotonic() + _WAIT_S
        while not _gone(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _gone(pid)
    finally:
        owner.kill()
        owner.wait(_WAIT_S)
        if owner.stdout is not None:
            owner.stdout.close()
        if pid is not None and not _gone(pid):
            os.kill(pid, signal.SIGKILL)


#: A link started under an open-file limit too low for its connections: the limit is
#: lowered for the link's process only (it inherits it), and put back for the clients.
_STARVED = """
import multiprocessing, resource, socket, time
from ticketsim.engine.link import open_link
store = socket.socket()
store.bind(("127.0.0.1", 0))
store.listen(100)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (24, hard))
link = open_link(multiprocessing.get_context("fork"), "127.0.0.1", store.getsockname())
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
clients = []
for _ in range(30):
    try:
        clients.append(socket.create_connection(link.address, timeout=5))
    except OSError:
        break
    time.sleep(0.01)
link.process.join(10)
print(link.process.exitcode)
print(link.refused())
link.close()
"""


def test_a_link_the_machine_refuses_a_file_descriptor_says_so() -> None:
    """It dropped the connection, as the store would if it refused it, and the sale
    read as a store gone (exit 3), not as the open-file limit (exit 4)."""
    done = python(_STARVED, timeout=60)
    assert done.returncode == 0, done.stderr
    code, refused = done.stdout.splitlines()
    assert int(code) == errno.EMFILE
    # The limit it names is this process's, which a run shares with its links.
    assert "the open-file limit (ulimit -n: " in refused
    assert "refused a connection" in refused
    assert "raise the limit" in refused
