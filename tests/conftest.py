"""Shared fixtures and the hypothesis profiles.

Profiles (choose with ``HYPOTHESIS_PROFILE``): ``ci`` (the default; small, for the
suite that CI runs in a few minutes on 2 cores), ``dev`` (more examples) and
``deep`` (long stress runs). Tests that start processes need ``deadline=None``:
process start-up time is not what they measure.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings
from sales import SERVERS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

_SLOW_OK = [HealthCheck.too_slow]
settings.register_profile("ci", max_examples=8, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile("deep", max_examples=300, deadline=None, suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# A suite started in the background by a non-interactive shell (``cmd &``, nohup, some
# CI runners) inherits SIGINT ignored, and every program it starts would too: the
# tests of what Ctrl-C does need it delivered, as a terminal delivers it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _session_servers() -> Iterator[None]:
    """Stop the servers the session's sales started (:data:`sales.SERVERS`), whatever
    the tests did."""
    try:
        yield
    finally:
        SERVERS.stop()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A db path in a folder of its own."""
    return tmp_path / "tickets.json"
