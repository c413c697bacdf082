"""A private, throwaway server for one run, removed whatever happens.

:class:`Server` owns the protocol; a server fills in only its own parts (where its
programs are, how to prepare its folder, its command line, how to tell it answers).

The server listens on a Unix socket in a folder of its own, never on TCP, so nothing
off the machine reaches it and no two runs meet. A server that refuses root (PostgreSQL)
runs as ``nobody`` when ticketsim is root, and any other process of that user could
reach its socket: it holds nothing but a throwaway sale. It runs as a direct child in a
session of its own: a Ctrl-C at the terminal reaches ticketsim only, which stops it in
order. A ticketsim that is SIGKILLed stops nothing, so the kernel ends the server
itself (``PR_SET_PDEATHSIG``, Linux only) and the next start removes the folder left
behind. That signal follows the *thread* that started the server: start it from the
main thread, or from one that lives as long as the server.
"""

from __future__ import annotations

import abc
import contextlib
import os
import pwd
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeVar

from ticketsim.core._interrupts import held
from ticketsim.errors import ServerUnavailable
from ticketsim.servers import _folder

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path
    from types import TracebackType

    from ticketsim.servers._find import Programs
    from ticketsim.servers._folder import Layout

AddressT = TypeVar("AddressT")

#: The user a server that refuses root runs as, when ticketsim runs as root.
UNPRIVILEGED: Final = "nobody"
_PR_SET_PDEATHSIG: Final = 1
#: How long a server may take to end once SIGKILLed (it cannot refuse; only a stuck
#: disk can make it wait).
_KILL_S: Final = 5.0
#: How long a program asked to end (:meth:`Server._ask_to_end`) has before its SIGKILL.
_ASKED_S: Final = 3.0
_LOG_LINES: Final = 3


class Server(abc.ABC, Generic[AddressT]):
    """A server started for one run: :meth:`start` it (or use it as a context manager,
    which gives its address) and :meth:`stop` it; stopping also removes its folder."""

    #: Its name in messages.
    name: ClassVar[str]
    #: Its part of the folder's name.
    kind: ClassVar[str]
    #: The name of its socket in the folder's ``run`` part.
    socket_name: ClassVar[str]
    #: What asks it to end at once; it gets SIGKILL if it has not within the timeout.
    stop_signal: ClassVar[signal.Signals]
    #: What the kernel sends it when ticketsim dies without stopping it.
    death_signal: ClassVar[signal.Signals]
    #: Whether it refuses to run as root (it then runs as :data:`UNPRIVILEGED`).
    refuses_root: ClassVar[bool] = False

    def __init__(self, *, ready_timeout: float = 30.0, stop_timeout: float = 10.0) -> None:
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self._folder: _folder.Folder | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._address: AddressT | None = None

    # The parts each server fills in.

    @abc.abstractmethod
    def find(self) -> Programs:
        """Its programs, or :class:`ServerUnavailable` saying what to install."""

    def prepare(self, programs: Programs, layout: Layout) -> None:
        """Make its data before it starts (nothing by default)."""

    @abc.abstractmethod
    def command(self, programs: Programs, layout: Layout) -> list[str]:
        """The command line that runs it in the foreground."""

    @abc.abstractmethod
    def answers(self, connection: socket.socket) -> bool:
        """Whether it answers a request on ``connection`` as a ready server would."""

    @abc.abstractmethod
    def address_of(self, layout: Layout) -> AddressT:
        """How clients reach it."""

    # The protocol.

    @property
    def address(self) -> AddressT:
        """How clients reach the started server."""
        if self._address is None:
            raise RuntimeError(f"{self.name} server is not started")
        return self._address

    @property
    def folder(self) -> Path | None:
        """Its private folder while it runs."""
        return None if self._folder is None else self._folder.root

    @property
    def pid(self) -> int | None:
        """Its process id while it runs."""
        return None if self._process is None else self._process.pid

    def start(self) -> AddressT:
        """Start the server and wait until it answers; its address. Once started,
        again gives the same address."""
        if self._address is not None:
            return self._address
        if threading.current_thread() is not threading.main_thread():
            # The kernel ends the server when the thread that started it ends.
            raise RuntimeError(f"start a {self.name} server from the main thread")
        programs = self.find()
        _folder.sweep()
        try:
            user = self._user()
            with held():
                self._folder = _folder.Folder(
                    self.kind, self.socket_name, for_others=user is not None
                )
            layout = self._folder.layout
            if user is not None:
                self._folder.hand_to(*user)
            self.prepare(programs, layout)
            with held():
                self._process = self.spawn(self.command(programs, layout), layout)
            self._wait_ready(layout)
            self._address = self.address_of(layout)
        except BaseException:
            self.stop()
            raise
        return self._address

    def stop(self) -> None:
        """End the server and remove its folder; again, or before a start, does nothing.

        Ctrl-C is held meanwhile: every wait is bounded, and an interrupted stop would
        leave the server behind.
        """
        with held():
            process, self._process = self._process, None
            folder, self._folder = self._folder, None
            self._address = None
            try:
                if process is not None:
                    self._end(process)
            finally:
                if folder is not None:
                    try:
                        if process is not None and process.poll() is not None:
                            self.release(folder.layout)
                    finally:
                        folder.remove()

    def __enter__(self) -> AddressT:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # Helpers for the parts.

    def spawn(self, argv: list[str], layout: Layout) -> subprocess.Popen[bytes]:
        """Start one of its programs tied to this thread, writing to its log."""
        user = self._user()
        as_user: dict[str, Any] = {}
        if user is not None:
            as_user = {"user": user[0], "group": user[1], "extra_groups": []}
        with open(layout.log, "ab") as log:
            try:
                return subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=layout.run,
                    env={**os.environ, "LC_ALL": "C"},
                    start_new_session=True,
                    preexec_fn=tie_to_this_thread(self.death_signal, server=True),  # noqa: PLW1509 - the only way to prctl
                    **as_user,
                )
            except OSError as error:  # not there any more, not runnable, not for this user
                raise self._unrunnable(argv[0], error) from error

    def run_to_end(self, argv: list[str], layout: Layout) -> None:
        """Run one of its programs to its end (within the ready timeout), or fail."""
        process = self.spawn(argv, layout)
        try:
            code = process.wait(self.ready_timeout)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            with held():  # a second Ctrl-C waits for this end, which is bounded
                if process.poll() is None:  # interrupted, or too slow: asked to end
                    self._ask_to_end(process)
                # Its whole group: initdb's own child (postgres --boot) would go on
                # writing into the folder that is about to be removed.
                kill_group(process)
        if code != 0:
            what = "did not end" if code is None else f"exited with code {code}"
            raise self._failed(f"{os.path.basename(argv[0])} {what}", layout)

    def _ask_to_end(self, process: subprocess.Popen[bytes]) -> None:
        """Ask a program of the server's that is still running to end, as its owner's
        death would (:attr:`death_signal`), and give its group a bounded while to do so.

        initdb ends on it, and so then does the postgres it runs, reading its input to
        the end: a postgres SIGKILLed instead leaves its shared memory (a System V
        segment, files in /dev/shm) for good.
        """
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(self.death_signal)
        _wait_group_gone(process, _ASKED_S)

    # The protocol's steps.

    def _user(self) -> tuple[int, int] | None:
        if not self.refuses_root or os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(UNPRIVILEGED)
        except KeyError:
            raise ServerUnavailable(
                self.name,
                f"it refuses to run as root, and there is no user {UNPRIVILEGED!r} to run it as",
                f"run ticketsim as an ordinary user, or add the user {UNPRIVILEGED}",
            ) from None
        return entry.pw_uid, entry.pw_gid

    def _wait_ready(self, layout: Layout) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.ready_timeout
        pause = 0.005
        while True:
            code = self._process.poll()
            if code is not None:
                raise self._failed(f"exited with code {code} before answering", layout)
            if self._probe(layout.run / self.socket_name):
                return
            if time.monotonic() >= deadline:
                raise self._failed(f"did not answer within {self.ready_timeout:g} s", layout)
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

    def _probe(self, path: Path) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(1.0)
                connection.connect(os.fspath(path))
                return self.answers(connection)
        except OSError:
            return False

    def release(self, layout: Layout) -> None:
        """Once the server has ended: free what it holds outside its folder that its own
        shutdown would have freed, had it had one (it may have been killed). Never
        raises; by default there is nothing."""
        del layout

    def _end(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(self.stop_timeout)
                return
        kill_group(process)

    def _failed(self, problem: str, layout: Layout) -> ServerUnavailable:
        tail = _log_tail(layout.log)
        said = f"; its log ends: {tail}" if tail else "; its log is empty"
        return ServerUnavailable(
            self.name,
            f"{problem}{said}",
            "fix what its log says (a setting, free disk, shared memory, permissions)",
        )

    def _unrunnable(self, program: str, error: OSError) -> ServerUnavailable:
        user = self._user()
        who = "" if user is None else f" as the user {UNPRIVILEGED}"
        return ServerUnavailable(
            self.name,
            f"cannot run {program}{who}: {error.strerror}",
            "install it where every user can read it (from the system's packages), "
            "or run ticketsim as an ordinary user",
        )


def _log_tail(log: Path) -> str:
    """The last lines of a log, on one line."""
    try:
        with open(log, "rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - 4096))
            text = file.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-_LOG_LINES:])


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left of ``process``'s group (its session, made for it alone)
    and wait, a bounded time, until none of it is left. A postmaster's backends leave
    the group (each makes a session of its own), but end by themselves once their
    postmaster is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    _wait_group_gone(process, _KILL_S)


def _wait_group_gone(process: subprocess.Popen[bytes], within: float) -> None:
    """Wait until ``process`` has ended (reaped) and nothing is left of its group, for
    at most ``within`` seconds for each."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(within)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.01)


def tie_to_this_thread(death: signal.Signals, *, server: bool = False) -> Callable[[], None]:
    """What a program of ticketsim's runs between fork and exec: die with this thread,
    and take the signals ``held()`` holds (exec keeps the mask, and a program must hear
    them); a ``server`` also gets more open files (:func:`_files_wanted`)."""
    prctl = _libc_prctl()
    parent = os.getpid()
    files = _files_wanted() if server else None

    def tie() -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        if files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, files)
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(death), 0, 0, 0)
        # The parent may have died before the kernel was asked.
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return tie


#: The open files a server of ticketsim's is let have, if its hard limit allows: Redis
#: wants 10,032 (10,000 clients), PostgreSQL 58 to start and more per connection.
_SERVER_FILES: Final = 10_240


def _files_wanted() -> tuple[int, int] | None:
    """The open-file limit to start a server with: the soft limit raised towards the
    hard one, which needs no privilege, ``None`` to keep it. A user's low soft limit is
    for their own programs; under it, Redis takes only ``limit - 32`` clients and
    refuses a sale of several hosts its buyers' connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = _SERVER_FILES if hard == resource.RLIM_INFINITY else min(hard, _SERVER_FILES)
    return (wanted, hard) if soft != resource.RLIM_INFINITY and soft < wanted else None


def _libc_prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes  # noqa: PLC0415 - Linux only

        return ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None
