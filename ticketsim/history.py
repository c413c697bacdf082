"""Histories, as files: what ``--history`` writes and ``ticketsim check`` reads.

A history is JSON Lines: a first line that describes the sale, then one event per line
(Jepsen's ``invoke``/``ok``/``fail``/``info``). Any program can write one, in any
language: ``docs/history.md`` says how, and ``docs/history.schema.json`` checks it.

    >>> from ticketsim import history
    >>> result = history.load("run.jsonl", "db/tickets.json")   # doctest: +SKIP
    >>> text = history.dump(result)                             # doctest: +SKIP
"""

from __future__ import annotations

from ticketsim.analysis.history import dumps as dump
from ticketsim.analysis.history import load, names_a_system, save

__all__ = ["dump", "load", "names_a_system", "save"]
