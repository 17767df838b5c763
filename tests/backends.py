"""Which async tests run on trio too. Every async test runs on asyncio and trio (tests/conftest.py)
unless its module says the trio run adds nothing: a module defines ``trio_not_needed(item)``,
and tests/conftest.py leaves those runs out (they show as deselected).

The trio run stays for the engine, the clients, cancellation, timeouts and retries, and a
store's own concurrency; it goes for tests of a store against a real server (ZenML, OpenBao,
moto) whose answers do not depend on the test's event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import pytest

#: The fixtures of the real servers.
SERVER_FIXTURES = frozenset({"zenml_server", "openbao", "moto_server", "aws_env"})


def asyncio_only_against_servers(
    keep: Collection[str],
) -> Callable[[pytest.Function], bool]:
    """A ``trio_not_needed`` rule: the trio run of a test that uses a real server's fixture,
    unless the test's name is in ``keep`` (where the backend matters)."""

    def trio_not_needed(item: pytest.Function) -> bool:
        params = getattr(item, "callspec", None)
        return (
            params is not None
            and params.params.get("anyio_backend") == "trio"
            and not SERVER_FIXTURES.isdisjoint(item.fixturenames)
            and item.originalname not in keep
        )

    return trio_not_needed
