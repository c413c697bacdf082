"""Writing a file so that every reader sees the old content or the new, never half.

Used for the db and for every file ticketsim writes beside it (histories, timelines,
plots). Buyer processes import this module, so it uses the standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import stat
import sys
import zlib
from typing import TYPE_CHECKING, Any, Final

from ticketsim.errors import PathError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from io import BufferedReader
    from typing import TypeAlias

    #: What :func:`replace_bytes` writes: ``bytes``, or a ``memoryview`` of them.
    Buffer: TypeAlias = bytes | memoryview


#: What marks a temp file as ticketsim's own: ``.tsim-TAG.PID.TOKEN.N.tmp``, where TAG
#: ties it to its target (:func:`_tag`), PID is its writer's, TOKEN is drawn at random
#: once per process (:func:`_token`) and N numbers the writer's temp files. The name is
#: short whatever the target's, so that a legal 255-byte target still has one.
_TEMP: Final = re.compile(
    r"\.tsim-([0-9a-f]{8})\.([1-9][0-9]{0,9})\.([0-9a-f]{12})\.([0-9]{1,4})\.tmp"
)
#: The largest pid a ``pid_t`` holds: a bigger number in a name is not a writer's.
_MAX_PID: Final = 2**31 - 1
_TOKEN_BYTES: Final = 6


@functools.cache
def _tag(name: str) -> str:
    """Eight hex digits of the target's file name: the sweep of one db leaves the temp
    files of another in the same folder alone, and the temp name stays short."""
    return f"{zlib.crc32(os.fsencode(name)):08x}"


_token_of: dict[int, str] = {}


def _token() -> str:
    """This process's random token, drawn at its first write (a forked child draws its
    own: the dict is keyed by pid). Not ``tempfile``: see :func:`_create_temp`."""
    pid = os.getpid()
    token = _token_of.get(pid)
    if token is None:
        token = _token_of[pid] = os.urandom(_TOKEN_BYTES).hex()
    return token


def temp_prefix(target: str) -> str:
    """The name this process's temp files for ``target`` start with; its pid is in it,
    so that a sweep can tell the leftovers of a dead writer
    (:func:`sweep_temp_files`)."""
    return f".tsim-{_tag(os.path.basename(target))}.{os.getpid()}.{_token()}."


def temp_owner(name: str, target: str) -> int | None:
    """The pid of the writer that made temp file ``name`` for ``target``, or ``None`` if
    ``name`` is not a name ticketsim gives ``target``'s temp files (whatever else it is)."""
    match = _TEMP.fullmatch(name)
    if match is None or match[1] != _tag(os.path.basename(target)):
        return None
    pid = int(match[2])
    return pid if pid <= _MAX_PID else None


def sweep_temp_files(path: str | os.PathLike[str]) -> list[str]:
    """Remove the temp files that writers of ``path`` (a db, or an output) left when they
    were killed mid-write.

    Only files whose names ticketsim makes (:func:`temp_owner`), for this target, and
    whose writer process is gone are removed: another program may be in the middle of
    a write, and a file of any other name is not ticketsim's. Returns the names removed.
    """
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        pid = temp_owner(name, target)
        if pid is None or not process_gone(pid):
            continue
        temp = os.path.join(folder, name)
        with contextlib.suppress(OSError):
            # ticketsim makes regular files only: a folder or a link by that name is not ours.
            if stat.S_ISREG(os.lstat(temp).st_mode):
                os.unlink(temp)
                removed.append(name)
    return removed


def process_gone(pid: int) -> bool:
    """Whether no process has ``pid``: the writer of a file named by it is dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False  # alive and someone else's; or no pid at all: not ours to judge
    return False  # alive (or its pid was reused): leave the file


def kind(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words: "a regular file", "a FIFO", ..."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "not a regular file"


_KINDS: Final = (
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISLNK, "a symlink"),
)


def not_regular(option: str, path: str, mode: int) -> PathError:
    """The refusal of a path that names something other than a regular file."""
    return PathError(
        option,
        path,
        f"is {kind(mode)}, not a regular file",
        "give the path of a regular file (ticketsim never writes over anything else)",
    )


#: Opening for reading never waits: a FIFO with no writer would block ``open`` forever.
#: On a regular file, the only kind kept open, ``O_NONBLOCK`` changes nothing, so it
#: is left set.
_READ_FLAGS: Final = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def open_regular(path: str, refuse: Callable[[int], BaseException]) -> BufferedReader:
    """``path`` opened for reading, if what was opened is a regular file; else
    ``refuse(st_mode)`` is raised. The type is that of the file opened (``fstat``), so
    nothing can swap it between a check and the use. ``OSError`` of the open is raised."""
    fd = os.open(path, _READ_FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise refuse(mode)
        return open(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def replace_text(path: str | os.PathLike[str], text: str, *, option: str = "--db") -> None:
    """Write ``text`` to ``path`` (UTF-8) as :func:`replace_bytes` does."""
    replace_bytes(path, (text.encode("utf-8"),), option=option)


def replace_bytes(
    path: str | os.PathLike[str],
    chunks: Sequence[Buffer],
    *,
    dry_run: bool = False,
    leftovers: list[str] | None = None,
    option: str = "--db",
) -> None:
    """Write ``chunks``, one after the other, to ``path`` through a temp file in the
    same folder, then put it in place (:func:`commit`).

    A rename within one file system is atomic, so there is no moment at which the file
    is empty or half written. A symlink is written through to its target (the link
    stays a link), and an existing file keeps its permission bits and, where the system
    permits, its owner and group; anything but a regular file there is refused
    (:class:`PathError` naming ``option``), never replaced. On any failure the
    temp file is removed and the error raised. No ``fsync``: this protects against a
    process dying mid-write, which is what ticketsim simulates, not against power loss.
    The chunks are written from where they lie, so that a caller adding a line to a big
    file it has read need not copy it. With ``dry_run`` the temp file is written and
    removed, and ``path`` left alone: a rehearsal, to warm a fresh process's first write.

    The old file, which :func:`commit` leaves at the temp file's path, is removed at
    once; given ``leftovers``, its path is added there instead, for the caller to
    remove later (:func:`remove_leftovers`). A buyer does that once it has let go of
    its lock: freeing a few hundred kilobytes took a tenth of its critical section.
    """
    target = os.path.realpath(path)
    try:
        old: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        old = None
    if old is not None and not stat.S_ISREG(old.st_mode):
        raise not_regular(option, os.fspath(path), old.st_mode)
    fd, temp = _create_temp(target)
    try:
        try:
            _own_like(fd, old)
            for chunk in chunks:
                data = memoryview(chunk)
                while data:
                    data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
        if dry_run:
            os.unlink(temp)
        elif commit(temp, target):  # swapped: the old file is at temp now
            if leftovers is None:
                remove_leftovers([temp])
            else:
                leftovers.append(temp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _own_like(fd: int, old: os.stat_result | None) -> None:
    """Give the temp file the old file's owner, group and mode bits (the owner first:
    a change of owner clears the set-id bits); a new file gets what ``open()`` would
    have given it, not the temp file's 0600."""
    if old is None:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        return
    # Not permitted (another user's file, a group this user is not in): the new file
    # is this user's, as any editor's save would make it.
    with contextlib.suppress(PermissionError):
        os.fchown(fd, old.st_uid, old.st_gid)
    os.fchmod(fd, stat.S_IMODE(old.st_mode))


def commit(temp: str, target: str) -> bool:
    """Put the file ``temp`` in ``target``'s place; every reader sees one or the other.
    Returns whether the old file is left at ``temp``.

    Where the kernel can, the two are swapped (``renameat2`` with ``RENAME_EXCHANGE``),
    which leaves the old file at ``temp`` for the caller to remove: ext4 starts writing
    a file out when it is renamed over another (``auto_da_alloc``), which makes every
    write of a large db several times slower than a swap. A writer killed between the
    swap and the removal leaves a temp file of a dead writer, which the next sweep
    removes.
    Elsewhere: ``os.replace``, and nothing is left at ``temp``. That flush is also
    ext4's guard of replace-by-rename against a power cut; like the missing ``fsync``
    (:func:`replace_bytes`), that is not what ticketsim simulates.
    """
    if _swapped(temp, target):
        return True
    os.replace(temp, target)
    return False


def remove_leftovers(paths: list[str]) -> None:
    """Remove the old files :func:`replace_bytes` left at ``paths``, and empty the list.

    Best effort: one that cannot be removed is a temp file of this process, which the
    sweep of a later run removes once the process is gone.
    """
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)
    paths.clear()


#: ``renameat2`` flags and arguments (linux/fs.h, fcntl.h).
_RENAME_EXCHANGE: Final = 2
_AT_FDCWD: Final = -100
#: What ``renameat2`` says when it cannot swap here: no target yet, a file system or a
#: kernel without the flag. ``os.replace`` does the job then.
_CANNOT_SWAP: Final = frozenset({errno.ENOENT, errno.EINVAL, errno.ENOSYS, errno.EXDEV})


def _swapped(temp: str, target: str) -> bool:
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    paths = os.fsencode(temp), os.fsencode(target)
    if renameat2(_AT_FDCWD, paths[0], _AT_FDCWD, paths[1], _RENAME_EXCHANGE) == 0:
        return True
    import ctypes  # noqa: PLC0415 - loaded already by _renameat2

    err = ctypes.get_errno()
    if err in _CANNOT_SWAP:
        return False
    raise OSError(err, os.strerror(err), target)


@functools.cache
def _renameat2() -> Any:
    """The C library's ``renameat2``, or ``None`` where there is none (not Linux, an old
    C library). Looked up on the first write: in a buyer, that is its rehearsal, before
    the sale opens."""
    if sys.platform != "linux":
        return None
    import ctypes  # noqa: PLC0415 - only writers need it, and only once

    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    function.argtypes += [ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


#: A writer's temp files are numbered; this many taken means something else is wrong.
_MAX_TEMPS: Final = 1000


def _create_temp(target: str) -> tuple[int, str]:
    """Create a new temp file for ``target``, only its writer able to read it (0600).

    Named by pid, a token and a number rather than by ``tempfile``: the name must tell
    a sweep whose it is and that ticketsim made it, and ``tempfile`` seeds a random
    generator in every new process, which a buyer would pay for inside its critical
    section (the token is drawn once, at the rehearsal).
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
