"""Shared fixtures. Every async test runs on asyncio and on trio, except the trio runs a module
leaves out (tests/backends.py)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest
import structlog

from cli_runner import Cli
from server_process import join_early_starts, stop_shared_servers
from stacksecrets import Client

pytest_plugins = ["moto_fixtures", "openbao_fixtures", "zenml_fixtures"]


def pytest_configure(config: pytest.Config) -> None:
    """Every child process starts with SIGINT as a user's shell starts a command: not
    ignored. A test run started in the background (``pytest &`` from a script, without job
    control) ignores SIGINT, every child would inherit that, and a child Python that starts
    with SIGINT ignored installs no ``KeyboardInterrupt`` handler: the Ctrl-C tests would
    test the launcher, not the command. A handler (unlike ``SIG_IGN``) is reset to the
    default by ``exec``, so this process taking SIGINT as Python does is enough; it runs in
    the controller and in each xdist worker."""
    if (
        signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        and threading.current_thread() is threading.main_thread()
    ):
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per backend."""
    return str(request.param)


@pytest.fixture
def cli() -> Cli:
    """The ``stacksecrets`` command with a clean environment: ``cli(*args)`` in a real
    process, ``cli.invoke(*args)`` in this one (see tests/cli_runner.py)."""
    return Cli()


@pytest.fixture(autouse=True)
def _fresh_logging_and_clients() -> Iterator[None]:
    """Whatever a test did to structlog (the CLI configures it) is undone, and the sync
    clients shared by store URL are closed, so no test sees another's."""
    was_configured, saved = structlog.is_configured(), structlog.get_config()
    try:
        yield
    finally:
        Client.close_shared()
        structlog.reset_defaults()
        if was_configured:
            structlog.configure(**saved)


@pytest.fixture(autouse=True, scope="session")
def _early_server_starts() -> Iterator[None]:
    """The servers a worker began starting early (tests/server_process.py) are on record
    before the worker ends, for the controller to stop."""
    yield
    join_early_starts()


@pytest.fixture(autouse=True, scope="session")
def _metadata_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Never the real user's metadata cache: one folder for the session, inherited by
    subprocesses (``XDG_CACHE_HOME`` too, for those started without ``STACKSECRETS_*``).
    Tests of the cache point it elsewhere with ``monkeypatch``."""
    os.environ["STACKSECRETS_CACHE_DIR"] = str(tmp_path_factory.mktemp("metadata-cache"))
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


#: The fixtures of the real servers (tests using them mostly wait on a server or a process).
SERVER_FIXTURES = frozenset({"zenml_server", "openbao", "moto_server"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the trio runs a module says add nothing (its ``trio_not_needed(item)``:
    tests against a real server whose behaviour does not depend on the event loop); they
    show as deselected.

    Under pytest-xdist, the modules with module-scoped fixtures run first, then those with
    tests against a real server, each module's tests still together (``_schedule_rank``):
    the long tests start early, and the many short ones are left for the end, where
    ``--dist worksteal`` spreads them over the workers that are done (a long test last on
    one worker idled the others)."""
    kept, trimmed = [], []
    for item in items:
        rule = getattr(getattr(item, "module", None), "trio_not_needed", None)
        needed = rule is None or not isinstance(item, pytest.Function) or not rule(item)
        (kept if needed else trimmed).append(item)
    if trimmed:
        config.hook.pytest_deselected(items=trimmed)
        items[:] = kept
    if os.environ.get("PYTEST_XDIST_WORKER"):
        rank: dict[str, int] = {}
        for item in items:
            module = item.nodeid.split("::", 1)[0]
            rank[module] = min(rank.get(module, 2), _schedule_rank(item))
        items.sort(key=lambda item: rank[item.nodeid.split("::", 1)[0]])


#: Fixture scopes set up once per worker that runs a test using them.
SHARED_SCOPES = frozenset({"module", "class", "package"})


def _schedule_rank(item: pytest.Item) -> int:
    """0: uses a module- or class-scoped fixture (a login, seeded secrets): first, at the
    head of a worker's queue, where worksteal does not split the module (which would set the
    fixture up again on another worker); 1: uses a real server; 2: the rest."""
    info = getattr(item, "_fixtureinfo", None)  # pytest's own record of the item's fixtures
    defs = info.name2fixturedefs.values() if info is not None else ()
    if any(d[-1].scope in SHARED_SCOPES for d in defs if d):
        return 0
    return 1 if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())) else 2


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Under pytest-xdist, the controller stops the servers its workers shared (after the
    workers are gone): see tests/server_process.py."""
    if hasattr(session.config, "workerinput"):
        return
    factory = getattr(session.config, "_tmp_path_factory", None)  # pytest's own, as xdist uses
    if factory is not None:
        stop_shared_servers(factory.getbasetemp())
