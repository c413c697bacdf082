"""The one place that vets the paths a command reads and writes, before anything runs.

Every command hands :func:`vet` all its paths at once, each a :class:`Use` saying
which option named it and how it is used. A path is refused (:class:`PathError`,
exit 2) when it names anything but a regular file (a device, a FIFO, a socket, a
folder, a symlink to nothing or a loop of them), a name the system cannot hold, a
file in a folder that is missing or cannot be written, or the same file as another
path of the command, by any spelling: existing files are compared by device and
inode, new ones by their resolved path. The db's own files count too: its lock file
and its temp files are never an output.

Standard library only, like the modules buyer processes import.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ticketsim.core import db as dbfile
from ticketsim.core._files import (
    kind,
    not_regular,
    open_regular,
    replace_text,
    sweep_temp_files,
    temp_owner,
    temp_prefix,
)
from ticketsim.core.frozen import frozen
from ticketsim.core.names import DEFAULT_DB, StrategyName
from ticketsim.core.stores import SQLITE_SIDES, sqlite_file
from ticketsim.errors import DbError, PathError, SystemRefused

if TYPE_CHECKING:
    from collections.abc import Iterable

#: What each way of not reaching a path means, and what to do about it.
_UNREACHABLE: Final = {
    errno.ENAMETOOLONG: ("the name is longer than the system allows", "give a shorter one"),
    errno.ELOOP: ("is a loop of symlinks", "give the path of a regular file"),
    errno.ENOTDIR: (
        "a part of the path before the file's name is not a folder",
        "give a path through folders",
    ),
    errno.EACCES: ("a folder on the way cannot be searched", "check the folders' modes"),
}
#: What each way of failing to write an output means to the user (exit 4).
_REFUSED: Final = {
    errno.ENOSPC: "free some space or give a path on another file system",
    errno.EDQUOT: "free some space or give a path on another file system",
    errno.EROFS: "give a path on a writable file system",
}
#: The last resort when ``pathconf`` cannot say (POSIX's NAME_MAX and PATH_MAX on Linux).
_NAME_MAX: Final = 255
_PATH_MAX: Final = 4096
LOCK_SUFFIX: Final = ".lock"
#: The name every output ticketsim writes gives as its maker, and no other program's:
#: an existing output without it is not replaced.
GENERATOR: Final = "ticketsim"
#: What an HTML page ticketsim writes (a timeline) says of its maker, in its head.
HTML_MARK: Final = f'<meta name="generator" content="{GENERATOR}">'
#: What an SVG picture ticketsim writes (a plot) says of its maker, after its root tag.
SVG_MARK: Final = f"<!-- generator: {GENERATOR} -->"
#: What the first line of a history ticketsim writes holds (its ``generator`` key).
HISTORY_MARK: Final = f'"generator": "{GENERATOR}"'
#: What each output option's files hold near their start, and what they are called:
#: each way of being ticketsim's is a set of texts found together. The later ones are
#: those of ticketsim's outputs from before the marks (a history of a strategy, which
#: a foreign one may not name; a timeline's title; a plot's description). An existing
#: file with none, and not empty, is not one ticketsim wrote: refused, never replaced.
_MARKS: Final = {
    "--history": (
        (HISTORY_MARK,),
        ('"format": "ticketsim-history/', '"strategy": "'),
    ),
    "--timeline": ((HTML_MARK,), ("<title>ticketsim timeline: ",)),
    "--plot": (
        (SVG_MARK,),
        ("<desc>Tickets oversold and sales per second under each strategy",),
    ),
}
_WHAT: Final = {"--history": "a history", "--timeline": "a timeline", "--plot": "a plot"}
#: How much of an existing output is read to find its mark.
_MARK_WITHIN: Final = 4096


@frozen(slots=True)
class Use:
    """One path of a command: the option that named it, and how the command uses it.

    ``missing`` is the advice when the file must exist (it is read), ``None`` when it
    may be created. ``writes``: the command replaces it, so its folder must take a new
    file. ``make_folder``: a missing folder is created (the default db's). ``db``: it is
    the db, whose lock file and temp files are its own; ``lock``: the sale locks it
    with a lock file, whose name must fit too; ``sqlite``: it is a SQLite database,
    whose journals (:data:`~ticketsim.core.stores.SQLITE_SIDES`) are its own.
    """

    option: str
    path: str | os.PathLike[str] | None
    missing: str | None = None
    writes: bool = True
    make_folder: bool = False
    db: bool = False
    lock: bool = False
    sqlite: bool = False


def db(
    path: str | os.PathLike[str], *, keep: bool = False, lock: bool = False, option: str = "--db"
) -> Use:
    """The db of a sale: created unless ``keep``; its folder too if it is the default's."""
    return Use(
        option,
        path,
        missing="run without --keep to create it" if keep else None,
        make_folder=Path(path).parent == DEFAULT_DB.parent,
        db=True,
        lock=lock,
    )


def of_sales(
    path: str | os.PathLike[str],
    strategies: Iterable[str],
    *,
    keep: bool = False,
    store: str | None = None,
) -> list[Use]:
    """What the sales of ``strategies`` on db ``path`` write: the db (not with the
    user's ``store``, which is the record instead), and the SQLite file each SQLite
    strategy sells from (beside the db, in the folder the db may make)."""
    strategies = list(strategies)
    uses = []
    make_folder = False
    if store is None:
        the_db = db(path, keep=keep, lock=StrategyName.FILELOCK in strategies)
        uses.append(the_db)
        make_folder = the_db.make_folder
    files = {sqlite_file(store, strategy, path) for strategy in strategies}
    uses += [sqlite(file, make_folder=make_folder) for file in sorted(files, key=str) if file]
    return uses


def output(option: str, path: str | os.PathLike[str] | None) -> Use:
    """A file a command writes (a history, a timeline, a plot); ``None``: not asked for."""
    return Use(option, path)


def sqlite(path: str | os.PathLike[str] | None, *, make_folder: bool = False) -> Use:
    """A SQLite file a sale writes (``--store``, or a SQLite strategy's copy beside the
    db), whose journals no other path may name."""
    return Use("--store", path, make_folder=make_folder, sqlite=True)


def source(option: str, path: str | os.PathLike[str] | None, missing: str) -> Use:
    """A file a command only reads; ``missing`` says what to do when there is none."""
    return Use(option, path, missing=missing, writes=False)


#: How a file is told apart from every other: device and inode when it exists, else
#: the path it would be created at.
_Identity = tuple[int, int] | str


def vet(*uses: Use) -> None:
    """Refuse (:class:`PathError`) the first path of ``uses`` that cannot be used as it
    says, or that names the same file as another, or as the command's own output
    (its stdout or stderr, a file when redirected); ``None`` paths are skipped."""
    given = [use for use in uses if use.path is not None]
    streams = _streams()
    seen: list[tuple[Use, _Identity]] = []
    for use in given:
        identity = _vet_one(use)
        # Read or written: what the command prints would go into it (``show >> db``).
        if identity in streams:
            raise _same(use, f"this command's {streams[identity]}")
        for other, known in seen:
            if identity == known:
                raise _same(use, f"{other.option}={os.fspath(other.path or '')}")
        seen.append((use, identity))
    for owner in given:
        if owner.db or owner.sqlite:
            _vet_own_files(owner, [(use, known) for use, known in seen if use is not owner])
        if owner.lock:
            _vet_lock_file(owner)
    for use in given:  # last: that two paths name one file says more
        _vet_mark(use)


def write_output(option: str, path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to the output ``path`` atomically, once :func:`vet` finds it fit
    (:class:`PathError` if not); a write the system refuses (a full or read-only file
    system) is a :class:`SystemRefused`, and leaves neither a partial nor a temp file."""
    vet(output(option, path))
    sweep_temp_files(path)  # of a write of this output killed mid-way (SIGKILL)
    try:
        replace_text(path, text, option=option)
    except OSError as exc:
        advice = _REFUSED.get(exc.errno or 0, "check the folder, then run again")
        raise SystemRefused(
            f"{option}={os.fspath(path)}: could not be written",
            f"{exc.strerror or exc}; {advice}",
        ) from exc


def _same(use: Use, other: str) -> PathError:
    return PathError(
        use.option,
        os.fspath(use.path or ""),
        f"is the same file as {other}",
        "give each option a file of its own",
    )


def _vet_one(use: Use) -> _Identity:
    """Vet one path; return what tells its file apart from others."""
    raw = os.fspath(use.path or "")
    if not raw:
        raise PathError(use.option, "''", "the path is empty", "give the path of a file")
    if raw.endswith(os.sep):
        raise PathError(
            use.option, raw, "ends with a slash, so it names a folder", "give the path of a file"
        )
    try:
        found = os.stat(raw)
    except FileNotFoundError:
        return _vet_new(use, raw)
    except OSError as exc:
        raise _unreachable(use, raw, exc) from None
    if not stat.S_ISREG(found.st_mode):
        raise not_regular(use.option, raw, found.st_mode)
    if use.writes:
        _vet_folder(use, raw, os.path.dirname(os.path.realpath(raw)))
        if not _writable(raw, found.st_mode, os.W_OK):
            raise PathError(
                use.option,
                raw,
                "the file is read-only",
                f"make it writable or pick another {use.option}",
            )
    return found.st_dev, found.st_ino


def _vet_mark(use: Use) -> None:
    """An existing output must be one ticketsim wrote (its mark near its start), or
    empty: anything else is the user's, and ticketsim never replaces it."""
    if use.db and use.writes and use.missing is None:  # a db the command resets
        _vet_replaceable_db(use)
        return
    marks = _MARKS.get(use.option) if use.writes else None
    if marks is None:
        return
    head = _head_of(use)
    if head and not any(all(text.encode() in head for text in mark) for mark in marks):
        raise PathError(
            use.option,
            os.fspath(use.path or ""),
            f"the file exists and is not {_WHAT[use.option]} ticketsim wrote",
            "give a new path, or move the file away",
        )


def _vet_replaceable_db(use: Use) -> None:
    """A db a command resets must be a ticket db (ticketsim's, or one made by hand),
    one a sale of ticketsim's left empty or half written (``open('w')``), or nothing:
    a file of anything else (notes, a history named by mistake) is the user's."""
    raw = os.fspath(use.path or "")
    head = _head_of(use)
    if head is None:
        return
    compact = b"".join(head.split())[: len(_DB_START)]
    if _DB_START.startswith(compact):  # empty, or ticketsim's own, whole or torn
        return
    try:
        dbfile.load(raw)
    except DbError as exc:
        # A ticket db made by hand with a slip in it is the user's to fix: said what.
        raise PathError(
            use.option,
            raw,
            f"the file is not a ticket db ({exc.problem}), and ticketsim never replaces a "
            "file it did not make",
            f"fix it, give another {use.option}, or move the file away",
        ) from None


def _head_of(use: Use) -> bytes | None:
    """The first bytes of the file ``use`` names, where its mark would be; ``None`` if
    there is no file yet."""
    raw = os.fspath(use.path or "")
    if not os.path.exists(raw):
        return None
    try:
        with open_regular(raw, lambda mode: not_regular(use.option, raw, mode)) as file:
            return file.read(_MARK_WITHIN)
    except OSError as exc:
        raise _unreachable(use, raw, exc) from None


#: How a db ticketsim writes begins, whitespace left out: the first line of every
#: db it writes, and of what an ``open('w')`` of the ``none`` strategy left of one.
_DB_START: Final = b'{"format":"ticketsim/'


def _streams() -> dict[_Identity, str]:
    """The regular files this process's stdout and stderr are, if they are: what it
    prints would be lost to an output written over them."""
    found: dict[_Identity, str] = {}
    for fd, name in ((2, "stderr"), (1, "stdout")):
        try:
            info = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            found[info.st_dev, info.st_ino] = name
    return found


def _vet_new(use: Use, raw: str) -> _Identity:
    """Vet a path with no file behind it yet: one to be created, in a fit folder."""
    if os.path.lexists(raw):
        raise PathError(
            use.option,
            raw,
            "is a symlink to a file that does not exist",
            "give the path of a regular file, or remove the link",
        )
    if use.missing is not None:
        raise PathError(use.option, raw, "no such file", use.missing)
    spelled = os.path.dirname(raw) or "."
    if not use.make_folder and not os.path.isdir(spelled):
        # ``missing/../x`` reaches no file, but its resolved path, which a write goes
        # to, may be an existing one: refused here, as the system would refuse it.
        raise PathError(use.option, raw, f"the folder {spelled} does not exist", "create it first")
    resolved = os.path.realpath(raw)
    _vet_folder(use, raw, os.path.dirname(resolved))
    # What a write goes to (``dir/missing/../x`` is ``dir/x`` to it), which may exist.
    return _identity(resolved)


def _writable(path: str, mode: int, access: int) -> bool:
    """Whether this process may write ``path``, as its owner meant: root may write
    anything, so a file or folder with no write bit for anyone is read-only to it too
    (``chmod a-w``: the user's way of saying keep it)."""
    return os.access(path, access) and bool(mode & _WRITE_BITS)


#: Write permission for the owner, the group and the others.
_WRITE_BITS: Final = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def _vet_folder(use: Use, raw: str, folder: str) -> None:
    """The folder a written file goes in must exist (unless the command makes it) and
    take new files: every write goes through a temp file beside its target."""
    shown = os.path.dirname(raw) or "."
    try:
        found = os.stat(folder)
    except FileNotFoundError:
        if use.make_folder:
            return
        raise PathError(
            use.option, raw, f"the folder {shown} does not exist", "create it first"
        ) from None
    except OSError as exc:
        raise _unreachable(use, raw, exc) from None
    if not stat.S_ISDIR(found.st_mode):
        raise PathError(use.option, raw, f"{shown} is not a folder", "give a path through folders")
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        # The machine's refusal, as EROFS met while writing is (exit 4), found sooner.
        raise SystemRefused(
            f"{use.option}={raw}",
            f"the folder {shown} is on a read-only file system; "
            f"pick another {use.option} on a writable one",
        )
    if not _writable(folder, found.st_mode, os.W_OK | os.X_OK):
        raise PathError(
            use.option,
            raw,
            f"the folder {folder} is read-only",
            f"make it writable or pick another {use.option}",
        )
    _vet_names(use, raw, folder)


def _vet_names(use: Use, raw: str, folder: str) -> None:
    """The names a write of ``raw`` makes beside it must fit the file system: its temp
    files (short, whatever the target's name), and a db's lock file."""
    name = os.path.basename(os.path.realpath(raw))
    longest = max(len(os.fsencode(temp_prefix(raw))) + 8, len(os.fsencode(name)))
    if use.lock:
        longest = max(longest, len(os.fsencode(name + LOCK_SUFFIX)))
    if longest > _limit(folder, "PC_NAME_MAX", _NAME_MAX):
        what = f"with {LOCK_SUFFIX} added for its lock file, " if use.lock else ""
        raise PathError(
            use.option,
            raw,
            f"the name, {what}is longer than the system allows",
            "give a shorter one",
        )
    if len(os.fsencode(os.path.join(folder, "x" * longest))) >= _limit(
        folder, "PC_PATH_MAX", _PATH_MAX
    ):
        raise PathError(
            use.option, raw, "the path is longer than the system allows", "give a shorter one"
        )


def _limit(folder: str, name: str, default: int) -> int:
    try:
        return os.pathconf(folder, name)
    except (OSError, ValueError):
        return default


def _unreachable(use: Use, raw: str, exc: OSError) -> PathError:
    problem, advice = _UNREACHABLE.get(
        exc.errno or 0, (f"cannot be used ({exc.strerror or exc})", "give another path")
    )
    return PathError(use.option, raw, problem, advice)


def _vet_own_files(owner: Use, others: list[tuple[Use, _Identity]]) -> None:
    """No other path of the command may be one of ``owner``'s own files: a db's lock
    file or temp files, a SQLite database's journals."""
    target = os.path.realpath(os.fspath(owner.path or ""))
    named = f"{owner.option}={os.fspath(owner.path or '')}"
    if owner.sqlite:
        journals = {_identity(target + suffix) for suffix in SQLITE_SIDES}
        for use, identity in others:
            if use.writes and identity in journals:
                raise _same(use, f"a journal of the SQLite database {named}")
        return
    lock = _identity(target + LOCK_SUFFIX)
    for use, identity in others:
        if not use.writes:
            continue
        spelled = os.fspath(use.path or "")
        if identity == lock:
            raise _same(use, f"the lock file of {named}")
        resolved = os.path.realpath(spelled)
        folder, name = os.path.split(resolved)
        if folder == os.path.dirname(target) and temp_owner(name, target) is not None:
            raise _same(use, f"a temp file of {named}")


def _vet_lock_file(owner: Use) -> None:
    """The lock file of a db, if there is one already, must be a regular file: a lock
    taken on anything else fails in every buyer, once the sale has reset the db."""
    raw = os.fspath(owner.path or "")
    lock = os.path.realpath(raw) + LOCK_SUFFIX
    try:
        found = os.lstat(lock)
    except OSError:
        return  # none yet (the sale makes it), or unreachable as the db itself was not
    if not stat.S_ISREG(found.st_mode):
        raise PathError(
            owner.option,
            raw,
            f"its lock file {lock} is {kind(found.st_mode)}, not a regular file",
            "remove it, or give another db",
        )


def _identity(path: str) -> _Identity:
    try:
        found = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return found.st_dev, found.st_ino
