"""ticketsim: reproduce the ticket-grab race between processes, and see each protection work.

The library never prints: :func:`run_sale` returns a :class:`RunResult`,
:func:`build_report` turns it into a :class:`Report`. The command line
(:mod:`ticketsim.cli`) and the rendering (:mod:`ticketsim.views.render`) sit on top.

The names below are imported on first use (:pep:`562`): every buyer process imports
this package (under ``spawn`` and ``forkserver`` it is imported afresh), and so does
``ticketsim --help``, which needs none of the library. What they import is standard
library only.
"""

from __future__ import annotations

from importlib import import_module

# Not typing's: importing typing took 9 ms of the 12 the console script spends before
# its Ctrl-C is caught (ticketsim._entry), where a Ctrl-C is a traceback.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

    from ticketsim.analysis.checker import Kind, Violation, check, check_db
    from ticketsim.analysis.report import Report, build_report
    from ticketsim.core.catalog import CATALOG, StrategyInfo
    from ticketsim.core.db import Sale, TicketDB
    from ticketsim.core.events import Event, Step
    from ticketsim.core.exits import ExitCode
    from ticketsim.core.names import StrategyName
    from ticketsim.core.result import RunResult
    from ticketsim.core.settings import RunConfig
    from ticketsim.engine.runner import run_sale
    from ticketsim.engine.strategies import STRATEGIES
    from ticketsim.errors import ConfigError, DbError, GuardTimeout, TicketsimError

__version__ = "0.1.0"

#: The module each public name comes from.
_HOMES: Final = {
    "ticketsim.analysis.checker": ("Kind", "Violation", "check", "check_db"),
    "ticketsim.core.db": ("Sale", "TicketDB"),
    "ticketsim.errors": ("ConfigError", "DbError", "GuardTimeout", "TicketsimError"),
    "ticketsim.core.events": ("Event", "Step"),
    "ticketsim.core.exits": ("ExitCode",),
    "ticketsim.analysis.report": ("Report", "build_report"),
    "ticketsim.engine.runner": ("run_sale",),
    "ticketsim.core.settings": ("RunConfig",),
    "ticketsim.core.result": ("RunResult",),
    "ticketsim.engine.strategies": ("STRATEGIES",),
    "ticketsim.core.catalog": ("CATALOG", "StrategyInfo"),
    "ticketsim.core.names": ("StrategyName",),
}
_HOME_OF: Final = {name: module for module, names in _HOMES.items() for name in names}


if not TYPE_CHECKING:  # type checkers see the imports above, and no catch-all

    def __getattr__(name: str) -> Any:
        module = _HOME_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        globals()[name] = value  # once is enough
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *_HOME_OF})


__all__ = [
    "CATALOG",
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
    "StrategyInfo",
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
