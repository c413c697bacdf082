"""Where a database strategy keeps its tickets: the ``--store`` URL, read and checked.

Without a URL, a database strategy works on a copy of the db file: a SQLite file
beside it, or a private server ticketsim starts and removes; the db file gets the
result when the sale ends. With one, the store is the user's, and the record of the
sale: ``run``, ``show``, ``reset`` and ``check`` read and write it, and the db file
is not used.

Standard library only, like the modules buyer processes import.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

from ticketsim.core.frozen import frozen
from ticketsim.core.names import StoreKind, StrategyName
from ticketsim.errors import ConfigError

if TYPE_CHECKING:
    import os

#: The URL schemes of each store.
SCHEMES: Final = {
    "sqlite": StoreKind.SQLITE,
    "postgresql": StoreKind.POSTGRES,
    "postgres": StoreKind.POSTGRES,
    "redis": StoreKind.REDIS,
    "rediss": StoreKind.REDIS,
    "unix": StoreKind.REDIS,
}
_FORMS: Final = (
    "give sqlite:///relative/path.sqlite (sqlite:////absolute/path.sqlite), "
    "postgresql://user:password@host/dbname or redis://host:port/0"
)
#: The SQLite file of a database strategy run without ``--store``: beside the db.
SQLITE_SUFFIX: Final = ".sqlite"
#: The files SQLite keeps beside a database (``path`` + each): its write-ahead log and
#: the log's index, and the rollback journal. They are the database's own: SQLite
#: takes one it finds as its own, and removes it.
SQLITE_SIDES: Final = ("-wal", "-shm", "-journal")
#: Each store's naive strategy: the one ``--store`` runs unless told another.
NAIVE: Final = {
    StoreKind.SQLITE: StrategyName.SQLITE_NAIVE,
    StoreKind.POSTGRES: StrategyName.PG_NAIVE,
    StoreKind.REDIS: StrategyName.REDIS_NAIVE,
}


#: ``--store`` given a store's bare name: ticketsim's own store of that kind (a private
#: server it starts and stops, or a SQLite file beside the db), not the user's.
OWN: Final = {
    "sqlite": StoreKind.SQLITE,
    "postgresql": StoreKind.POSTGRES,
    "postgres": StoreKind.POSTGRES,
    "redis": StoreKind.REDIS,
}


def own_strategy(name: str, strategy: str | None) -> str:
    """The strategy of ``--store NAME`` (a key of :data:`OWN`): the one asked for, which
    must be that store's, else its naive one."""
    kind = OWN[name]
    if strategy is None:
        return NAIVE[kind].value
    if StoreKind.of(strategy) is not kind:
        mine = [s.value for s in StrategyName if StoreKind.of(s.value) is kind]
        raise ConfigError(
            "strategy",
            strategy,
            f"does not sell on --store={name}; choose one of {', '.join(mine)}",
        )
    return strategy


@frozen
class StoreURL:
    """A ``--store`` URL: the store it names, and how to reach it (a file's path for
    SQLite, else the URL as the client takes it)."""

    kind: StoreKind
    url: str

    @property
    def location(self) -> str:
        if self.kind is StoreKind.SQLITE:
            return sqlite_path(self.url)
        return self.url

    @property
    def shown(self) -> str:
        """The URL without its password, as messages print it."""
        return redacted(self.url)


def redacted(url: str) -> str:
    """``url`` with its password, if it has one, as ``***``: what messages print. It
    may be in the query too (``?password=``), where libpq and redis-py take it."""
    url = _query_password_hidden(url)
    try:
        password = urlsplit(url).password
    except ValueError:  # a malformed URL: it is shown as given, having no password
        return url
    if password is None:
        return url
    return url.replace(":" + password + "@", ":***@", 1)


def _query_password_hidden(url: str) -> str:
    # By hand, not with re: a buyer imports this module, and re is not cheap to import.
    head, mark, query = url.partition("?")
    if not mark:
        return url
    query, hash_mark, fragment = query.partition("#")
    options = [
        option.partition("=")[0] + "=***"
        if "password" in option.partition("=")[0].lower()  # sslpassword too
        else option
        for option in query.split("&")
    ]
    return f"{head}?{'&'.join(options)}{hash_mark}{fragment}"


def sqlite_path(url: str) -> str:
    """``sqlite:///a/b`` is ``a/b``, and ``sqlite:////a/b`` is ``/a/b``."""
    return url[len("sqlite:///") :]


def parse(url: str) -> StoreURL:
    """Read a ``--store`` URL; :class:`ConfigError` says what is wrong and what to give."""
    if not isinstance(url, str) or not url:
        raise ConfigError("store", redacted(url), _FORMS)
    scheme, sep, _ = url.partition("://")
    kind = SCHEMES.get(scheme.lower()) if sep else None
    if kind is None:
        raise ConfigError("store", redacted(url), f"is not a store URL: {_FORMS}")
    if "\x00" in url or any(ord(c) < 32 for c in url):
        raise ConfigError("store", redacted(url), "has control characters in it; " + _FORMS)
    if kind is StoreKind.SQLITE:
        if not url.startswith("sqlite:///") or not sqlite_path(url).strip("/"):
            raise ConfigError(
                "store", redacted(url), "names no file: give sqlite:///path/to/file.sqlite"
            )
        if "?" in url or "#" in url:
            raise ConfigError(
                "store", redacted(url), "takes a plain path, with no ?query or #fragment"
            )
        if sqlite_path(url) == ":memory:":
            # sqlite3 takes this name for a database of the connection's own, gone when
            # it closes: every buyer would sell from a store of its own.
            raise ConfigError(
                "store",
                redacted(url),
                "names SQLite's in-memory database, which no two connections share: "
                "give sqlite:///path/to/file.sqlite",
            )
        return StoreURL(kind, url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError as exc:
        raise ConfigError("store", redacted(url), f"is malformed ({exc}); {_FORMS}") from None
    if kind is StoreKind.REDIS and scheme != "unix":
        database = parts.path.strip("/")
        if database and not database.isdigit():
            raise ConfigError(
                "store", redacted(url), f"names database {database!r}: give a number, /0 to /15"
            )
    return StoreURL(kind, url)


def sqlite_file(store: str | None, strategy: str, db_path: str | os.PathLike[str]) -> Path | None:
    """The SQLite file a sale writes, if any: the user's (``--store``), or the copy
    beside the db of a SQLite strategy run without one. Every command vets it with its
    other paths, so that no output can be it."""
    if store is not None:
        parsed = parse(store)
        return Path(parsed.location) if parsed.kind is StoreKind.SQLITE else None
    return sqlite_beside(db_path) if StoreKind.of(strategy) is StoreKind.SQLITE else None


def sqlite_beside(db_path: str | os.PathLike[str]) -> Path:
    """The SQLite file of a sale on ``db_path`` run without ``--store``."""
    path = Path(db_path)
    beside = path.with_suffix(SQLITE_SUFFIX) if path.suffix else Path(f"{path}{SQLITE_SUFFIX}")
    return Path(f"{path}{SQLITE_SUFFIX}") if beside == path else beside


def require_match(strategy: str, store: StoreURL) -> None:
    """A strategy runs on its own store only (``pg-update`` on PostgreSQL)."""
    kind = StoreKind.of(strategy)
    if kind is not store.kind:
        mine = [s.value for s in StrategyName if StoreKind.of(s.value) is store.kind]
        where = "the db file" if kind is StoreKind.FILE else f"a {kind.value} store"
        raise ConfigError(
            "strategy",
            strategy,
            f"works on {where}, not on --store={store.shown}; choose one of {', '.join(mine)}",
        )


#: Where a server listens: a Unix socket's path, or a TCP host and port.
Address = str | tuple[str, int]


def server_address(store: StoreURL) -> Address:
    """Where the server of a PostgreSQL or Redis ``store`` listens, for a host's link
    to forward to (libpq's ``host`` may be a socket folder, in the URL or its query)."""
    parts = urlsplit(store.url)
    query = parse_qs(parts.query)
    if store.kind is StoreKind.REDIS:
        if parts.scheme == "unix":
            return parts.path
        return parts.hostname or "localhost", parts.port or 6379
    host = parts.hostname or query.get("host", [""])[0] or "/var/run/postgresql"
    port = parts.port or int(query.get("port", ["5432"])[0])
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}"
    return host, port


def through(store: StoreURL, link: tuple[str, int], settings: dict[str, str]) -> str:
    """``store``'s URL, reached through the TCP ``link`` instead, with PostgreSQL
    ``settings`` for each session (``idle_in_transaction_session_timeout``)."""
    parts = urlsplit(store.url)
    user = parts.username or ""
    if parts.password is not None:
        user += ":" + parts.password
    netloc = f"{user + '@' if user else ''}{link[0]}:{link[1]}"
    query = {k: v[0] for k, v in parse_qs(parts.query).items() if k not in ("host", "port")}
    if store.kind is StoreKind.REDIS:
        database = query.pop("db", None) or "0"
        if parts.scheme != "unix":
            database = parts.path.strip("/") or database
        scheme = "redis" if parts.scheme == "unix" else parts.scheme
        return urlunsplit((scheme, netloc, f"/{database}", urlencode(query, quote_via=quote), ""))
    options = " ".join(f"-c {key}={value}" for key, value in settings.items())
    if options:
        query["options"] = f"{query['options']} {options}" if "options" in query else options
    # libpq reads a '+' as itself, not as a space: spaces travel as %20.
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, quote_via=quote), ""))
