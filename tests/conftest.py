"""Shared fixtures and the hypothesis profiles.

Profiles (choose with ``HYPOTHESIS_PROFILE``): ``ci`` (the default; small, for the
suite that CI runs in a few minutes on 2 cores), ``dev`` (more examples) and
``deep`` (long stress runs). Tests that start processes need ``deadline=None``:
process start-up time is not what they measure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings
from sales import SERVERS

from ticketsim.errors import ServerUnavailable
from ticketsim.servers import postgres

if TYPE_CHECKING:
    from collections.abc import Iterator

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


#: Test modules whose tests run on one pytest-xdist worker, one at a time: each checks
#: that nothing of a kind only it makes is left on the machine (network namespaces, veth
#: links, host programs), and would see its neighbour's.
ONE_WORKER = ("tests/engine/test_hosts.py::",)

#: The tests that take longest (``--durations``), handed out first so that no worker is
#: left with a long one at the end while the others idle. Order only: every test runs.
#: Those that keep a core busy come before those that mostly wait (for a stall to show,
#: a lesson's pauses): the first units out run together, and should not all wait at once.
LONG_FIRST = (
    *ONE_WORKER,
    "tests/test_adversarial_machine.py::test_sigint_at_any_moment",
    "tests/search/test_explore.py::test_the_reduced_search_reaches_every_outcome",
    "tests/search/test_yours.py::test_the_example_project_runs_under_the_plugin",
    "tests/core/test_db_stateful.py::",
    "tests/cli/test_cli.py::test_the_demo_runs_to_the_end",
    "tests/engine/test_faults.py::test_killing_buyers_at_random_points",
    "tests/engine/test_faults.py::",
    "tests/engine/test_claims.py::",
    "tests/test_adversarial_machine.py::",
    "tests/search/",
    "tests/engine/",
    "tests/test_adversarial_files.py::",
)


def _rank(nodeid: str) -> int:
    return next((n for n, prefix in enumerate(LONG_FIRST) if nodeid.startswith(prefix)), 99)


class _Scheduling:
    """pytest-xdist's scheduler for this suite: each test is a unit of its own, but a
    module of :data:`ONE_WORKER` is one unit (xdist's ``loadgroup`` cannot be used: it
    renames tests in a way pytest 9 ignores); units go out in :data:`LONG_FIRST` order,
    then in the order collected."""

    @staticmethod
    def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
        from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

        class Scheduling(LoadScopeScheduling):  # type: ignore[misc]
            def _split_scope(self, nodeid: str) -> str:
                for module in ONE_WORKER:
                    if nodeid.startswith(module):
                        return module
                return nodeid

            def _assign_work_unit(self, node: Any) -> None:
                if not getattr(self, "_ranked", False):  # the queue is full: order it once
                    units = sorted(self.workqueue.items(), key=lambda unit: _rank(unit[0]))
                    self.workqueue.clear()
                    self.workqueue.update(units)
                    self._ranked = True
                super()._assign_work_unit(node)

        return Scheduling(config, log)


def _share_bytecode(config: pytest.Config) -> None:
    """With bytecode writing off (``PYTHONDONTWRITEBYTECODE``), each of the hundreds of
    Python programs the suite starts (ticketsim, its spawned buyers, the workers) would
    compile ticketsim's modules afresh, ~0.1 s each: they share a cache of the session's
    own instead, in a temp folder removed when the session ends (as benchmarks/ do)."""
    if not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return  # bytecode is cached as usual (or the xdist controller shares it already)
    folder = tempfile.mkdtemp(prefix="ts-pycache-", dir="/tmp")
    config.stash[_PYCACHE] = folder
    del os.environ["PYTHONDONTWRITEBYTECODE"]  # for the programs started from here on
    os.environ["PYTHONPYCACHEPREFIX"] = folder


_PYCACHE = pytest.StashKey[str]()


def _share_a_cluster(config: pytest.Config) -> None:
    """The suite starts dozens of private PostgreSQL servers, in its workers and in the
    programs it runs: each copies one cluster made here (``TICKETSIM_PG_TEMPLATE``)
    rather than run ``initdb``. Removed when the session ends."""
    if os.environ.get(postgres.TEMPLATE_ENV):
        return  # the xdist controller made it, or whoever started the suite
    stack = contextlib.ExitStack()
    try:
        cluster = stack.enter_context(postgres.template())
    except ServerUnavailable:
        return  # each server says so, in the tests that start one
    config.stash[_CLUSTER] = stack
    os.environ[postgres.TEMPLATE_ENV] = str(cluster)


_CLUSTER = pytest.StashKey[contextlib.ExitStack]()


def pytest_configure(config: pytest.Config) -> None:
    _share_bytecode(config)
    _share_a_cluster(config)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_Scheduling(), "ticketsim-scheduling")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is not None:
        # A temp folder per worker: the folders a ticketsim makes and holds there (its
        # servers', multiprocessing's) are swept by no other worker's programs, and
        # programs a test runs inherit it. Short, for the sockets inside.
        folder = tempfile.mkdtemp(prefix=f"ts-{worker}-", dir="/tmp")
        os.chmod(folder, 0o711)  # PostgreSQL runs as nobody when the tests run as root
        os.environ["TMPDIR"] = tempfile.tempdir = folder
        config.stash[_WORKER_TEMP] = folder


_WORKER_TEMP = pytest.StashKey[str]()


def pytest_unconfigure(config: pytest.Config) -> None:
    cluster = config.stash.get(_CLUSTER, None)
    if cluster is not None:
        del os.environ[postgres.TEMPLATE_ENV]
        cluster.close()
    for key in (_WORKER_TEMP, _PYCACHE):
        folder = config.stash.get(key, None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


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


@pytest.fixture
def own_temp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short temp folder of the test's own, for this process and the programs it runs.

    A folder a SIGKILLed program leaves there is swept by this test's next start (or
    sweep) only: the start of any other program's server, another pytest worker's
    tests' too, sweeps only the temp folders it uses itself.
    """
    folder = Path(tempfile.mkdtemp(prefix="ts-", dir="/tmp"))
    try:
        folder.chmod(0o711)  # PostgreSQL runs as nobody when the tests run as root
        monkeypatch.setenv("TMPDIR", str(folder))
        monkeypatch.setattr(tempfile, "tempdir", str(folder))
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
