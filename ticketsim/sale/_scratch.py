"""The folder multiprocessing keeps its sockets in (the forkserver's and the Manager's
listeners), made by ticketsim so that ticketsim can clean up after a ticketsim that
was SIGKILLed.

multiprocessing makes a ``pymp-*`` folder on first need and removes it at exit; a
process killed with SIGKILL never gets there, and nothing can tell an abandoned
``pymp-*`` folder from a live one of another program, so none may ever be removed.
Ours are named ``ticketsim-mp.<pid>.<token>`` and each holds a file its maker keeps
``flock``-ed for life: the kernel drops the lock when the last process holding it
dies, so a folder whose lock can be taken belongs to nobody alive, in any pid
namespace, and the next sale removes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing.process
import multiprocessing.util
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any, Final

PREFIX: Final = "ticketsim-mp."
#: The file inside a folder that its maker holds locked.
LIFE: Final = "alive"
_NAME: Final = re.compile(rf"{re.escape(PREFIX)}\d+\.[A-Za-z0-9_]+")
#: The bytes of a socket's path (``sun_path``, with its final NUL on Linux), and what
#: multiprocessing adds to the folder's path for one (``/listener-`` and 8 letters).
_SUN_PATH: Final = 107
_LISTENER: Final = len("/listener-12345678")
#: Folders short enough for a socket when the user's temp folder is not.
_SHORT_ROOTS: Final = ("/tmp", "/var/tmp")
#: multiprocessing removes its own folder with priority -100; ours goes after it.
_AFTER_MULTIPROCESSING: Final = -101


def _config() -> dict[str, Any]:
    """The process's multiprocessing settings, where ``util.get_temp_dir`` looks first
    (not typed: it is multiprocessing's own)."""
    config: dict[str, Any] = getattr(multiprocessing.process.current_process(), "_config")  # noqa: B009
    return config


def _abandoned(folder: Path) -> bool:
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


def _roots() -> list[str]:
    """Where a folder may be: the user's temp folder, then the system's (when the user's
    is too deep for a socket's name)."""
    return list(dict.fromkeys([tempfile.gettempdir(), *_SHORT_ROOTS]))


def _make() -> str:
    """A new folder of ours, in the first root where a socket's name inside it fits."""
    for root in _roots():
        try:
            folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}.", dir=root)
        except OSError:
            continue
        if len(os.fsencode(folder)) + _LISTENER <= _SUN_PATH:
            return folder
        os.rmdir(folder)
    # Nowhere short enough: the user's own, where the first socket will say what is wrong.
    return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}.")


def sweep(where: str | None = None) -> list[Path]:
    """Remove the folders of ticketsims that are gone from ``where`` (default: the temp
    folder); the folders removed."""
    root = Path(where or tempfile.gettempdir())
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            folder = root / entry.name
            if _NAME.fullmatch(entry.name) and _abandoned(folder):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


def provide() -> str | None:
    """Give multiprocessing a folder of ours, once per process; its path, or ``None``
    when multiprocessing already has one (made before ticketsim ran, not ours)."""
    config = _config()
    current = config.get("tempdir")
    if current is not None:
        return current if Path(current).name.startswith(PREFIX) else None
    for root in _roots():
        sweep(root)
    folder = _make()
    fd = os.open(Path(folder) / LIFE, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # for life: closed by the kernel when this process ends
    config["tempdir"] = folder
    multiprocessing.util.Finalize(
        None, _remove, args=(folder, fd), exitpriority=_AFTER_MULTIPROCESSING
    )
    return folder


def _remove(folder: str, fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
    shutil.rmtree(folder, ignore_errors=True)
    config = _config()
    if config.get("tempdir") == folder:
        config["tempdir"] = None
