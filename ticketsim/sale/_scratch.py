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

import multiprocessing.process
import multiprocessing.util
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Final

from ticketsim.core import _owned

PREFIX: Final = "ticketsim-mp."
LIFE: Final = _owned.LIFE
_NAME: Final = re.compile(rf"{re.escape(PREFIX)}\d+\.[A-Za-z0-9_]+")
#: What multiprocessing adds to the folder's path for a socket (``/listener-`` and 8
#: letters): the folder must leave room for it in ``_owned.SUN_PATH``.
_LISTENER: Final = len("/listener-12345678")
#: multiprocessing removes its own folder with priority -100; ours goes after it.
_AFTER_MULTIPROCESSING: Final = -101


def _config() -> dict[str, Any]:
    """The process's multiprocessing settings, where ``util.get_temp_dir`` looks first
    (not typed: it is multiprocessing's own)."""
    config: dict[str, Any] = getattr(multiprocessing.process.current_process(), "_config")  # noqa: B009
    return config


def _make() -> str:
    """A new folder of ours, in the first root where a socket's name inside it fits."""
    for root in _owned.roots():
        try:
            folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}.", dir=root)
        except OSError:
            continue
        if len(os.fsencode(folder)) + _LISTENER <= _owned.SUN_PATH:
            return folder
        os.rmdir(folder)
    # Nowhere short enough: the user's own, where the first socket will say what is wrong.
    return tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}.")


def sweep(where: str | None = None) -> list[Path]:
    """Remove the folders of ticketsims that are gone from ``where`` (default: the temp
    folder); the folders removed."""
    return _owned.sweep(_NAME, where or tempfile.gettempdir())


def provide() -> str | None:
    """Give multiprocessing a folder of ours, once per process; its path, or ``None``
    when multiprocessing already has one (made before ticketsim ran, not ours)."""
    config = _config()
    current = config.get("tempdir")
    if current is not None:
        return current if Path(current).name.startswith(PREFIX) else None
    for root in _owned.roots():
        sweep(root)
    folder = _make()
    fd = _owned.hold(folder)  # for life: closed by the kernel when this process ends
    config["tempdir"] = folder
    multiprocessing.util.Finalize(
        None, _remove, args=(folder, fd), exitpriority=_AFTER_MULTIPROCESSING
    )
    return folder


def _remove(folder: str, fd: int) -> None:
    _owned.remove(folder, fd)
    config = _config()
    if config.get("tempdir") == folder:
        config["tempdir"] = None
