"""Shared fixtures. Every async test runs on asyncio and on trio."""

from __future__ import annotations

import pytest

pytest_plugins = ["zenml_fixtures"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per backend."""
    return str(request.param)


@pytest.fixture(autouse=True, scope="session")
def _metadata_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Never the real user's metadata cache: one folder for the session, inherited by
    subprocesses (``XDG_CACHE_HOME`` too, for those started without ``STACKSECRETS_*``).
    Tests of the cache point it elsewhere with ``monkeypatch``."""
    import os

    os.environ["STACKSECRETS_CACHE_DIR"] = str(tmp_path_factory.mktemp("metadata-cache"))
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
