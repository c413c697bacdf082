"""Folders a ticketsim process makes and holds for as long as it lives, so that a
later one can tell, and remove, those whose maker was SIGKILLed.

A SIGKILLed process runs no cleanup, and nothing could tell its abandoned folder from
a live one. So each folder holds a file its maker keeps ``flock``-ed for life: the
kernel drops the lock when the last process holding it ends, so a folder whose lock
can be taken belongs to nobody alive, in any pid namespace. A folder is removed only
when it is named as ours, owned by this user, and unlocked: never another program's.
multiprocessing's sockets (:mod:`ticketsim.sale._scratch`) and the private servers
(:mod:`ticketsim.servers`) live in such folders.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import re

#: The file inside a folder that its maker holds locked.
LIFE: Final = "alive"
#: The longest socket path, in bytes (``sun_path`` on Linux holds 108 with the NUL).
SUN_PATH: Final = 107
#: Folders short enough for a socket when the user's temp folder is not.
_SHORT_ROOTS: Final = ("/tmp", "/var/tmp")


def roots() -> list[str]:
    """Where a folder may be: the user's temp folder, then the system's (when the
    user's is too deep for a socket's name)."""
    return list(dict.fromkeys([tempfile.gettempdir(), *_SHORT_ROOTS]))


#: A folder of ours with no life file (its maker was killed while making it, or while
#: removing it) is left alone this long after its last change, then taken as abandoned.
_UNBORN_S: Final = 60.0


def _claim(folder: Path) -> int | None:
    """Lock ``folder``'s life file when the folder is ours and nobody alive holds it:
    the descriptor, or ``None`` when it is not ours to remove."""
    try:
        info = folder.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        return None
    try:
        return _unheld(folder / LIFE)
    except FileNotFoundError:
        return _unborn(folder, young=time.time() - info.st_mtime <= _UNBORN_S)


def _unborn(folder: Path, *, young: bool) -> int | None:
    """A folder with no life file: a maker killed mid-way, or one still making it. Its
    half-made one, locked, says it lives; unlocked, it may be one its maker has made and
    not locked yet, so that only the folder's age can tell, as when there is neither."""
    try:
        fd = _unheld(folder / f"{LIFE}.new")
    except FileNotFoundError:
        fd = None
    else:
        if fd is None or young:  # held; or made, perhaps, and not locked yet
            if fd is not None:
                os.close(fd)
            return None
        return fd
    if young:
        return None
    with contextlib.suppress(OSError):
        return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return None


def _unheld(life: Path) -> int | None:
    """``life`` opened and locked, when no process alive holds it (else ``None``);
    FileNotFoundError when there is no such file."""
    try:
        fd = os.open(life, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None  # held: somebody alive
    return fd


def abandoned(folder: Path) -> bool:
    """Whether ``folder`` is one of ours whose maker and every child of it are gone."""
    fd = _claim(folder)
    if fd is None:
        return False
    os.close(fd)
    return True


def sweep(name: re.Pattern[str], where: str | os.PathLike[str]) -> list[Path]:
    """Remove from ``where`` the abandoned folders whose name matches ``name``; the
    folders removed."""
    root = Path(where)
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            folder = root / entry.name
            if not name.fullmatch(entry.name):
                continue
            fd = _claim(folder)
            if fd is not None and remove(folder, fd):
                removed.append(folder)
    return removed


def remove(folder: str | os.PathLike[str], fd: int) -> bool:
    """Remove ``folder``, whose life file this process holds locked as ``fd`` (closed
    here); whether it is gone. Everything but the life file goes first, the life file
    and the folder last: a folder that cannot be wholly removed (a process still
    writing in it) keeps its life file, and a later sweep finishes the job."""
    path = Path(folder)
    try:
        with contextlib.suppress(OSError):
            for entry in os.scandir(path):
                if entry.name in (LIFE, f"{LIFE}.new"):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
        with contextlib.suppress(OSError):
            if set(os.listdir(path)) <= {LIFE, f"{LIFE}.new"}:
                for name in (LIFE, f"{LIFE}.new"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path / name)
                os.rmdir(path)
    finally:
        os.close(fd)
    return not path.exists()


def hold(folder: str | os.PathLike[str]) -> int:
    """Lock ``folder``'s life file for as long as this process lives; the descriptor
    (close-on-exec: a program it starts does not keep the folder alive)."""
    # Locked under another name, then renamed: a sweeper that opens the life file
    # never finds it unlocked while its maker is still making the folder.
    making = Path(folder) / f"{LIFE}.new"
    fd = os.open(making, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(making, Path(folder) / LIFE)
    except BaseException:
        os.close(fd)
        raise
    return fd
