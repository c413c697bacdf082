"""The private folder of one server: its data, its socket and its log.

It is one of the folders :mod:`ticketsim.core._owned` describes: held by its maker
for life, so that the next start removes it when its maker was SIGKILLed.

The servers do not inherit the lock (it is close-on-exec): they die with their maker
(``PR_SET_PDEATHSIG``), and a server that somehow outlived it must not keep its folder
forever.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Final

from ticketsim.core import _owned
from ticketsim.core.frozen import frozen

PREFIX: Final = "ticketsim-srv."
_NAME: Final = re.compile(rf"{re.escape(PREFIX)}[a-z]+\.\d+\.[A-Za-z0-9_]+")


@frozen
class Layout:
    """The parts of a server's folder."""

    root: Path
    #: The server's socket folder, the only place it may write besides ``data``.
    run: Path
    data: Path
    log: Path


def sweep() -> list[Path]:
    """Remove the folders of servers whose ticketsim is gone; the folders removed."""
    return [folder for root in _owned.roots() for folder in _owned.sweep(_NAME, root)]


class Folder:
    """A folder made for one server and locked for as long as this process (and any
    child forked from it) lives; :meth:`remove` ends it."""

    def __init__(self, kind: str, socket_name: str, *, for_others: bool = False) -> None:
        """``for_others``: the server will run as another user, who must be able to
        reach the folder through every folder above it."""
        self.root = _make(kind, len(f"/run/{socket_name}"), for_others)
        self.layout = Layout(
            self.root, self.root / "run", self.root / "data", self.root / "server.log"
        )
        self._fd: int | None = None
        try:
            self._fd = _owned.hold(self.root)
            self.layout.run.mkdir(mode=0o700)
            self.layout.data.mkdir(mode=0o700)
        except BaseException:
            if self._fd is None:  # not locked yet: nobody else can have claimed it
                shutil.rmtree(self.root, ignore_errors=True)
            else:
                _owned.remove(self.root, self._fd)
            raise

    def hand_to(self, uid: int, gid: int) -> None:
        """Let another user (the server's) into the folder, and own its socket and data
        folders; the rest stays this user's."""
        os.chmod(self.root, 0o711)
        for part in (self.layout.run, self.layout.data):
            os.chown(part, uid, gid)

    def remove(self) -> None:
        """Remove the folder and drop its lock; again is a no-op."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        _owned.remove(self.root, fd)


def _make(kind: str, tail: int, for_others: bool) -> Path:
    prefix = f"{PREFIX}{kind}.{os.getpid()}."
    for root in _owned.roots():
        if for_others and not _open_to_others(root):
            continue
        try:
            folder = tempfile.mkdtemp(prefix=prefix, dir=root)
        except OSError:
            continue
        if len(os.fsencode(folder)) + tail <= _owned.SUN_PATH:
            return Path(folder)
        os.rmdir(folder)
    # Nowhere short enough: the user's own, where the server will say what is wrong.
    return Path(tempfile.mkdtemp(prefix=prefix))


def _open_to_others(folder: str) -> bool:
    """Whether a user who is neither the owner nor in the group of any folder on the
    way can pass through every one of them to ``folder``."""
    path = Path(os.path.abspath(folder))
    for part in (path, *path.parents):
        try:
            if not part.stat().st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True
