"""ticketsim: reproduce the ticket-grab race between processes, and see each protection work.

The library never prints: :func:`run_sale` returns a :class:`RunResult`,
:func:`build_report` turns it into a :class:`Report`. The command line
(:mod:`ticketsim.cli`) and the rendering (:mod:`ticketsim.render`) sit on top.

Only standard-library modules are imported here, because every buyer process
imports this package (under ``spawn`` and ``forkserver`` it is imported afresh).
"""

from __future__ import annotations

from ticketsim.checker import Kind, Violation, check, check_db
from ticketsim.db import Sale, TicketDB
from ticketsim.errors import ConfigError, DbError, GuardTimeout, TicketsimError
from ticketsim.events import Event, Step
from ticketsim.report import ExitCode, Report, build_report
from ticketsim.runner import RunConfig, RunResult, run_sale
from ticketsim.strategies import STRATEGIES, StrategyName

__version__ = "0.1.0"

__all__ = [
    "STRATEGIES",
    "ConfigError",
    "DbError",
    "Event",
    "ExitCode",
    "GuardTimeout",
    "Kind",
    "Report",
    "RunConfig",
    "RunResult",
    "Sale",
    "Step",
    "StrategyName",
    "TicketDB",
    "TicketsimError",
    "Violation",
    "__version__",
    "build_report",
    "check",
    "check_db",
    "run_sale",
]
