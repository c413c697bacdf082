"""The console script's entry point, kept free of imports.

Under ``spawn`` and ``forkserver`` every buyer process re-imports the parent's
``__main__`` (the ``ticketsim`` script). That script imports only this module, so a
buyer does not pay for typer and rich; the command line is imported on call.

Once the command has decided its exit code and everything registered to run at exit
has run, the program ends there: the interpreter would go on to take apart every
module and object of the command line and the library one by one, which took longer
than drawing the report, and which nothing needs from a program that is ending.
"""

from __future__ import annotations

import atexit
import os
import sys

try:  # signal is _signal and its enums, whose import took 6 ms of the 8 before the guard
    import _signal as signals  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - CPython has it
    import signal as signals


def _interrupted(signum: int, frame: object) -> None:
    """Ctrl-C before :func:`main` catches it: one line, not a traceback."""
    del signum, frame
    os.write(2, b"ticketsim: interrupted\n")
    os._exit(130)


def _no_bytecode_under_a_size_limit() -> None:
    """Under a file size limit (``ulimit -f``) write no bytecode, here or in the buyers.

    Python ignores SIGXFSZ, so a write past the limit is cut short without an error,
    and its import system does not check: the ``.pyc`` of a module compiled here would
    be left truncated in the cache, and every later ``ticketsim`` (of any user, with no
    limit) would end in "marshal data too short" when it imports that module.
    """
    try:
        import resource  # noqa: PLC0415 - a built-in module, and only for this
    except ImportError:  # pragma: no cover - Windows has no such limit
        return
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY:
        sys.dont_write_bytecode = True
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"  # for buyers that start afresh (spawn)


_no_bytecode_under_a_size_limit()

# From here until main() is called; not in a buyer importing this module (below).
if "__mp_main__" not in sys.modules:
    signals.signal(signals.SIGINT, _interrupted)

#: The exit code the command decided, once it has: then the program ends at once.
_decided: list[int] = []


def _end_at_once() -> None:
    """The last exit handler (registered first): flush what is left and end."""
    if not _decided:
        return
    for stream in (sys.stdout, sys.stderr):
        # The command flushed stdout itself and chose its code for what failed there.
        try:
            if stream is not None:
                stream.flush()
        except Exception:
            pass
    os._exit(_decided[0])


if "__mp_main__" in sys.modules:
    # A spawn child importing the parent's main module, before it unpickles its work.
    from ticketsim.sale import _bootstrap

    _bootstrap.install()


def main() -> None:
    # Before anything else is registered: exit handlers run last registered first, so
    # multiprocessing's (ending its processes, removing its files) run before this one.
    atexit.register(_end_at_once)
    # Python's own again: the command line turns a Ctrl-C into its exit, ending what
    # it started first.
    signals.signal(signals.SIGINT, signals.default_int_handler)
    try:
        from ticketsim.cli import main as cli_main  # noqa: PLC0415 - the point of this module
    except KeyboardInterrupt:
        # Ctrl-C while the command line loads: nothing has started, so nothing to end.
        os.write(2, b"ticketsim: interrupted\n")
        sys.exit(130)
    try:
        cli_main()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            _decided.append(exc.code or 0)
        raise
