"""Throttling-aware clients, proved with a counting store (asyncio and trio): a throttled answer
is retried until the deadline, not a fixed count; a lasting failure never; the calls in flight
adapt (AIMD) and an optional rate limit paces them. Counts and outcomes only, no timings.

The stores' side (429/503 with Retry-After and AWS throttling codes mark ``throttled``) is
tested against real servers in test_faults.py and test_aws_store.py."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from cli_runner import Cli
from counting_store import CountingStore
from stacksecrets import (
    AsyncClient,
    ClientOptions,
    Component,
    ConfigurationError,
    ForbiddenError,
    ProblemKind,
    Stack,
    StoreUnavailableError,
    ValidationLevel,
)
from stacksecrets._engine import Engine
from stacksecrets._flow import Pace, Window

FAST = {"retry_wait_initial": 0.001, "retry_wait_max": 0.01}


def store_of(count: int, **options: object) -> CountingStore:
    values = {f"s{i}": {"k": f"v-{i}-value"} for i in range(count)}
    return CountingStore(values, **options)  # type: ignore[arg-type]


def stack_of(count: int) -> Stack:
    config = {f"f{i}": f"{{{{s{i}.k}}}}" for i in range(count)}
    return Stack("p", [Component("tracker", "flavor", "c", config)])


def throttle_times(count: int, *, retry_after: float | None = 0.0):
    """The first ``count`` calls answer "slow down"."""
    remaining = [count]

    def fault(method: str, subject: str) -> None:
        if remaining[0] > 0:
            remaining[0] -= 1
            raise StoreUnavailableError("slow down", retry_after=retry_after, throttled=True)

    return fault


@pytest.mark.anyio
async def test_throttled_answers_are_retried_beyond_the_attempt_count():
    """30 throttled answers on one secret with retry_attempts=2: the client keeps trying
    within its deadline and the validation ends correct; the stats count them."""
    store = store_of(1, batched_exists=False)
    store.fault = throttle_times(30)
    async with AsyncClient(store, retry_attempts=2, deadline=60, **FAST) as client:
        report = await client.validate_stack(stack_of(1))
    assert report.ok
    assert store.calls["get_secret"] == 31
    assert report.stats.throttled == 30
    assert report.stats.retries == 30
    assert report.to_dict()["stats"]["throttled"] == 30
    assert "30 throttled answers, 30 retries" in report.summary()


@pytest.mark.anyio
async def test_a_throttled_wait_spreads_over_a_whole_hint():
    """Each throttled answer is waited for as told plus up to as much again, at random: a
    fleet told the same comes back spread over a whole hint (the waits' spread is far over
    the tenth of the hint a burst-sized jitter would give), never sooner than told."""
    import structlog

    store = store_of(1, batched_exists=False)
    store.fault = throttle_times(12, retry_after=0.1)
    with structlog.testing.capture_logs() as logs:
        async with AsyncClient(store, deadline=60, **FAST) as client:
            report = await client.validate_stack(stack_of(1))
    assert report.ok
    waits = [e["wait_for"] for e in logs if e["event"] == "stacksecrets.retry_scheduled"]
    assert len(waits) == 12
    assert all(0.1 <= wait <= 0.2 for wait in waits), waits
    assert max(waits) - min(waits) > 0.03, waits


@pytest.mark.anyio
async def test_a_hint_that_fits_the_retry_budget_is_waited_whatever_the_jitter(
    monkeypatch: pytest.MonkeyPatch,
):
    """No deadline: the retry budget (``retry_timeout``) bounds retries. A throttled answer
    whose hint fits the budget is retried every time; the jitter only takes what the budget
    leaves (the largest jitter forced here: a hint of 0.2 s plus up to 0.2 s against a 0.3 s
    budget gave up at once half the time, as a CLI behind Retry-After 20 with a 30 s budget
    did)."""
    import random

    monkeypatch.setattr(random, "uniform", lambda _low, high: high)
    store = store_of(1, batched_exists=False)
    store.fault = throttle_times(1, retry_after=0.2)
    options = {**FAST, "retry_timeout": 0.3}
    async with AsyncClient(store, **options) as client:
        report = await client.validate_stack(stack_of(1))
    assert report.ok, report.summary()
    assert (report.stats.throttled, report.stats.retries) == (1, 1)


@pytest.mark.anyio
async def test_throttled_without_a_hint_backs_off_and_succeeds():
    """A throttled answer with no retry-after hint is retried with back-off, past the count."""
    store = store_of(2, batched_exists=False)
    store.fault = throttle_times(8, retry_after=None)
    async with AsyncClient(store, retry_attempts=1, deadline=60, **FAST) as client:
        report = await client.validate_stack(stack_of(2))
    assert report.ok
    assert report.stats.throttled == 8


@pytest.mark.anyio
async def test_other_transient_failures_still_stop_at_the_attempt_count():
    """Not throttled (a reset, a 502): retry_attempts calls, then a store error."""
    store = store_of(1, batched_exists=False)

    def fault(method: str, subject: str) -> None:
        raise StoreUnavailableError("connection reset")

    store.fault = fault
    async with AsyncClient(store, retry_attempts=3, deadline=60, **FAST) as client:
        report = await client.validate_stack(stack_of(1))
    assert [p.kind for p in report.problems] == [ProblemKind.STORE_ERROR]
    assert store.calls["get_secret"] == 3
    assert (report.stats.throttled, report.stats.retries) == (0, 2)


@pytest.mark.anyio
async def test_time_held_back_by_throttling_does_not_spend_the_retry_budget():
    """A call throttled for longer than ``retry_timeout`` (a fleet behind a quota), then
    failing once otherwise (a read timeout), is still retried: the store's hold is no
    failure. The attempt count still bounds the other failures."""
    store = store_of(1, batched_exists=False)
    faults = [StoreUnavailableError("slow down", retry_after=0.1, throttled=True)] * 4
    faults.append(StoreUnavailableError("read timeout"))

    def fault(method: str, subject: str) -> None:
        if faults:
            raise faults.pop(0)

    store.fault = fault
    async with AsyncClient(
        store, retry_attempts=2, retry_timeout=0.2, deadline=60, **FAST
    ) as client:
        report = await client.validate_stack(stack_of(1))
    assert report.ok
    assert store.calls["get_secret"] == 6
    assert (report.stats.throttled, report.stats.retries) == (4, 5)


@pytest.mark.anyio
async def test_lasting_failures_are_never_retried():
    """A refusal (403) is asked once."""
    store = store_of(1, batched_exists=False)

    def fault(method: str, subject: str) -> None:
        raise ForbiddenError("not yours")

    store.fault = fault
    async with AsyncClient(store, deadline=60, **FAST) as client:
        report = await client.validate_stack(stack_of(1))
    assert [p.kind for p in report.problems] == [ProblemKind.FORBIDDEN]
    assert store.calls["get_secret"] == 1
    assert report.stats.retries == 0


@pytest.mark.anyio
async def test_without_a_deadline_throttling_is_bounded_by_the_retry_budget():
    """No deadline: a hint longer than retry_timeout ends the retries at once."""
    store = store_of(1, batched_exists=False)
    store.fault = throttle_times(5, retry_after=100.0)
    async with AsyncClient(store, retry_timeout=1, **FAST) as client:
        report = await client.validate_stack(stack_of(1))
    assert [p.kind for p in report.problems] == [ProblemKind.STORE_ERROR]
    assert store.calls["get_secret"] == 1
    assert report.stats.throttled == 1


@pytest.mark.anyio
async def test_the_window_shrinks_under_a_quota_of_calls_in_flight():
    """A store that throttles whenever more than 3 calls are in flight: the engine cuts its
    window, every secret is still read, and the window ends below the ceiling."""
    store = store_of(40, latency=0.005, batched_exists=False)

    def fault(method: str, subject: str) -> None:
        if store.in_flight > 3:
            raise StoreUnavailableError("quota", retry_after=0.0, throttled=True)

    store.fault = fault
    engine = Engine(store, ClientOptions(max_concurrency=16, deadline=60, **FAST))
    with anyio.fail_after(60):
        report = await engine.validate([stack_of(40)], level=_key_level())
    assert report.ok
    assert set(store.read_names) == {f"s{i}" for i in range(40)}
    assert report.stats.throttled > 0
    assert engine.window.cuts >= 1
    assert engine.window.limiter.total_tokens < 16


def _key_level() -> ValidationLevel:
    return ValidationLevel.SECRET_AND_KEY_EXISTS


@pytest.mark.anyio
async def test_window_cuts_once_per_round_and_grows_back():
    """AIMD: a throttled answer halves the window; answers to calls sent before that cut do
    not cut again; a whole window of answers grows it by one, up to the ceiling."""
    window = Window.of(16)
    tickets = [window.start() for _ in range(16)]
    window.throttled(tickets[0])
    assert window.limiter.total_tokens == 8
    window.throttled(tickets[5])  # sent before the cut
    assert window.limiter.total_tokens == 8
    window.throttled(window.start())  # sent after it
    assert window.limiter.total_tokens == 4
    for _ in range(5):  # about one window of answers
        window.answered()
    assert window.limiter.total_tokens == 5
    for _ in range(1000):
        window.answered()
    assert window.limiter.total_tokens == 16
    for _ in range(10):
        window.throttled(window.start())
    assert window.limiter.total_tokens == 1


@pytest.mark.anyio
async def test_pace_spaces_calls_by_the_rate():
    """A rate limit of 200 calls per second gives 20 calls slots 5 ms apart."""
    pace = Pace(200.0)
    first = anyio.current_time()
    for _ in range(20):
        await pace.wait()
    assert pace.next_slot - first >= 20 / 200 - 1e-9


@pytest.mark.anyio
async def test_rate_limit_option_reads_every_secret():
    """With rate_limit set, the answers are the same and every call went through the pace."""
    store = store_of(12, batched_exists=False)
    engine = Engine(store, ClientOptions(rate_limit=500.0))
    started = anyio.current_time()
    report = await engine.validate([stack_of(12)], level=_key_level())
    assert report.ok
    assert store.calls["get_secret"] == 12
    assert engine._pace is not None
    assert engine._pace.next_slot - started >= 12 / 500 - 1e-9


@pytest.mark.anyio
@pytest.mark.parametrize("value", [0, -1, True, float("inf"), "fast"])
async def test_rate_limit_must_be_a_positive_number(value: object):
    with pytest.raises(ConfigurationError, match="rate_limit"):
        ClientOptions(rate_limit=value)  # type: ignore[arg-type]


def test_cli_rate_limit_flag_and_variable(cli: Cli, tmp_path: Path):
    """``validate --rate-limit N`` (or STACKSECRETS_RATE_LIMIT) runs the same validation; a
    rate that is not positive is refused before any store call, naming the flag."""
    store = f"file://{tmp_path}/s.json"
    assert cli.invoke("secret", "create", "db", "--password=pw-value", store=store).exit_code == 0
    stack = tmp_path / "stack.yaml"
    stack.write_text(
        "stacks:\n  - name: s\n    components:\n      - type: t\n        flavor: f\n"
        "        name: n\n        configuration:\n          p: '{{db.password}}'\n"
    )
    flagged = cli.invoke("validate", str(stack), "--rate-limit", "50", "--json", store=store)
    assert flagged.exit_code == 0, flagged.stderr
    assert json.loads(flagged.stdout)["ok"] is True
    from_env = cli.invoke(
        "validate", str(stack), store=store, env={"STACKSECRETS_RATE_LIMIT": "50"}
    )
    assert from_env.exit_code == 0, from_env.stderr
    refused = cli.invoke("validate", str(stack), "--rate-limit", "0", store=store)
    assert refused.exit_code == 2
    assert "--rate-limit" in refused.stderr


def test_progress_line_shows_throttled_answers_only_when_there_were_some():
    """The progress line counts throttled answers once the store said slow down."""
    from stacksecrets._observe import Progress
    from stacksecrets.cli._terminal import ValidationProgress

    shown = ValidationProgress("Validating", clock=lambda: 0.0)
    shown.progress(Progress(2, 5, 3, 0))
    assert "throttled" not in shown.line()
    shown.progress(Progress(2, 5, 9, 0, throttled=6, retries=6))
    assert "6 throttled answers" in shown.line()
