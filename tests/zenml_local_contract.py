"""The store contract (tests/store_conformance.py) for ``zenml+local://``, ZenML's local
database through ZenML's own client. It runs inside the ZenML venv (the dev venv has no
``zenml``), started by tests/test_zenml_local.py with its own ``ZENML_CONFIG_PATH``::

    PYTHONPATH=src:tests $STACKSECRETS_ZENML_PYTHON -m pytest --noconftest \\
        tests/zenml_local_contract.py
"""

from __future__ import annotations

import pytest

from stacksecrets.stores._zenml_local import ZenMLLocalStore
from store_conformance import StoreContract, StoreTarget


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_target() -> StoreTarget:
    """A fresh ZenML configuration folder per run: names are unique per test, no cleanup."""
    return StoreTarget(open=ZenMLLocalStore)


class TestZenMLLocalStore(StoreContract):
    """The whole contract, writes included, on ZenML's local SQLite database."""
