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
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import re

#: The file inside a folder that its maker holds locked.
LIFE: Final = "alive"
#: The bytes of a socket's path, with its final NUL (``sun_path`` on Linux).
SUN_PATH: Final = 107
#: Folders short enough for a socket when the user's temp folder is not.
_SHORT_ROOTS: Final = ("/tmp", "/var/tmp")


def roots() -> list[str]:
    """Where a folder may be: the user's temp folder, then the system's (when the
    user's is too deep for a socket's name)."""
    return list(dict.fromkeys([tempfile.gettempdir(), *_SHORT_ROOTS]))


def abandoned(folder: Path) -> bool:
    """Whether ``folder`` is one of ours whose maker and every child of it are gone."""
    try:
        info = folder.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            return False
        fd = os.open(folder / LIFE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False  # not ours to judge, or its maker is still making it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held: somebody alive
    finally:
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
            if name.fullmatch(entry.name) and abandoned(folder):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


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
