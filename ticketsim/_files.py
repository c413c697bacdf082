"""Writing a file so that every reader sees the old content or the new, never half.

Used for the db and for every file ticketsim writes beside it (histories, timelines,
plots). Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TypeAlias

    #: What :func:`replace_bytes` writes: ``bytes``, or a ``memoryview`` of them.
    Buffer: TypeAlias = bytes | memoryview


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
    """Write ``text`` to ``path`` (UTF-8) as :func:`replace_bytes` does."""
    replace_bytes(path, (text.encode("utf-8"),))


def replace_bytes(
    path: str | os.PathLike[str], chunks: Sequence[Buffer], *, dry_run: bool = False
) -> None:
    """Write ``chunks``, one after the other, to ``path`` through a temp file in the
    same folder and ``os.replace``.

    A rename within one file system is atomic, so there is no moment at which the file
    is empty or half written. A symlink is written through to its target (the link
    stays a link), and an existing file keeps its permission bits. On any failure the
    temp file is removed and the error raised. No ``fsync``: this protects against a
    process dying mid-write, which is what ticketsim simulates, not against power loss.
    The chunks are written from where they lie, so that a caller adding a line to a big
    file it has read need not copy it. With ``dry_run`` the temp file is written and
    removed, and ``path`` left alone: a rehearsal, to warm a fresh process's first write.
    """
    target = os.path.realpath(path)
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        # The temp file is created 0600; a new db gets what open() would have given it.
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, temp = _create_temp(target)
    try:
        try:
            for chunk in chunks:
                data = memoryview(chunk)
                while data:
                    data = data[os.write(fd, data) :]
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        if dry_run:
            os.unlink(temp)
        else:
            os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


#: A writer's temp files are numbered; this many taken means something else is wrong.
_MAX_TEMPS: Final = 1000


def _create_temp(target: str) -> tuple[int, str]:
    """Create a new temp file for ``target``, only its writer able to read it (0600).

    Named by pid and a number rather than by ``tempfile``: the name must tell a sweep
    whose it is, and ``tempfile`` seeds a random generator in every new process, which
    a buyer would pay for inside its critical section.
    """
    folder, prefix = os.path.dirname(target), temp_prefix(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for number in range(_MAX_TEMPS):
        temp = os.path.join(folder, f"{prefix}{number}.tmp")
        try:
            return os.open(temp, flags, 0o600), temp
        except FileExistsError:
            continue  # left by a dead writer whose pid this process reuses
    raise FileExistsError(errno.EEXIST, f"{_MAX_TEMPS} temp files of this process", target)
