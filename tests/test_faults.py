"""Validation of a 203-reference stack through a fault-injecting proxy in front of a real ZenML.

Each fault (latency, dropped connections, resets in the middle of an answer, 408/429/502/503/504
with and without ``Retry-After``, 500, a server that stops answering) either ends in exactly the
report a fault-free run gives, after retries, or in a clear error: a store error per secret
(never "missing"), or, past the client's deadline, ``StoreUnavailableError`` naming the store.
No run hangs (each is guarded by ``anyio.fail_after``), and the proxy never sees more
connections open at once than the client's ``max_concurrency``.

Each test prints one line of numbers (requests, faults hit, seconds); ``pytest -s`` shows them.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import attrs
import httpx
import pytest

from fault_proxy import Fault, FaultProxy, ProxyThread
from stacksecrets import (
    AsyncClient,
    Component,
    ProblemKind,
    Stack,
    StoreUnavailableError,
    ValidationReport,
)
from stacksecrets.stores import _zenml
from stacksecrets.stores._zenml import ZenMLStore
from zenml_fixtures import ZenMLServer

pytestmark = pytest.mark.zenml

SECRETS = 40
KEYS = ("user", "password", "token")
CONCURRENCY = 4
#: No run may take longer than this: a hang fails the test instead of stalling the suite.
GUARD_SECONDS = 30
FAST_RETRIES = {"retry_wait_initial": 0.01, "retry_wait_max": 0.05}


@attrs.frozen
class Fixture:
    """The seeded server data, the stack that uses it, and the fault-free answer."""

    names: tuple[str, ...]
    missing: tuple[str, ...]
    stack: Stack
    expected: ValidationReport
    #: HTTP requests of a fault-free validation (no login: the store starts with a token).
    requests: int


def build_stack(names: tuple[str, ...], missing: tuple[str, ...]) -> Stack:
    """Ten components using four secrets each (every key, and two embedded in a URL): 200
    references; plus one component with two missing secrets and one missing key."""
    components = []
    for c in range(10):
        config: dict[str, Any] = {}
        for j, name in enumerate(names[4 * c : 4 * c + 4]):
            for key in KEYS:
                config[f"s{j}_{key}"] = f"{{{{{name}.{key}}}}}"
            config[f"s{j}_url"] = f"postgresql://{{{{{name}.user}}}}:{{{{ {name}.password }}}}@db"
        components.append(Component("orchestrator", "kubernetes", f"c{c}", config))
    broken = {
        "a": f"{{{{{missing[0]}.user}}}}",
        "b": f"{{{{{missing[1]}.token}}}}",
        "c": f"{{{{{names[0]}.no_such_key}}}}",
    }
    components.append(Component("alerter", "slack", "broken", broken))
    return Stack("faulty", components)


def zenml_store(server: ZenMLServer, port: int, **options: Any) -> ZenMLStore:
    """A store through the proxy on ``port``, starting with the session's admin token (a
    password login costs the server ~0.4 s of hashing)."""
    return ZenMLStore(
        f"http://127.0.0.1:{port}",
        username=server.username,
        password=server.password,
        token=server.admin_token,
        **options,
    )


@contextlib.asynccontextmanager
async def validating_client(
    server: ZenMLServer, port: int, *, store_options: dict[str, Any] | None = None, **options: Any
) -> AsyncIterator[AsyncClient]:
    """A client (and its store, closed after it) through the proxy on ``port``."""
    settings: dict[str, Any] = {
        "max_concurrency": CONCURRENCY,
        "retry_attempts": 30,
        **FAST_RETRIES,
        **options,
    }
    store = zenml_store(server, port, **(store_options or {}))
    async with store, AsyncClient(store, level="SECRET_AND_KEY_EXISTS", **settings) as client:
        yield client


@pytest.fixture(scope="module")
def seeded(zenml_server: ZenMLServer) -> Iterator[Fixture]:
    """40 secrets with three keys each, created through the REST API concurrently, and the
    report and request count of a fault-free validation through the proxy."""
    prefix = f"f{time.monotonic_ns() % 10**8}-"
    names = tuple(f"{prefix}s{i:02d}" for i in range(SECRETS))
    missing = (f"{prefix}gone-1", f"{prefix}gone-2")
    stack = build_stack(names, missing)

    async def baseline() -> tuple[ValidationReport, int]:
        with ProxyThread("127.0.0.1", _port(zenml_server)) as proxy:
            async with validating_client(zenml_server, proxy.port) as client:
                report = await client.validate_stack(stack)
            return report, proxy.requests

    ids = zenml_server.create_secrets({n: {k: f"{k}-of-{n}" for k in KEYS} for n in names})
    try:
        expected, requests = anyio.run(baseline)
        yield Fixture(names, missing, stack, expected, requests)
    finally:
        for secret_id in ids:
            zenml_server.delete_secret(secret_id)


def _port(server: ZenMLServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


@pytest.fixture
def proxy(zenml_server: ZenMLServer) -> Iterator[FaultProxy]:
    """A fault proxy (its own thread and event loop) in front of the real ZenML server."""
    with ProxyThread("127.0.0.1", _port(zenml_server)) as running:
        yield running


def test_the_fault_free_report_is_the_reference(seeded: Fixture) -> None:
    """The reference run sees 203 references, 42 secrets, and exactly the three planted
    problems: two missing secrets and one missing key."""
    report = seeded.expected
    assert report.stats.references == 203
    assert report.stats.unique_secrets == 42
    found = sorted((p.kind, p.secret, p.key) for p in report.problems)
    assert found == sorted(
        [
            (ProblemKind.MISSING_SECRET, seeded.missing[0], None),
            (ProblemKind.MISSING_SECRET, seeded.missing[1], None),
            (ProblemKind.MISSING_KEY, seeded.names[0], "no_such_key"),
        ]
    )


def _schedule(proxy: FaultProxy, pattern: list[Fault], times: int) -> int:
    for _ in range(times):
        for fault in pattern:
            proxy.inject(fault)
    return sum(fault is not Fault.NONE for fault in pattern) * times


def _latency(proxy: FaultProxy) -> int:
    proxy.latency_ms = 40
    return 0


def _drops(proxy: FaultProxy) -> int:
    return _schedule(proxy, [Fault.NONE, Fault.DROP, Fault.NONE], 6)


def _resets_mid_answer(proxy: FaultProxy) -> int:
    # ZenML's headers take ~170 bytes: 300 cuts every answer inside its JSON body.
    proxy.reset_after_bytes = 300
    return _schedule(proxy, [Fault.RESET, Fault.NONE], 6)


def _too_many_requests(proxy: FaultProxy) -> int:
    # The existence call is refused once, then one read: two waits of a second each.
    proxy.retry_after = "1"
    return _schedule(proxy, [Fault.HTTP_429, Fault.NONE], 2)


def _unavailable(proxy: FaultProxy) -> int:
    proxy.retry_after = "1"
    return _schedule(proxy, [Fault.NONE, Fault.HTTP_503], 4)


def _gateway_errors(proxy: FaultProxy) -> int:
    return _schedule(proxy, [Fault.HTTP_502, Fault.NONE, Fault.HTTP_504, Fault.HTTP_408], 3)


@pytest.mark.parametrize(
    ("arrange", "min_seconds"),
    [
        pytest.param(_latency, 0.4, id="latency-40ms"),
        pytest.param(_drops, 0.0, id="dropped-connections"),
        pytest.param(_resets_mid_answer, 0.0, id="reset-mid-answer"),
        pytest.param(_too_many_requests, 2.0, id="429-retry-after-1"),
        pytest.param(_unavailable, 1.0, id="503-retry-after-1"),
        pytest.param(_gateway_errors, 0.0, id="502-504-408"),
    ],
)
@pytest.mark.anyio
async def test_transient_faults_end_in_the_fault_free_report(
    zenml_server: ZenMLServer,
    proxy: FaultProxy,
    seeded: Fixture,
    arrange: Callable[[FaultProxy], int],
    min_seconds: float,
) -> None:
    """Under each transient fault, validation retries to exactly the fault-free problems;
    every planted fault is hit and costs one more request; Retry-After is waited for; no
    more than max_concurrency connections are open at once."""
    faults = arrange(proxy)
    started = time.perf_counter()
    with anyio.fail_after(GUARD_SECONDS):
        async with validating_client(zenml_server, proxy.port) as client:
            report = await client.validate_stack(seeded.stack)
    seconds = time.perf_counter() - started
    print(
        f"\n{arrange.__name__}: {proxy.requests} requests ({seeded.requests} without faults), "
        f"{sum(proxy.faults_applied.values())} faults hit, {seconds:.2f} s, "
        f"{proxy.max_open_connections} connections at most"
    )
    assert report.problems == seeded.expected.problems
    assert sum(proxy.faults_applied.values()) == faults
    assert proxy.requests == seeded.requests + faults
    assert seconds >= min_seconds
    assert 1 <= proxy.max_open_connections <= CONCURRENCY


@pytest.mark.anyio
async def test_latency_fills_but_never_exceeds_the_concurrency_bound(
    zenml_server: ZenMLServer, proxy: FaultProxy, seeded: Fixture
) -> None:
    """With 40 ms per round trip, reads overlap up to max_concurrency connections, no more,
    and those connections are kept and reused (one handshake per lane, not per read). How long
    that takes is measured by the benchmarks, not asserted here (this machine is shared)."""
    proxy.latency_ms = 40
    with anyio.fail_after(GUARD_SECONDS):
        async with validating_client(zenml_server, proxy.port) as client:
            report = await client.validate_stack(seeded.stack)
    assert report.problems == seeded.expected.problems
    assert proxy.max_open_connections == CONCURRENCY
    assert proxy.requests > 4 * CONCURRENCY
    assert proxy.connections <= CONCURRENCY + 1


@pytest.mark.anyio
async def test_a_500_is_a_store_error_for_that_secret_not_missing(
    zenml_server: ZenMLServer, proxy: FaultProxy, seeded: Fixture
) -> None:
    """A 500 on one read is permanent (as ZenML's own client treats it): not retried, reported
    as a store error naming the status for that one secret; every other answer is unchanged
    and no secret is called missing."""
    proxy.inject(Fault.NONE)  # the existence call
    proxy.inject(Fault.HTTP_500)  # the first read
    with anyio.fail_after(GUARD_SECONDS):
        async with validating_client(zenml_server, proxy.port) as client:
            report = await client.validate_stack(seeded.stack)
    errors = [p for p in report.problems if p.kind is ProblemKind.STORE_ERROR]
    assert len(errors) == 1
    failed = errors[0].secret
    assert failed in seeded.names
    assert "answered 500" in errors[0].detail
    assert "GET /api/v1/secrets/" in errors[0].detail
    others = [p for p in report.problems if p.kind is not ProblemKind.STORE_ERROR]
    assert others == [p for p in seeded.expected.problems if p.secret != failed]
    assert proxy.requests == seeded.requests  # no retry of a 500


@pytest.mark.anyio
async def test_a_retry_after_longer_than_the_retry_budget_is_not_waited_for(
    zenml_server: ZenMLServer, proxy: FaultProxy, seeded: Fixture
) -> None:
    """A 429 asking for an hour's wait, past the 5 s retry budget, ends the retries at once:
    every secret of the refused existence call is a store error naming 429, none missing."""
    proxy.retry_after = "3600"
    proxy.inject(Fault.HTTP_429)
    started = time.perf_counter()
    with anyio.fail_after(GUARD_SECONDS):
        async with validating_client(zenml_server, proxy.port, retry_timeout=5.0) as client:
            report = await client.validate_stack(seeded.stack)
    assert time.perf_counter() - started < 2.0
    assert {p.kind for p in report.problems} == {ProblemKind.STORE_ERROR}
    assert {p.secret for p in report.problems} == {*seeded.names, *seeded.missing}
    assert all("answered 429" in p.detail for p in report.problems)
    assert proxy.requests == 1


@pytest.mark.anyio
async def test_a_server_that_stops_answering_fails_at_the_deadline(
    zenml_server: ZenMLServer, proxy: FaultProxy, seeded: Fixture
) -> None:
    """After a few answers the server goes silent: the validation fails at its 1 s deadline
    with StoreUnavailableError naming the store, the operation and the deadline."""
    for _ in range(5):
        proxy.inject(Fault.NONE)
    proxy.default_fault = Fault.STALL
    started = time.perf_counter()
    with anyio.fail_after(GUARD_SECONDS):
        async with validating_client(zenml_server, proxy.port, deadline=1.0) as client:
            with pytest.raises(StoreUnavailableError) as caught:
                await client.validate_stack(seeded.stack)
    seconds = time.perf_counter() - started
    print(f"\nstall: deadline 1.0 s, raised after {seconds:.2f} s: {caught.value}")
    assert 1.0 <= seconds < 2.5
    message = str(caught.value)
    assert f"validation against zenml+http://127.0.0.1:{proxy.port}" in message
    assert "did not finish within 1 s" in message
    assert proxy.max_open_connections <= CONCURRENCY


@pytest.mark.anyio
async def test_a_silent_server_past_the_read_timeout_is_a_store_error_never_missing(
    zenml_server: ZenMLServer, proxy: FaultProxy, seeded: Fixture
) -> None:
    """With no deadline but a 0.2 s read timeout and two attempts, a silent server ends in a
    store error for every secret (naming the timeout), and not one is reported missing."""
    proxy.default_fault = Fault.STALL
    started = time.perf_counter()
    with anyio.fail_after(GUARD_SECONDS):
        async with validating_client(
            zenml_server, proxy.port, store_options={"timeout": 0.2}, retry_attempts=2
        ) as client:
            report = await client.validate_stack(seeded.stack)
    seconds = time.perf_counter() - started
    print(f"\nsilent: {proxy.requests} requests, {seconds:.2f} s, {len(report.problems)} problems")
    assert {p.kind for p in report.problems} == {ProblemKind.STORE_ERROR}
    assert {p.secret for p in report.problems} == {*seeded.names, *seeded.missing}
    # ReadTimeout as a rule; on a loaded machine the 0.2 s can run out while connecting.
    assert all(re.search(r"(Read|Connect|Pool)Timeout", p.detail) for p in report.problems)
    assert proxy.requests == 2
    assert seconds < 2.0


def test_status_faults_answer_in_place_of_the_server(zenml_server: ZenMLServer) -> None:
    """The proxy's HTTP status faults answer with the status (and Retry-After for 429/503)
    without reaching the server (a 429 keeps the connection, the others close it), and the
    next request goes through; the open-connection gauge is back to zero once the client is
    closed."""
    with ProxyThread("127.0.0.1", _port(zenml_server)) as proxy:
        proxy.retry_after = "7"
        proxy.inject(Fault.HTTP_429)
        proxy.inject(Fault.HTTP_500)
        with httpx.Client(base_url=f"http://127.0.0.1:{proxy.port}/api/v1") as client:
            first = client.get("/info")
            second = client.get("/info")
            third = client.get("/info")
        assert (first.status_code, first.headers.get("Retry-After")) == (429, "7")
        assert (second.status_code, second.headers.get("Retry-After")) == (500, None)
        assert third.status_code == 200
        assert proxy.faults_applied == {Fault.HTTP_429: 1, Fault.HTTP_500: 1}
        assert proxy.connections == 2  # the 429 kept its connection, the 500 closed it
        deadline = time.monotonic() + 5
        while proxy.open_connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proxy.open_connections == 0
        assert proxy.max_open_connections == 1


@pytest.mark.anyio
async def test_throttling_is_retried_until_the_deadline_not_a_count(
    zenml_server: ZenMLServer, proxy: FaultProxy, seeded: Fixture
) -> None:
    """Twelve 429 answers in a row, with only three attempts allowed for other failures: the
    client keeps trying within its deadline and ends with the fault-free report; its stats
    count every throttled answer."""
    proxy.retry_after = "0"
    proxy.inject(Fault.HTTP_429, count=12)
    with anyio.fail_after(GUARD_SECONDS):
        async with validating_client(
            zenml_server, proxy.port, retry_attempts=3, deadline=GUARD_SECONDS
        ) as client:
            report = await client.validate_stack(seeded.stack)
    assert report.problems == seeded.expected.problems
    assert proxy.faults_applied[Fault.HTTP_429] == 12
    assert report.stats.throttled == 12
    assert proxy.requests == seeded.requests + 12


@pytest.mark.anyio
async def test_clients_behind_a_quota_all_finish(
    zenml_server: ZenMLServer, proxy: FaultProxy, seeded: Fixture
) -> None:
    """Two fresh clients at once behind a 20 requests/s quota answering 429 with
    Retry-After: 1: every one ends with the fault-free report, their stats count exactly
    the 429 answers the proxy gave, and the server answered exactly the requests two
    fault-free validations make (a throttled call costs no work twice: its read by the id
    the existence answer gave, however long the quota held it back)."""
    proxy.retry_after = "1"
    proxy.limit(20, burst=5)
    reports: list[ValidationReport] = []

    async def one() -> None:
        async with validating_client(
            zenml_server, proxy.port, max_concurrency=16, deadline=GUARD_SECONDS
        ) as client:
            reports.append(await client.validate_stack(seeded.stack))

    with anyio.fail_after(GUARD_SECONDS):
        async with anyio.create_task_group() as group:
            for _ in range(2):
                group.start_soon(one)
    print(f"\nquota: {proxy.requests} requests, {proxy.faults_applied[Fault.HTTP_429]} 429s")
    assert [r.problems for r in reports] == [seeded.expected.problems] * 2
    assert proxy.faults_applied[Fault.HTTP_429] > 0
    assert sum(r.stats.throttled for r in reports) == proxy.faults_applied[Fault.HTTP_429]
    assert proxy.answered == 2 * seeded.requests


@pytest.mark.anyio
async def test_a_remembered_id_outlives_its_time_while_the_server_throttles(
    zenml_server: ZenMLServer, proxy: FaultProxy, seeded: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An id from an existence answer stands in for a look-up past ``ID_MEMO_SECONDS`` when
    the server throttled since (the read waited on its quota): a fleet's delayed reads cost one
    call each, not two. Without a throttled answer since, it expires (one list call more)."""
    name = seeded.names[0]
    async with zenml_store(zenml_server, proxy.port) as store:
        await store.secrets_exist([name])
        proxy.inject(Fault.HTTP_429)
        with pytest.raises(StoreUnavailableError) as caught:
            await store.get_secret(name)
        assert caught.value.throttled
        monkeypatch.setattr(_zenml, "ID_MEMO_SECONDS", 0.0)  # the id's time is up
        proxy.reset_counters()
        assert (await store.get_secret(name)).secret_values["user"] == f"user-of-{name}"
        assert proxy.requests == 1  # the read by id only
        await store.secrets_exist([name])
        proxy.reset_counters()
        await store.get_secret(name)
        assert proxy.requests == 2  # no throttling since this existence answer: look-up, read


@pytest.mark.anyio
async def test_the_retry_of_a_throttled_read_does_not_look_the_name_up_again(
    zenml_server: ZenMLServer, proxy: FaultProxy, seeded: Fixture
) -> None:
    """``get_secret`` is a look-up and a read: when the read is throttled, the retry reads by
    the id the look-up found (one request), as a step pod's retries should cost no work twice."""
    name = seeded.names[1]
    async with zenml_store(zenml_server, proxy.port) as store:
        proxy.inject(Fault.NONE)  # the look-up goes through
        proxy.inject(Fault.HTTP_429)  # the read is throttled
        with pytest.raises(StoreUnavailableError):
            await store.get_secret(name)
        proxy.reset_counters()
        assert (await store.get_secret(name)).secret_values["user"] == f"user-of-{name}"
        assert proxy.requests == 1


@pytest.mark.anyio
async def test_a_403_is_never_retried(
    zenml_server: ZenMLServer, proxy: FaultProxy, seeded: Fixture
) -> None:
    """A refusal is lasting: never asked again. A refused batched call is narrowed to each
    name alone once (a refusal may concern only some names: issue 21 item 11), and a name
    refused alone is forbidden, without a retry."""
    names = {*seeded.names, *seeded.missing}
    proxy.inject(Fault.HTTP_403, count=1 + len(names))  # the batch, then each name alone
    with anyio.fail_after(GUARD_SECONDS):
        async with validating_client(zenml_server, proxy.port, deadline=GUARD_SECONDS) as client:
            report = await client.validate_stack(seeded.stack)
    assert {p.kind for p in report.problems} == {ProblemKind.FORBIDDEN}
    assert {p.secret for p in report.problems} == names
    assert proxy.requests == 1 + len(names)
    assert report.stats.retries == 0
