"""The simulated hosts of ``run --hosts``: network namespaces where Linux lets
ticketsim make them, process groups elsewhere.

A namespace host has an address of its own and reaches the rest of the machine only
over a virtual link (a veth pair) to the host's gateway address, where its link to
the store listens (:mod:`ticketsim.engine.link`). Cutting that link (``ip link set
down``) is a real partition: nothing it sends arrives until the link is up again.

Nothing is left behind. A namespace is named only while its host's program starts in
it (``ip netns exec``); the name is then removed, so the namespace lives exactly as
long as the processes in it, which die with ticketsim (``PR_SET_PDEATHSIG``), also
when ticketsim is SIGKILLed. A name left by a ticketsim that was killed in that moment
is swept by the next one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ticketsim.core.hosts import host_name
from ticketsim.servers.base import tie_to_this_thread

if TYPE_CHECKING:
    from collections.abc import Sequence

NAMESPACE, PROCESS_GROUP = "namespace", "process-group"
#: The words the report uses for each kind of host.
KIND_WORDS: Final = {
    NAMESPACE: "network namespaces, each on a veth link of its own",
    PROCESS_GROUP: "process groups on this machine's loopback",
}
#: Every ``ip`` command is bounded.
_IP_S: Final = 10.0
_NETNS: Final = Path("/run/netns")
_OURS: Final = re.compile(r"ticketsim-(\d+)-\d+")
_VETH: Final = re.compile(r"ts(\d+)[hn]\d+")


def namespaces_refused() -> str | None:
    """Why this machine cannot give ticketsim network namespaces, or ``None`` if it can."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces are Linux's, and this is {sys.platform}"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "making network namespaces takes root (CAP_NET_ADMIN)"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=_IP_S, check=False)
    if check and done.returncode != 0:
        problem = (done.stderr.strip() or f"exit {done.returncode}").splitlines()[-1]
        raise OSError(f"ip {' '.join(args)}: {problem}")
    return done


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep() -> list[str]:
    """Remove namespace names and links left by a ticketsim that is gone."""
    swept = []
    names = sorted(p.name for p in _NETNS.iterdir()) if _NETNS.is_dir() else []
    for name in names:
        match = _OURS.fullmatch(name)
        if match and not _alive(int(match.group(1))):
            _ip("netns", "delete", name, check=False)
            swept.append(name)
    links = _ip("-o", "link", "show", check=False).stdout
    for line in links.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        link = parts[1].strip().split("@")[0]
        match = _VETH.fullmatch(link)
        if match and not _alive(int(match.group(1))):
            _ip("link", "delete", link, check=False)
            swept.append(link)
    return swept


@dataclass
class Machines:
    """``count`` hosts, made as ``mode`` asks (``auto``: namespaces if possible)."""

    count: int
    mode: str = "auto"
    kind: str = ""
    #: Why the hosts are process groups when namespaces were possible to ask for.
    why: str | None = None
    _names: list[str] = field(default_factory=list)
    _links: list[str] = field(default_factory=list)
    _subnet: str = ""

    def __enter__(self) -> Machines:
        refused = namespaces_refused() if self.mode != PROCESS_GROUP else "asked for"
        if refused is not None and self.mode == NAMESPACE:
            raise OSError(f"cannot make network namespaces here: {refused}")
        self.kind = PROCESS_GROUP if refused else NAMESPACE
        self.why = refused if refused != "asked for" else None
        if self.kind == NAMESPACE:
            try:
                self._make()
            except BaseException:
                self.close()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _make(self) -> None:
        sweep()
        pid = os.getpid()
        used = _ip("-4", "-o", "addr", "show", check=False).stdout
        third = next(
            (n for n in range(pid % 250, pid % 250 + 250) if f" 10.213.{n % 250}." not in used),
            pid % 250,
        )
        self._subnet = f"10.213.{third % 250}"
        for number in range(1, self.count + 1):
            name, outside, inside = (
                f"ticketsim-{pid}-{number}",
                f"ts{pid}h{number}",
                f"ts{pid}n{number}",
            )
            _ip("netns", "add", name)
            self._names.append(name)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            self._links.append(outside)
            _ip("link", "set", inside, "netns", name)
            _ip("addr", "add", f"{self.gateway(number)}/30", "dev", outside)
            _ip("link", "set", outside, "up")
            _ip("-n", name, "addr", "add", f"{self.address(number)}/30", "dev", inside)
            _ip("-n", name, "link", "set", inside, "up")
            _ip("-n", name, "link", "set", "lo", "up")

    def gateway(self, number: int) -> str:
        """Where host ``number``'s link to the store listens."""
        if self.kind != NAMESPACE:
            return "127.0.0.1"
        return f"{self._subnet}.{4 * (number - 1) + 1}"

    def address(self, number: int) -> str:
        """Host ``number``'s own address."""
        if self.kind != NAMESPACE:
            return "127.0.0.1"
        return f"{self._subnet}.{4 * (number - 1) + 2}"

    def launch(self, number: int, argv: Sequence[str], log: int) -> subprocess.Popen[bytes]:
        """Start ``argv`` on host ``number``, in a process group of its own, tied to this
        thread's life; its output goes to ``log``."""
        command = list(argv)
        if self.kind == NAMESPACE:
            command = ["ip", "netns", "exec", self._names[number - 1], *command]
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=tie_to_this_thread(signal.SIGKILL),  # noqa: PLW1509 - the only way to prctl
        )

    def started(self) -> None:
        """Every host's program runs: drop the namespaces' names, so that each lives
        only as long as its processes."""
        for name in self._names:
            _ip("netns", "delete", name, check=False)
        self._names.clear()

    def cut(self, number: int) -> bool:
        """Take host ``number``'s link down; whether there is a link to take down."""
        if self.kind != NAMESPACE:
            return False
        _ip("link", "set", self._links[number - 1], "down")
        return True

    def heal(self, number: int) -> None:
        if self.kind == NAMESPACE:
            _ip("link", "set", self._links[number - 1], "up", check=False)

    def close(self) -> None:
        """Remove every name and link still there (a namespace whose processes are
        gone takes its end of the veth pair, and so the pair, with it)."""
        for name in self._names:
            _ip("netns", "delete", name, check=False)
        self._names.clear()
        for link in self._links:
            with contextlib.suppress(OSError):
                if Path("/sys/class/net", link).exists():
                    _ip("link", "delete", link, check=False)
        self._links.clear()

    def name(self, number: int) -> str:
        return host_name(number)
