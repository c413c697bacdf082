"""The catalogue (what each strategy claims) and the registry (how it is built) agree."""

from __future__ import annotations

import pytest

import ticketsim
from ticketsim.core.catalog import CATALOG
from ticketsim.core.names import StrategyName
from ticketsim.engine import strategies
from ticketsim.engine.strategies import STRATEGIES
from ticketsim.errors import ConfigError


def test_every_name_has_an_entry_and_a_builder_and_nothing_else_does() -> None:
    # A name in the catalogue without a builder would pass every check of the
    # settings, then fail inside the run as a bug.
    assert list(CATALOG) == list(StrategyName)
    assert list(STRATEGIES) == list(StrategyName)
    for name, strategy in STRATEGIES.items():
        assert strategy.info is CATALOG[name]
        assert strategies.get(name.value) is strategy


def test_an_unknown_strategy_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"strategy='nope': choose one of none, lock"):
        strategies.get("nope")


def test_the_package_exports_the_catalogue() -> None:
    assert ticketsim.CATALOG is CATALOG
    assert ticketsim.CATALOG["lock"].safe  # type: ignore[index]


def test_every_strategy_of_threads_and_tasks_has_a_builder_for_each_kind_it_names() -> None:
    # The same agreement for --workers: tests/engine/test_workers.py forces each verdict.
    from ticketsim.core import catalog
    from ticketsim.core.catalog import WORLDS
    from ticketsim.core.names import WorkerKind
    from ticketsim.engine import worlds

    named = {
        (kind, info.name.value)
        for info in (*CATALOG.values(), *WORLDS.values())
        for kind in info.workers
        if kind is not WorkerKind.PROCESSES or info.name in WORLDS
    }
    assert set(worlds.WORLD_STRATEGIES) == named
    for name, info in WORLDS.items():
        assert strategies.STRATEGIES.get(name) is None  # type: ignore[call-overload]
        assert catalog.info(name.value) is info
