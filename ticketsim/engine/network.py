"""The simulated hosts of ``run --hosts``: network namespaces where Linux lets
ticketsim make them, process groups elsewhere.

A namespace host has an address of its own and reaches the rest of the machine only
over a virtual link (a veth pair) to the host's gateway address, where its link to
the store listens (:mod:`ticketsim.engine.link`). Cutting that link (``ip link set
down``) is a real partition: nothing it sends arrives until the link is up again.

Nothing is left behind. A namespace is never named: each host's program makes its own
as it starts (``unshare --net``), and ticketsim plugs the veth pair into it by the
program's pid, made inside it in one command. So the namespace lives exactly as long
as the processes in it, which die with ticketsim (``PR_SET_PDEATHSIG``), also when
ticketsim is SIGKILLed, and takes its veth pair with it. A namespace outlives its
processes while its sockets still hold data for a link that is down (a host killed
mid-partition), so a guard process deletes ticketsim's end of each link as soon as
ticketsim is gone, however it ended: it waits for the end of a pipe only ticketsim
holds. Links of a ticketsim that is gone and whose guard died too are swept by the next.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ticketsim.core._files import process_gone
from ticketsim.errors import ConfigError, SystemRefused
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
_VETH: Final = re.compile(r"ts(\d+)[hn]\d+")


def namespaces_refused() -> str | None:
    """Why this machine cannot give ticketsim network namespaces, or ``None`` if it can."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces are Linux's, and this is {sys.platform}"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    for program in ("unshare", "nsenter"):
        if shutil.which(program) is None:
            return f"the {program} command (util-linux) is not installed"
    if os.geteuid() != 0:
        return "making network namespaces takes root (CAP_NET_ADMIN)"
    # Root in a container may still be refused (no CAP_SYS_ADMIN): ask once.
    tried = _run(["unshare", "--net", "true"], check=False)
    if tried.returncode != 0:
        said = (tried.stderr.strip() or f"exit {tried.returncode}").splitlines()[-1]
        return f"unshare --net was refused here ({said})"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run(["ip", *args], check=check)


def _run(argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one network command, bounded; :class:`SystemRefused` (exit 4) if it fails."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_IP_S, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        if not check:
            return subprocess.CompletedProcess(argv, 1, "", str(exc))
        raise SystemRefused(f"making the hosts ({' '.join(argv)})", str(exc)) from None
    if check and done.returncode != 0:
        problem = (done.stderr.strip() or f"exit {done.returncode}").splitlines()[-1]
        raise SystemRefused(f"making the hosts ({' '.join(argv)})", problem)
    return done


def _links() -> list[str]:
    """The names of this machine's network links."""
    names = []
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            names.append(parts[1].strip().split("@")[0])
    return names


def sweep() -> list[str]:
    """Delete the links of ticketsim processes that are gone (their guard died too)."""
    swept = []
    for link in _links():
        match = _VETH.fullmatch(link)
        if match and process_gone(int(match.group(1))):
            _ip("link", "delete", link, check=False)
            swept.append(link)
    return swept


def _wait_own_namespace(pid: int) -> None:
    """Wait until process ``pid`` (just started by ``unshare --net``) has left this
    process's network namespace for its own: ``unshare`` makes it after its exec."""
    ours = os.readlink("/proc/self/ns/net")
    deadline = time.monotonic() + _IP_S
    while True:
        try:
            if os.readlink(f"/proc/{pid}/ns/net") != ours:
                return
        except OSError:
            raise SystemRefused(
                "making the hosts", f"a host's program (pid {pid}) ended as it started"
            ) from None
        if time.monotonic() > deadline:
            raise SystemRefused(
                "making the hosts", f"a host's program (pid {pid}) never made its namespace"
            )
        time.sleep(0.002)


@dataclass
class Machines:
    """``count`` hosts, made as ``mode`` asks (``auto``: namespaces if possible)."""

    count: int
    mode: str = "auto"
    kind: str = ""
    #: Why the hosts are process groups when namespaces were possible to ask for.
    why: str | None = None
    _links: list[str] = field(default_factory=list)
    _subnet: str = ""
    _guard: subprocess.Popen[bytes] | None = None
    #: This run's hold on its subnet (see :func:`claim_subnet`).
    _claim: socket.socket | None = None

    def __enter__(self) -> Machines:
        refused = namespaces_refused() if self.mode != PROCESS_GROUP else "asked for"
        if refused is not None and self.mode == NAMESPACE:
            raise ConfigError(
                "host_mode", NAMESPACE, f"{refused}; use --host-mode process-group (or auto)"
            )
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
        for n in range(pid % 250, pid % 250 + 250):
            subnet = f"10.213.{n % 250}"
            if f" {subnet}." not in used:
                self._claim = claim_subnet(subnet)
                if self._claim is not None:
                    self._subnet = subnet
                    break
        else:
            raise SystemRefused(
                "making the hosts",
                "every subnet 10.213.0.0/24 to 10.213.249.0/24 is taken by other runs of "
                "ticketsim --hosts or by this machine's own interfaces: wait for one to end",
            )
        self._guard = subprocess.Popen(
            [sys.executable, "-m", "ticketsim.engine.network", str(pid)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C is for ticketsim, which ends it itself
        )

    def _wire(self, number: int, inside_pid: int) -> None:
        """Give the namespace of process ``inside_pid`` host ``number``'s link."""
        pid = os.getpid()
        outside, inside = f"ts{pid}h{number}", f"ts{pid}n{number}"
        _wait_own_namespace(inside_pid)
        # One command makes both ends, one already inside: no moment leaves both out here.
        _ip(
            "link", "add", outside, "type", "veth", "peer", "name", inside, "netns", str(inside_pid)
        )
        self._links.append(outside)
        _ip("addr", "add", f"{self.gateway(number)}/30", "dev", outside)
        _ip("link", "set", outside, "up")
        enter = ["nsenter", "-t", str(inside_pid), "-n", "ip"]
        for args in (
            ["addr", "add", f"{self.address(number)}/30", "dev", inside],
            ["link", "set", inside, "up"],
            ["link", "set", "lo", "up"],
        ):
            _run([*enter, *args])

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
        thread's life; its output goes to ``log``, its stdin is a pipe to write to. A
        namespace host's program makes its namespace as it starts, and is plugged in."""
        command = list(argv)
        if self.kind == NAMESPACE:
            command = ["unshare", "--net", "--", *command]
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=tie_to_this_thread(signal.SIGKILL),  # noqa: PLW1509 - the only way to prctl
        )
        if self.kind == NAMESPACE:
            try:
                self._wire(number, process.pid)
            except BaseException:
                process.kill()
                process.wait(_IP_S)
                raise
        return process

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
        """Remove every link still there (a namespace whose processes are gone takes its
        end of the veth pair, and so the pair, with it), then let the subnet go."""
        for link in self._links:
            with contextlib.suppress(OSError):
                if Path("/sys/class/net", link).exists():
                    _ip("link", "delete", link, check=False)
        self._links.clear()
        guard, self._guard = self._guard, None
        if guard is not None:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                guard.communicate(timeout=_IP_S)  # closes its pipe: it sweeps and ends
            if guard.poll() is None:
                guard.kill()
                with contextlib.suppress(subprocess.SubprocessError):
                    guard.wait(_IP_S)
        claim, self._claim = self._claim, None
        if claim is not None:
            claim.close()


def claim_subnet(subnet: str) -> socket.socket | None:
    """Hold ``subnet`` for this run, or ``None`` if another run holds it.

    Two runs that start together see the same addresses in use, since neither has given
    its links theirs yet, and could pick the same subnet: the same address on two links
    sends one run's buyers to the other's store. The hold is a name in Linux's abstract
    socket namespace, which one socket at a time can bind: no file to leave behind, and
    the kernel lets it go when the process that holds it ends, however it ends.
    """
    hold = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        hold.bind(f"\0ticketsim-hosts-{subnet}")
    except OSError:
        hold.close()
        return None
    return hold


def _guard(owner: int) -> None:
    """The guard of ticketsim process ``owner``'s links: wait for the end of the pipe on
    stdin (``owner`` closed it, or is gone), then delete every link of ``owner``'s."""
    with contextlib.suppress(OSError, KeyboardInterrupt):
        while sys.stdin.buffer.read(4096):
            pass
    for link in _links():
        if re.fullmatch(rf"ts{owner}h\d+", link):
            _ip("link", "delete", link, check=False)


if __name__ == "__main__":
    _guard(int(sys.argv[1]))
