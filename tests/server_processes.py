"""What the tests of the servers share: finding a server's processes through /proc,
and a guard that ends whatever a failing test left running (each test module makes it
a fixture: ``with Leftovers() as guard: yield guard``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ticketsim.servers import _folder

if TYPE_CHECKING:
    import pytest

#: The state of a listening socket in /proc/net/tcp.
_LISTEN = "0A"


def users_of(folder: Path) -> list[int]:
    """The processes working in ``folder`` or naming it on their command line: a
    postmaster names it, and every backend of it works in its data folder."""
    needle = os.fsencode(folder)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cwd = os.readlink(f"/proc/{entry}/cwd")
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                named = needle in cmdline.read()
            if named or cwd == str(folder) or cwd.startswith(f"{folder}/"):
                found.append(int(entry))
    return found


def tcp_listeners(pids: list[int]) -> set[int]:
    """The TCP sockets, by inode, that any of ``pids`` listens on."""
    owned = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    owned.add(int(link[len("socket:[") : -1]))
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if fields[3] == _LISTEN:
                    listening.add(int(fields[9]))
    return owned & listening


@dataclass
class Leftovers:
    """Folders of servers a test made; at its end, whatever still uses them is killed
    and they are removed, so that a failing test leaves nothing behind."""

    folders: list[Path] = field(default_factory=list)
    owners: list[subprocess.Popen[str]] = field(default_factory=list)

    def track(self, folder: Path) -> Path:
        self.folders.append(folder)
        return folder

    def wait_gone(self, folder: Path, seconds: float) -> list[int]:
        """Wait until no process uses ``folder``; those still using it after ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := users_of(folder)) and time.monotonic() < deadline:
            time.sleep(0.02)
        return left

    def owner(self, server_class: str) -> tuple[subprocess.Popen[str], Path, int]:
        """A python process that starts a server, prints its folder and pid, and sleeps;
        the process, the folder and the server's pid."""
        script = textwrap.dedent(
            f"""
            import time
            from ticketsim.servers import {server_class}
            server = {server_class}()
            server.start()
            print(server.folder, server.pid, flush=True)
            time.sleep(120)
            """
        )
        process = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
        )
        self.owners.append(process)
        assert process.stdout is not None
        folder, pid = process.stdout.readline().split()
        return process, self.track(Path(folder)), int(pid)

    def __enter__(self) -> Leftovers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.clean()

    def clean(self) -> None:
        for process in self.owners:
            if process.poll() is None:
                process.kill()
            process.wait(10)
            if process.stdout is not None:
                process.stdout.close()
        for folder in self.folders:
            for pid in users_of(folder):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            shutil.rmtree(folder, ignore_errors=True)


def recording_folders(monkeypatch: pytest.MonkeyPatch, guard: Leftovers) -> list[Path]:
    """The folders servers make from now on, tracked by ``guard``."""
    real = _folder.Folder

    def recorded(kind: str, socket_name: str, *, for_others: bool = False) -> _folder.Folder:
        folder = real(kind, socket_name, for_others=for_others)
        guard.track(folder.root)
        return folder

    monkeypatch.setattr(_folder, "Folder", recorded)
    return guard.folders
