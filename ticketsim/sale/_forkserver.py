"""Preloaded by the forkserver of a ``forkserver`` sale (``set_forkserver_preload``).

The forkserver is a process ticketsim starts, so it dies with ticketsim like the
others (``PR_SET_PDEATHSIG`` on Linux; it also exits once ticketsim's end of its
"alive" pipe closes). And it is quiet: when the machine refuses it a fork it dies, and
the parent says so in one line (exit 4); the forkserver's own traceback, and those of
children left without their parent, would only bury that line.

Importing this module is what it does; nothing but the forkserver imports it.
"""

from __future__ import annotations

from ticketsim.sale import _bootstrap, _signals

_signals.die_with_parent()
_bootstrap.install()
