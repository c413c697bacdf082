"""The console script's entry point, kept free of imports.

Under ``spawn`` and ``forkserver`` every buyer process re-imports the parent's
``__main__`` (the ``ticketsim`` script). That script imports only this module, so a
buyer does not pay for typer and rich; the command line is imported on call.
"""

from __future__ import annotations

import os
import sys

if "__mp_main__" in sys.modules:
    # A spawn child importing the parent's main module, before it unpickles its work.
    from ticketsim.sale import _bootstrap

    _bootstrap.install()


def main() -> None:
    try:
        from ticketsim.cli import main as cli_main  # noqa: PLC0415 - the point of this module
    except KeyboardInterrupt:
        # Ctrl-C while the command line loads: nothing has started, so nothing to end.
        os.write(2, b"ticketsim: interrupted\n")
        sys.exit(130)
    cli_main()
