"""Exceptions ticketsim raises.

Each one subclasses a builtin so that callers can catch it by meaning
(``ValueError`` for bad input, ``OSError`` for I/O) and each one pickles, so a
buyer process can send it to the parent unchanged.
"""

from __future__ import annotations


class TicketsimError(Exception):
    """Base class of every error ticketsim raises on purpose."""


class ConfigError(TicketsimError, ValueError):
    """A run was asked for with a value it cannot honour.

    The message names the setting as ``name=value`` and says what to do instead.
    """

    def __init__(self, name: str, value: object, advice: str) -> None:
        self.name = name
        self.value = value
        self.advice = advice
        super().__init__(f"{name}={value!r}: {advice}")

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, object, str]]:
        return type(self), (self.name, self.value, self.advice)


class DbError(TicketsimError, ValueError):
    """A ticket db could not be read, or does not hold a valid ticket db.

    ``problem`` says what is wrong; ``advice``, when the error knows it, what to do.
    A caller that knows better advice for its own case (``--keep``) adds it only where
    there is none.
    """

    def __init__(self, path: str, problem: str, advice: str | None = None) -> None:
        self.path = path
        self.problem = problem
        self.advice = advice
        super().__init__(f"{path}: {self.reason}")

    @property
    def reason(self) -> str:
        """The problem, then the advice."""
        return self.problem if self.advice is None else f"{self.problem}; {self.advice}"

    def __reduce__(self) -> tuple[type[DbError], tuple[str, str, str | None]]:
        return type(self), (self.path, self.problem, self.advice)


class GuardTimeout(TicketsimError, TimeoutError):
    """A buyer waited longer than the run's timeout for its strategy's lock."""

    def __init__(self, what: str, seconds: float) -> None:
        self.what = what
        self.seconds = seconds
        super().__init__(f"gave up waiting for the {what} after {seconds:g} s")

    def __reduce__(self) -> tuple[type[GuardTimeout], tuple[str, float]]:
        return type(self), (self.what, self.seconds)


class DbWriteError(TicketsimError, OSError):
    """Writing the db failed (disk full, I/O error); the db keeps its last good state."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self) -> tuple[type[DbWriteError], tuple[str, str]]:
        return type(self), (self.path, self.reason)


class PathError(TicketsimError, ValueError):
    """A path given to ticketsim cannot be used as asked: not a regular file, the same
    file as another path of the command, a name too long, a loop of symlinks.

    Refused before anything runs or is written (exit 2). ``option`` is the option that
    named the path (``"--history"``), so the message says which one to change.
    """

    def __init__(self, option: str, path: str, problem: str, advice: str) -> None:
        self.option = option
        self.path = path
        self.problem = problem
        self.advice = advice
        super().__init__(f"{option}={path}: {problem}; {advice}")

    def __reduce__(self) -> tuple[type[PathError], tuple[str, str, str, str]]:
        return type(self), (self.option, self.path, self.problem, self.advice)


class SystemRefused(TicketsimError, OSError):
    """The machine refused what a run needs: the process or file limit, a full or
    read-only file system (exit 4). ``what`` says what ticketsim was doing, ``reason``
    the system's word and what to do."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"{what}: {reason}")

    def __reduce__(self) -> tuple[type[SystemRefused], tuple[str, str]]:
        return type(self), (self.what, self.reason)


class HistoryError(TicketsimError, ValueError):
    """A history file that cannot be read back; names the file and the line."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"line {line}: " if line else ""
        super().__init__(f"{path}: {where}{reason}")

    def __reduce__(self) -> tuple[type[HistoryError], tuple[str, int, str]]:
        return type(self), (self.path, self.line, self.reason)


class ScheduleError(TicketsimError, ValueError):
    """A schedule that does not parse, or names a buyer or step that does not exist."""


class ServerUnavailable(TicketsimError, OSError):
    """A server a run needs (PostgreSQL, Redis) could not be found, or did not start
    and answer. ``server`` names it, ``problem`` says what went wrong, ``advice`` what
    to install or look at."""

    def __init__(self, server: str, problem: str, advice: str) -> None:
        self.server = server
        self.problem = problem
        self.advice = advice
        super().__init__(f"{server}: {problem}; {advice}")

    def __reduce__(self) -> tuple[type[ServerUnavailable], tuple[str, str, str]]:
        return type(self), (self.server, self.problem, self.advice)


class NoVerdict(TicketsimError, RuntimeError):
    """There was nothing to check, so no verdict is given (exit 3): a sale of several
    hosts that no host joined. ``what`` names it, ``problem`` says why, ``advice``
    what to do."""

    def __init__(self, what: str, problem: str, advice: str) -> None:
        self.what = what
        self.problem = problem
        self.advice = advice
        super().__init__(f"{what}: {problem}; {advice}")

    def __reduce__(self) -> tuple[type[NoVerdict], tuple[str, str, str]]:
        return type(self), (self.what, self.problem, self.advice)


class StoreError(TicketsimError, ValueError):
    """A store that cannot be used as given (exit 2): a malformed ``--store`` URL, a
    store of the wrong kind for the strategy, a missing client package, or a database
    that holds data ticketsim did not make. ``store`` names it (the URL, without its
    password), ``problem`` says what is wrong, ``advice`` what to do."""

    def __init__(self, store: str, problem: str, advice: str) -> None:
        self.store = store
        self.problem = problem
        self.advice = advice
        super().__init__(f"{store}: {problem}; {advice}")

    def __reduce__(self) -> tuple[type[StoreError], tuple[str, str, str]]:
        return type(self), (self.store, self.problem, self.advice)


class Conflict(TicketsimError, RuntimeError):
    """The store refused a buyer's transaction, and nothing of it happened: a
    serialization failure, ``SQLITE_BUSY``, a watched key that changed, a seat taken
    first, a stale version or fencing token. Trying again may succeed; a strategy that
    does not try again has lost the sale. ``why`` is the store's word for it."""

    def __init__(self, why: str) -> None:
        self.why = why
        super().__init__(why)

    def __reduce__(self) -> tuple[type[Conflict], tuple[str]]:
        return type(self), (self.why,)


class SaleEnded(TicketsimError, RuntimeError):
    """ticketsim ended the sale (an interrupt, a stall) while a buyer that is a thread or
    an asyncio task was still buying: it stops before it writes. A process is killed
    instead; a thread cannot be, so it is told, and its history ends as a killed
    process's does, with a ``lost`` event."""
