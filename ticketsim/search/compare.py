"""Compare the strategies: the same sale under each one, side by side.

:func:`compare` runs one scenario (buyers, tickets, delay, seed, start method, db,
timeout) under every strategy, or the ones named, and returns a :class:`Row` each.
A row is JSON by :meth:`Row.to_json`; :mod:`ticketsim.views.compare` makes the
table, the CSV and the chart of them. Like the rest of the library, nothing here
prints, and nothing here draws.
"""

from __future__ import annotations

import dataclasses
import random
from typing import TYPE_CHECKING, Any, Final

from ticketsim.analysis.report import build_report
from ticketsim.core import stores
from ticketsim.core.exits import ExitCode
from ticketsim.core.frozen import frozen
from ticketsim.core.names import StoreKind
from ticketsim.engine.databases import PrivateServers
from ticketsim.engine.runner import run_sale, vet_db
from ticketsim.engine.strategies import STRATEGIES
from ticketsim.engine.strategies import get as get_strategy
from ticketsim.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ticketsim.analysis.report import Report
    from ticketsim.core.settings import RunConfig

#: The verdict words a row can carry (the part of :attr:`Report.verdict` before ``:``).
VERDICTS: Final = (
    "OK", "OVERSOLD", "LOST UPDATE", "DOUBLE-BOOKED", "VIOLATED", "STALLED", "INCOMPLETE",
    "DB WRITE FAILED",
)  # fmt: skip


@frozen
class Row:
    """One strategy's figures in a comparison.

    Rows built by :meth:`from_report` carry the figures as ``ticketsim run --json``
    gives them: ``elapsed_s`` rounded to the microsecond, ``throughput`` to 0.001.
    """

    strategy: str
    safe: bool
    sold: int
    oversold: int
    double_booked: int
    #: ``None``: unknown, the db left behind could not be read.
    lost_sales: int | None
    torn_reads: int
    elapsed_s: float
    #: Sales per second, from the opening of the sale to the last outcome.
    throughput: float
    #: One of :data:`VERDICTS`.
    verdict: str
    ok: bool
    #: What ``ticketsim run`` would exit with for this strategy's sale.
    exit_code: int

    @classmethod
    def from_report(cls, report: Report) -> Row:
        # A report has every column under the same name; these few are shortened.
        figures = {f.name: getattr(report, f.name) for f in dataclasses.fields(cls)}
        return cls(
            **figures
            | {
                "elapsed_s": round(report.elapsed_s, 6),
                "throughput": round(report.throughput, 3),
                "verdict": report.verdict.split(":", 1)[0],
                "exit_code": int(report.exit_code),
            }
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The columns of :func:`to_csv`, and the keys of :meth:`Row.to_json`, in order.
COLUMNS: Final = tuple(f.name for f in dataclasses.fields(Row))


def strategy_names(wanted: Sequence[str] | None, store: str | None = None) -> list[str]:
    """The strategies to run, by their command-line names; ConfigError for a bad list.
    None: the db file's, or with ``store`` (a ``--store`` URL), that store's."""
    if wanted is None:
        kind = StoreKind.FILE if store is None else stores.parse(store).kind
        return [name.value for name in STRATEGIES if StoreKind.of(name.value) is kind]
    if isinstance(wanted, str):  # a str is a Sequence[str] of its letters
        wanted = [wanted]
    if not wanted:
        raise ConfigError(
            "strategies", tuple(wanted), "name at least one strategy (none means all of them)"
        )
    names: list[str] = []
    for name in wanted:
        canonical = get_strategy(name).name.value  # ConfigError names an unknown one
        if canonical in names:
            raise ConfigError("strategies", canonical, "is named twice; name each one once")
        names.append(canonical)
    return names


def compare(
    base: RunConfig,
    strategies: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Row, ...]:
    """Run the sale ``base`` describes under each strategy; one :class:`Row` each.

    Every strategy of the db file (or of ``base.store``) runs by default, in
    :data:`~ticketsim.engine.strategies.STRATEGIES` order; ``strategies`` names the ones
    to run, in that order (a database strategy runs on a private server, started once
    for all the rows of its store). ``base.strategy`` is
    ignored. Every run gets the same scenario, seed included: when ``base.seed`` is
    ``None`` one seed is drawn and shared. ``progress`` is called with each
    strategy's name before its sale starts.

    Every setting is checked against every strategy before the first sale starts: an
    unknown or repeated name, ``keep`` (each strategy must sell the same fresh
    tickets), or an option a strategy refuses (``lockstep`` with a safe one, a
    schedule it cannot follow) raise :class:`ConfigError`, and a file a strategy could
    not use (:func:`~ticketsim.engine.runner.vet_db`) its error, and nothing runs.
    """
    names = strategy_names(strategies, base.store)
    if base.keep:
        raise ConfigError(
            "keep", True, "each strategy must sell the same fresh tickets; drop --keep"
        )
    seed = base.seed if base.seed is not None else random.SystemRandom().randrange(2**32)
    configs = [dataclasses.replace(base, strategy=name, seed=seed) for name in names]
    for config in configs:  # the files of every row (a SQLite one, a lock file) first
        vet_db(config)
    rows: list[Row] = []
    with PrivateServers() as servers:  # one per store for every row, not one per row
        for config in configs:
            if progress is not None:
                progress(config.strategy)
            rows.append(Row.from_report(build_report(run_sale(config, servers=servers))))
    return tuple(rows)


def exit_code(rows: Sequence[Row]) -> ExitCode:
    """What a comparison exits with: what its rows say, with the unsafe strategies'
    violations expected (showing them is the point) and everything else not.

    A strategy that claims to be safe and broke an invariant is a certain violation
    (1); then a db write that failed (4); then a sale that did not finish (3), since
    its row is not the whole story.
    """
    expected = ExitCode.VIOLATED
    codes = {ExitCode(row.exit_code) for row in rows if row.safe or row.exit_code != expected}
    for code in (ExitCode.VIOLATED, ExitCode.IO_ERROR, ExitCode.STALLED):
        if code in codes:
            return code
    return ExitCode.OK
