"""Shared fixtures. Every async test runs on asyncio and on trio."""

from __future__ import annotations

import pytest

pytest_plugins = ["moto_fixtures", "zenml_fixtures"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per backend."""
    return str(request.param)
