"""The link between one simulated host and the store: a TCP relay in a process of its own.

A race against a database looks different over a slow or broken network: a buyer's
request can sit on the wire while another's commits, and a host cut off from the store
holds what it took. ticketsim simulates that without touching the network stack: each
host talks to the store through a relay that sits beside the store (in the root network
namespace, where the store listens) and that ticketsim can slow down and cut. ``tc
netem`` would do the same inside the kernel, but not every kernel has it (this one does
not), and it needs privileges; a relay is portable.

The relay delays every chunk in each direction by the same time, reading on meanwhile,
so the link has a latency, not a throughput cap. Cutting the link stops the relay
process (SIGSTOP): nothing moves, while the kernel still accepts bytes into the socket
buffers, as on a link that drops packets TCP will resend. Healing it lets everything
through, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
from multiprocessing import util
from typing import TYPE_CHECKING, Any, Final

from ticketsim.core.frozen import field, frozen
from ticketsim.errors import SystemRefused
from ticketsim.sale import _limits, _signals

if TYPE_CHECKING:
    import multiprocessing.context
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

#: The most the relay reads at once from either side.
_CHUNK: Final = 64 * 1024
#: Ends a link left open when ticketsim exits, before multiprocessing reaps its
#: children: one that is cut would never die of the SIGTERM it is sent, and the exit
#: would wait on it for ever.
_EXIT_PRIORITY: Final = 10
#: How long ending a link may wait at each step, when nobody says.
_CLOSE_S: Final = 5.0
#: The links opened and not yet closed: what ticketsim ends at exit, by pid.
_AT_EXIT: dict[int, util.Finalize] = {}


@frozen
class Link:
    """A relay to the store, at ``address``, running in ``process``."""

    address: tuple[str, int]
    process: BaseProcess = field(compare=False, repr=False)

    @property
    def pid(self) -> int:
        pid = self.process.pid
        if pid is None:  # pragma: no cover - a Link is only made of a started process
            raise ValueError("the link's process was never started")
        return pid

    def cut(self) -> None:
        """Partition the host from the store: no byte moves either way until :meth:`heal`.
        A link whose process has ended moves nothing already: nothing to do."""
        _signal(self.process, signal.SIGSTOP)

    def heal(self) -> None:
        """End the partition: what waited in the socket buffers goes through, in order."""
        _signal(self.process, signal.SIGCONT)

    def refused(self) -> SystemRefused | None:
        """Why the relay ended itself, if the machine refused it a file descriptor (its
        connections were then cut, as the store's would be): ``None`` if it did not."""
        code = self.process.exitcode
        if code not in _limits.FILE_ERRNOS:
            return None
        limit = _limits.cause(OSError(code, os.strerror(code)))
        return SystemRefused(
            f"relaying a host's connections to the store ({self.address[0]})",
            f"{limit} refused a connection; lower --buyers, or raise the limit",
        )

    def close(self, timeout: float = _CLOSE_S) -> None:
        """End the relay, waiting at most ``timeout`` s at each step; again does nothing."""
        finalizer = _AT_EXIT.pop(self.pid, None)
        if finalizer is not None:
            finalizer.cancel()
        _end(self.process, timeout)


def open_link(
    ctx: multiprocessing.context.BaseContext,
    listen: str,
    target: str | tuple[str, int],
    delay: float = 0.0,
    *,
    timeout: float = 10.0,
) -> Link:
    """Start a relay that listens on the IPv4 address ``listen`` (on a port the kernel
    picks) and relays each connection to ``target``, ``delay`` s late each way.

    Raises OSError if it is not listening within ``timeout`` s (the process is ended).
    """
    if delay < 0:
        raise ValueError(f"a link's delay is at least 0 s, not {delay}")
    reader, writer = ctx.Pipe(duplex=False)
    # Daemonic: a link left open is ended when ticketsim exits, not waited for. It
    # starts no process of its own, which is all a daemonic process may not do.
    # typeshed's BaseContext lacks Process; every concrete context has it.
    process: BaseProcess = ctx.Process(  # type: ignore[attr-defined]
        target=_relay,
        name="ticketsim-link",
        args=(listen, target, delay, writer, ctx.get_start_method() == "fork"),
        daemon=True,
    )
    with reader:
        try:
            try:
                with _signals.held():  # an interrupt now must find the process to end
                    process.start()
            finally:
                writer.close()  # the child's copy is its own: its death reads as EOF here
            answer = _answer(reader, timeout)
            if not isinstance(answer, int):
                raise SystemRefused(f"starting the link to {_shown(target)}", answer)
        except BaseException:
            _end(process, timeout)
            raise
    link = Link((listen, answer), process)
    _AT_EXIT[link.pid] = util.Finalize(
        None, _end, args=(process, _CLOSE_S), exitpriority=_EXIT_PRIORITY
    )
    return link


def _answer(reader: Connection, timeout: float) -> int | str:
    """The relay's port, or why it has none."""
    try:
        if not reader.poll(timeout):
            return f"it was not listening after {timeout:g} s"
        answer = reader.recv()
    except (EOFError, OSError):
        return "its process died as it started"
    return answer if isinstance(answer, int | str) else f"it answered {answer!r}"


def _signal(process: BaseProcess, signum: signal.Signals) -> None:
    # A reaped process's pid may be someone else's by now: only one not reaped is signalled.
    if process.pid is not None and process.exitcode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)


def _end(process: BaseProcess, timeout: float) -> None:
    """End ``process``, stopped or not, waiting at most ``timeout`` s at each step."""
    if process.pid is None:
        return  # never started
    if process.exitcode is None:
        _signal(process, signal.SIGCONT)  # a stopped process dies of nothing but SIGKILL
        process.terminate()
        process.join(timeout)
    if process.exitcode is None:
        process.kill()
        process.join(timeout)


# --- in the relay's process ------------------------------------------------------------------


def _relay(
    listen: str, target: str | tuple[str, int], delay: float, port_out: Connection, forked: bool
) -> None:
    _signals.as_child()
    if forked:
        _drop_sockets(keep=port_out.fileno())
    # Its stderr is ticketsim's terminal: a connection that fails is closed, not reported.
    logging.getLogger("asyncio").disabled = True
    asyncio.run(_serve(listen, target, delay, port_out))


def _drop_sockets(keep: int) -> None:
    """Let go of the sockets a forked relay holds copies of (Linux; elsewhere it keeps them).

    A connection ticketsim closes would otherwise stay open, its peer never told, for
    as long as the relay runs. Each is replaced by /dev/null rather than closed: its
    Python object, copied too, may still close that number some day, which must not
    be one of the relay's own sockets by then.
    """
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in fds:
            with contextlib.suppress(OSError):  # the listing's own descriptor is gone
                if fd != keep and stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.dup2(null, fd, inheritable=False)
    finally:
        os.close(null)


async def _serve(
    listen: str, target: str | tuple[str, int], delay: float, port_out: Connection
) -> None:
    asyncio.get_running_loop().set_exception_handler(_ignore)

    async def connected(client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        await _connect(target, delay, client_in, client_out)

    with port_out:
        try:
            server = await asyncio.start_server(connected, listen, 0, family=socket.AF_INET)
        except OSError as exc:
            port_out.send(f"listening on {listen}: {exc.strerror or exc}")
            return
        port_out.send(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def _ignore(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    del loop
    _out_of_files(context.get("exception"))  # asyncio's accept() says it here


def _out_of_files(exc: object) -> None:
    """End the relay, its exit code the errno, if the machine refused it a file
    descriptor: a link that drops connections would pass for a store gone, and the
    sale for one that failed on its own (:meth:`Link.refused` says why instead)."""
    if isinstance(exc, OSError) and exc.errno in _limits.FILE_ERRNOS:
        os._exit(exc.errno)


async def _connect(
    target: str | tuple[str, int],
    delay: float,
    client_in: asyncio.StreamReader,
    client_out: asyncio.StreamWriter,
) -> None:
    """Relay one client's connection to ``target`` until both sides have closed, or
    either has failed (then both are closed at once)."""
    try:
        if isinstance(target, str):  # a server's Unix socket
            server_in, server_out = await asyncio.open_unix_connection(target)
        else:
            server_in, server_out = await asyncio.open_connection(*target)
    except OSError as exc:
        _out_of_files(exc)
        client_out.close()  # as the store would look if it refused the connection
        return
    queues: tuple[asyncio.Queue[tuple[float, bytes]], ...] = (asyncio.Queue(), asyncio.Queue())
    tasks = [
        asyncio.create_task(_read(client_in, queues[0], delay)),
        asyncio.create_task(_deliver(queues[0], server_out)),
        asyncio.create_task(_read(server_in, queues[1], delay)),
        asyncio.create_task(_deliver(queues[1], client_out)),
    ]
    failed = True
    try:
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = bool(pending)
    finally:
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # taken here, so asyncio has nothing to report of it
            task.cancel()
        for writer in (client_out, server_out):
            if failed:  # one side failed: the other learns it as a reset, not a clean end
                writer.transport.abort()
            writer.close()


async def _read(
    source: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes]], delay: float
) -> None:
    """Queue what ``source`` sends, each chunk with the time it is due, then its EOF."""
    loop = asyncio.get_running_loop()
    while True:
        data = await source.read(_CHUNK)
        queue.put_nowait((loop.time() + delay, data))
        if not data:
            return


async def _deliver(queue: asyncio.Queue[tuple[float, bytes]], sink: asyncio.StreamWriter) -> None:
    """Write each chunk once due, in order, and the EOF after the last."""
    loop = asyncio.get_running_loop()
    while True:
        due, data = await queue.get()
        # A timer may fire a hair early; a chunk is never delivered before it is due.
        while (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        if not data:
            if sink.can_write_eof():
                sink.write_eof()  # a half-close: the other way may still have data to come
            else:
                sink.close()
            return
        sink.write(data)
        await sink.drain()


def _shown(target: str | tuple[str, int]) -> str:
    return target if isinstance(target, str) else f"{target[0]}:{target[1]}"
