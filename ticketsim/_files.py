"""Writing a file so that every reader sees the old content or the new, never half.

Used for the db and for every file ticketsim writes beside it (histories, timelines,
plots). Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile


def temp_prefix(target: str, pid: int | None = None) -> str:
    """The name a writer's temp file starts with: the writer's pid is in it, so that a
    sweep can tell the leftovers of a dead writer (:func:`ticketsim.db.sweep_temp_files`)."""
    return f".{os.path.basename(target)}.{os.getpid() if pid is None else pid}."


def temp_owner(name: str, target: str) -> int | None:
    """The pid of the writer that made temp file ``name`` for ``target``, or ``None`` if
    ``name`` is not one of ``target``'s temp files."""
    stem = f".{os.path.basename(target)}."
    if not (name.startswith(stem) and name.endswith(".tmp")):
        return None
    pid = name[len(stem) :].split(".", 1)[0]
    return int(pid) if pid.isdigit() else None


def replace_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temp file in the same folder and ``os.replace``.

    A rename within one file system is atomic, so there is no moment at which the file
    is empty or half written. A symlink is written through to its target (the link
    stays a link), and an existing file keeps its permission bits. On any failure the
    temp file is removed and the error raised. No ``fsync``: this protects against a
    process dying mid-write, which is what ticketsim simulates, not against power loss.
    """
    target = os.path.realpath(path)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        # mkstemp creates 0600; a new file gets what open() would have given it.
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, temp = tempfile.mkstemp(
        dir=os.path.dirname(target), prefix=temp_prefix(target), suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
