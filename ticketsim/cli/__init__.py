"""The ``ticketsim`` command line: parse, call the library, render, exit.

Errors in what the user typed end as one line on stderr that names the bad value
and says what to do, with exit code 2, before any process starts or any file is
written.

One module per command or group (:mod:`~ticketsim.cli.run`, :mod:`~ticketsim.cli.db`,
:mod:`~ticketsim.cli.search`, :mod:`~ticketsim.cli.compare`, :mod:`~ticketsim.cli.demo`,
:mod:`~ticketsim.cli.play`,
:mod:`~ticketsim.cli.strategies`), each registering its commands on the app of
:mod:`~ticketsim.cli.root`; the options in :mod:`~ticketsim.cli.options`; what is printed
in :mod:`~ticketsim.cli.output`; and in :mod:`~ticketsim.cli.errors`, the one mapping from
an exception to its exit code and line. Commands let the library's errors go up to it.

Start-up is kept short: ``ticketsim --help`` may take at most 1.5 times as long as
``python -c "import typer"`` (``benchmarks/startup.py`` measures it). At module level
these modules import only typer and what the options' declarations need; the library
and rich are imported inside the commands that use them (hence the ``noqa: PLC0415``).
The help is click's plain text, not typer's rich panels, which import rich and
markdown-it.
"""

from __future__ import annotations

# Each command module registers its commands on the app as it is imported.
from ticketsim.cli import compare, db, demo, exercise, hosts, play, run, search, strategies
from ticketsim.cli.errors import fail
from ticketsim.cli.options import MAX_REPEAT, StartMethod
from ticketsim.cli.root import app, main

__all__ = [
    "MAX_REPEAT",
    "StartMethod",
    "app",
    "compare",
    "db",
    "demo",
    "exercise",
    "fail",
    "hosts",
    "main",
    "play",
    "run",
    "search",
    "strategies",
]
