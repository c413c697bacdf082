"""The console script's entry point, kept free of imports.

Under ``spawn`` and ``forkserver`` every buyer process re-imports the parent's
``__main__`` (the ``ticketsim`` script). That script imports only this module, so a
buyer does not pay for typer and rich; the command line is imported on call.
"""

from __future__ import annotations


def main() -> None:
    from ticketsim.cli import main as cli_main  # noqa: PLC0415 - the point of this module

    cli_main()
