"""Kept connections: a 429 keeps its connection open (as a real server or front end does), and a
request that failed because a pooled connection was closed by the peer before any answer byte
(httpx: "Server disconnected without sending a response") is retried at once, not counted as
congestion nor against ``retry_attempts``, and bounded. Counts and outcomes only, no timings.

Against the real ZenML server behind tests/fault_proxy.py (``DROP`` closes the connection
without an answer, as a server's keep-alive time-out does to a request on its way), and with a
counting store for the bound."""

from __future__ import annotations

import time
from collections.abc import Iterator

import anyio
import httpx
import pytest

from counting_store import CountingStore
from fault_proxy import Fault, ProxyThread
from stacksecrets import (
    ClientOptions,
    Component,
    ProblemKind,
    Stack,
    StoreUnavailableError,
    ValidationLevel,
)
from stacksecrets._engine import _STALE_RETRIES, Engine
from stacksecrets.stores._zenml import ZenMLStore
from zenml_fixtures import ZenMLServer

GUARD_SECONDS = 60
FAST = {"retry_wait_initial": 0.001, "retry_wait_max": 0.01}
KEY_LEVEL = ValidationLevel.SECRET_AND_KEY_EXISTS
STALE = "Server disconnected without sending a response."


def _port(server: ZenMLServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def stack_of(names: list[str]) -> Stack:
    config = {f"f{i}": f"{{{{{name}.k}}}}" for i, name in enumerate(names)}
    return Stack("p", [Component("tracker", "flavor", "c", config)])


@pytest.fixture(scope="module")
def names(zenml_server: ZenMLServer) -> Iterator[list[str]]:
    prefix = f"stale{time.monotonic_ns() % 10**8}-"
    wanted = [f"{prefix}s{i}" for i in range(6)]
    ids = zenml_server.create_secrets({n: {"k": f"value-of-{n}"} for n in wanted})
    try:
        yield wanted
    finally:
        for secret_id in ids:
            zenml_server.delete_secret(secret_id)


def test_a_429_keeps_its_connection_and_skips_the_request_body(zenml_server: ZenMLServer):
    """Two 429s (one on a POST whose 200 KB body the proxy skips), then an answer from the
    server: all on one connection, no ``Connection: close``."""
    with ProxyThread("127.0.0.1", _port(zenml_server)) as proxy:
        proxy.retry_after = "0"
        proxy.inject(Fault.HTTP_429, count=2)
        with httpx.Client(base_url=f"http://127.0.0.1:{proxy.port}/api/v1") as client:
            first = client.post("/info", content=b"x" * 200_000)
            second = client.get("/info")
            third = client.get("/info")
        assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
        assert "connection" not in first.headers
        assert proxy.faults_applied == {Fault.HTTP_429: 2}
        assert proxy.connections == 1


@pytest.mark.anyio
async def test_connections_closed_without_an_answer_are_retried_without_a_cut(
    zenml_server: ZenMLServer, names: list[str]
):
    """Eight requests dropped without an answer, with retry_attempts=1 (any other transient
    failure would end as a store error): the validation is correct, the retries are counted
    and the window of calls in flight was never cut."""
    with ProxyThread("127.0.0.1", _port(zenml_server)) as proxy:
        proxy.inject(Fault.DROP, count=8)
        store = ZenMLStore(
            f"http://127.0.0.1:{proxy.port}",
            username=zenml_server.username,
            password=zenml_server.password,
            token=zenml_server.admin_token,
        )
        async with store:
            engine = Engine(
                store, ClientOptions(max_concurrency=4, retry_attempts=1, deadline=60, **FAST)
            )
            with anyio.fail_after(GUARD_SECONDS):
                report = await engine.validate([stack_of(names)], level=KEY_LEVEL)
        assert proxy.faults_applied == {Fault.DROP: 8}
    assert report.ok, report.problems
    assert report.stats.retries == 8
    assert engine.window.cuts == 0


def _stale(count: int):
    remaining = [count]

    def fault(method: str, subject: str) -> None:
        if remaining[0] > 0:
            remaining[0] -= 1
            raise StoreUnavailableError("read failed") from httpx.RemoteProtocolError(STALE)

    return fault


@pytest.mark.anyio
async def test_stale_connection_retries_are_bounded():
    """A store whose every call fails on a stale connection: after _STALE_RETRIES free
    retries they count as transient failures (cut the window, use the attempts) and the
    validation ends with a store error instead of retrying forever."""
    store = CountingStore({"s0": {"k": "v-0-value"}}, batched_exists=False)
    store.fault = _stale(10**6)
    engine = Engine(store, ClientOptions(retry_attempts=3, deadline=60, **FAST))
    with anyio.fail_after(GUARD_SECONDS):
        report = await engine.validate([stack_of(["s0"])], level=KEY_LEVEL)
    assert [p.kind for p in report.problems] == [ProblemKind.STORE_ERROR]
    assert store.calls["get_secret"] == _STALE_RETRIES + 3
    assert engine.window.cuts >= 1


@pytest.mark.anyio
async def test_other_protocol_errors_still_count_as_failures():
    """A protocol error with an answer begun (not a stale connection) uses the attempts."""
    store = CountingStore({"s0": {"k": "v-0-value"}}, batched_exists=False)

    def fault(method: str, subject: str) -> None:
        raise StoreUnavailableError("read failed") from httpx.RemoteProtocolError("peer closed")

    store.fault = fault
    engine = Engine(store, ClientOptions(retry_attempts=2, deadline=60, **FAST))
    report = await engine.validate([stack_of(["s0"])], level=KEY_LEVEL)
    assert [p.kind for p in report.problems] == [ProblemKind.STORE_ERROR]
    assert store.calls["get_secret"] == 2
