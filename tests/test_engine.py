"""The engine's contracts, proved with a counting store (asyncio and trio)."""

from __future__ import annotations

import math
import re

import anyio
import pytest
import structlog

from counting_store import CountingStore, fail_times, hang
from stacksecrets import (
    AsyncClient,
    AuthenticationError,
    ClientOptions,
    Component,
    ConfigurationError,
    ForbiddenError,
    ProblemKind,
    SecretNotFoundError,
    SecretValidationError,
    SecretValue,
    Stack,
    StoreCorruptError,
    StoreUnavailableError,
    ValidationLevel,
    validate_stack,
)
from stacksecrets._engine import Engine

pytestmark = pytest.mark.anyio

LEVELS = list(ValidationLevel)


FAST_RETRY = {"retry_wait_initial": 0.001, "retry_wait_max": 0.01}


def secrets(count: int) -> dict[str, dict[str, str]]:
    return {f"s{i}": {"user": f"u-{i}-value", "password": f"p-{i}-value"} for i in range(count)}


def stack_using(name: str, names: list[str], *, keys: tuple[str, ...] = ("user", "password")):
    """A stack with one component per secret, referencing each key (several times)."""
    components = []
    for i, secret in enumerate(names):
        config = {f"{key}_{j}": f"{{{{{secret}.{key}}}}}" for key in keys for j in range(2)}
        config["url"] = f"scheme://{{{{{secret}.user}}}}:{{{{{secret}.password}}}}@host"
        components.append(Component("tracker", "flavor", f"c{i}", config))
    return Stack(name, components)


@pytest.mark.parametrize("level", LEVELS)
async def test_calls_per_level(level: ValidationLevel):
    """NONE makes no call; SECRET_EXISTS only batched existence; the key level reads each
    unique secret exactly once, however many references, keys and stacks use it."""
    store = CountingStore(secrets(10), max_batch=4)
    names = [f"s{i}" for i in range(10)]
    stacks = [stack_using(f"st{n}", names) for n in range(5)]
    async with AsyncClient(store, level=level) as client:
        report = await client.validate_stacks(stacks)
    assert report.ok
    assert report.stats.references == 5 * 10 * 6
    assert report.stats.unique_secrets == 10
    if level is ValidationLevel.NONE:
        assert sum(store.calls.values()) == 0
    elif level is ValidationLevel.SECRET_EXISTS:
        assert store.calls == {"secrets_exist": math.ceil(10 / 4)}
    else:
        assert store.calls["get_secret"] == 10
        assert sorted(store.read_names) == sorted(names)
        assert store.calls["secrets_exist"] == math.ceil(10 / 4)
    assert report.stats.store_calls == sum(store.calls.values())


async def test_secret_exists_reads_no_value():
    """At SECRET_EXISTS a missing secret is reported without any secret being read."""
    store = CountingStore(secrets(3))
    stack = stack_using("prod", ["s0", "s1", "nope"])
    report = await validate_stack(stack, store=store, level="secret_exists")
    assert store.calls["get_secret"] == 0
    assert [(p.kind, p.secret) for p in report.problems] == [(ProblemKind.MISSING_SECRET, "nope")]


async def test_key_level_skips_reads_of_missing_secrets():
    """With a batching store, missing secrets are found by the existence call, not read."""
    store = CountingStore(secrets(2))
    report = await validate_stack(stack_using("p", ["s0", "s1", "gone1", "gone2"]), store=store)
    assert sorted(store.read_names) == ["s0", "s1"]
    assert {p.secret for p in report.problems} == {"gone1", "gone2"}


async def test_store_without_batching_reads_each_name_once():
    """A store that cannot batch existence gets one read per unique name and no list call."""
    store = CountingStore(secrets(4), batched_exists=False)
    report = await validate_stack(stack_using("p", ["s0", "s1", "s2", "zz"]), store=store)
    assert store.calls == {"get_secret": 4}
    assert [p.secret for p in report.problems] == ["zz"]


@pytest.mark.parametrize("limit", [1, 3, 8])
async def test_concurrency_is_bounded(limit: int):
    """At most max_concurrency store calls are in flight, and the bound is actually used."""
    store = CountingStore(secrets(24), latency=0.01, batched_exists=False)
    names = [f"s{i}" for i in range(24)]
    async with AsyncClient(store, max_concurrency=limit) as client:
        report = await client.validate_stack(stack_using("p", names))
    assert report.ok
    assert store.max_in_flight == limit


async def test_concurrent_reads_of_one_name_share_one_call():
    """Fifty concurrent get_secret calls for one name make one store call (single-flight)."""
    store = CountingStore(secrets(1), latency=0.02)
    results = []
    async with AsyncClient(store) as client:

        async def read() -> None:
            results.append(await client.get_secret("s0"))

        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(read)
    assert store.calls == {"get_secret": 1}
    assert len(results) == 50
    assert all(r.secret_values == {"user": "u-0-value", "password": "p-0-value"} for r in results)


async def test_concurrent_validations_share_reads():
    """Two validations of overlapping stacks running at once read each secret once."""
    store = CountingStore(secrets(6), latency=0.02, batched_exists=False)
    async with AsyncClient(store) as client, anyio.create_task_group() as tg:
        tg.start_soon(client.validate_stack, stack_using("a", ["s0", "s1", "s2", "s3"]))
        tg.start_soon(client.validate_stack, stack_using("b", ["s2", "s3", "s4", "s5"]))
    assert sorted(store.read_names) == [f"s{i}" for i in range(6)]


async def test_second_validation_and_get_secret_hit_the_cache():
    """Within the TTL, validating again or reading a validated secret makes no store call."""
    store = CountingStore(secrets(5))
    stack = stack_using("p", [f"s{i}" for i in range(5)])
    async with AsyncClient(store) as client:
        first = await client.validate_stack(stack)
        calls = sum(store.calls.values())
        second = await client.validate_stack(stack)
        secret = await client.get_secret("s3")
    assert first.stats.store_calls == calls
    assert second.stats.store_calls == 0
    assert second.stats.cache_hits == 5
    assert sum(store.calls.values()) == calls
    assert secret.secret_values["user"] == "u-3-value"


async def test_found_and_missing_have_separate_lifetimes():
    """Found secrets live for the TTL; missing ones for the shorter missing TTL."""
    now = [0.0]
    store = CountingStore(secrets(1), batched_exists=False)
    engine = Engine(store, ClientOptions(cache_ttl=100.0, missing_ttl=5.0), clock=lambda: now[0])
    stack = stack_using("p", ["s0", "gone"])
    await engine.validate([stack], ValidationLevel.SECRET_AND_KEY_EXISTS)
    assert store.calls["get_secret"] == 2
    now[0] = 4.0
    await engine.validate([stack], ValidationLevel.SECRET_AND_KEY_EXISTS)
    assert store.calls["get_secret"] == 2
    now[0] = 6.0  # the missing answer expired, the found one did not
    await engine.validate([stack], ValidationLevel.SECRET_AND_KEY_EXISTS)
    assert store.read_names == ["gone", "s0", "gone"] or sorted(store.read_names) == [
        "gone",
        "gone",
        "s0",
    ]
    now[0] = 101.0
    await engine.validate([stack], ValidationLevel.SECRET_AND_KEY_EXISTS)
    assert store.calls["get_secret"] == 5


async def test_failures_are_not_cached():
    """A look-up that failed is asked again next time instead of answering from a cache."""
    store = CountingStore(secrets(1), batched_exists=False)
    store.fault = fail_times(100)
    async with AsyncClient(store, retry_attempts=2, **FAST_RETRY) as client:
        report = await client.validate_stack(stack_using("p", ["s0"]))
        assert [p.kind for p in report.problems] == [ProblemKind.STORE_ERROR]
        store.fault = None
        again = await client.validate_stack(stack_using("p", ["s0"]))
    assert again.ok


async def test_invalidate_clear_and_writes_refresh_the_cache():
    """invalidate(name), clear() and every write through the client drop cached answers."""
    store = CountingStore(secrets(2))
    async with AsyncClient(store) as client:
        await client.get_secret("s0")
        await client.get_secret("s1")
        client.invalidate("s0")
        await client.get_secret("s0")
        assert store.calls["get_secret"] == 3
        client.clear_cache()
        await client.get_secret("s1")
        assert store.calls["get_secret"] == 4
        await client.update_secret("s1", {"user": "changed-value"})
        assert (await client.get_secret("s1")).secret_values["user"] == "changed-value"
        await client.delete_secret("s1")
        with pytest.raises(SecretNotFoundError):
            await client.get_secret("s1")
        await client.create_secret("s1", {"k": "new-value"})
        assert (await client.get_secret("s1")).secret_values == {"k": "new-value"}


async def test_transient_failures_are_retried_to_the_right_answer():
    """Two transient failures per call are retried; the report is the correct one."""
    store = CountingStore(secrets(3), batched_exists=False)
    store.fault = fail_times(4, retry_after=0.0)
    report = await validate_stack(stack_using("p", ["s0", "s1", "s2", "nope"]), store=store)
    assert [(p.kind, p.secret) for p in report.problems] == [(ProblemKind.MISSING_SECRET, "nope")]
    assert store.calls["get_secret"] == 4 + 4


async def test_exhausted_retries_report_a_store_error_not_a_missing_secret():
    """A secret the store could not be asked about is a store error, never 'missing'."""
    store = CountingStore(secrets(1), batched_exists=False)
    store.fault = fail_times(1000)
    report = await validate_stack(
        stack_using("p", ["s0"]), store=store, retry_attempts=3, **FAST_RETRY
    )
    assert [p.kind for p in report.problems] == [ProblemKind.STORE_ERROR]
    assert store.calls["get_secret"] == 3
    assert "injected transient failure" in report.problems[0].detail


def test_retry_after_hint_sets_the_back_off():
    """The retry hook hands the store's retry-after to stamina as the next wait."""
    from stacksecrets._engine import _retry_hook

    assert _retry_hook(StoreUnavailableError("busy", retry_after=2.5)) == 2.5
    assert _retry_hook(StoreUnavailableError("busy")) is True
    assert _retry_hook(SecretNotFoundError("x")) is False


async def test_deadline_turns_a_hanging_store_into_a_clear_error():
    """A store that never answers fails the validation at the deadline, naming the store."""
    store = CountingStore(secrets(1))
    store.async_fault = hang
    async with AsyncClient(store, deadline=0.2) as client:
        with pytest.raises(StoreUnavailableError, match=r"counting:// did not finish within 0.2"):
            await client.validate_stack(stack_using("p", ["s0", "s1"]))


async def test_every_problem_is_reported_with_every_usage():
    """Missing secrets, missing keys, unreadable values and invalid references all appear
    at once, each with every place that uses it, in a stable order."""
    store = CountingStore(
        {"db": {"user": "dbuser-value"}, "ml": {"user": "mluser", "token": "tok-value"}},
        unreadable={"ml": {"token"}},
    )
    prod = Stack(
        "prod",
        [
            Component("orchestrator", "k8s", "k", {"a": "{{db.password}}", "b": "{{nope.x}}"}),
            Component("tracker", "mlflow", "m", {"t": "{{ml.token}}", "bad": "{{ml}}"}),
        ],
    )
    dev = Stack("dev", [Component("orchestrator", "local", "l", {"p": "{{db.password}}"})])
    report = await validate_stack(prod, store=store)
    both = await AsyncClient(store).validate_stacks([prod, dev])
    kinds = [(p.kind, p.secret, p.key) for p in both.problems]
    assert kinds == [
        (ProblemKind.INVALID_REFERENCE, None, None),
        (ProblemKind.MISSING_KEY, "db", "password"),
        (ProblemKind.VALUE_NOT_READABLE, "ml", "token"),
        (ProblemKind.MISSING_SECRET, "nope", None),
    ]
    missing_key = both.problems[1]
    assert [str(u) for u in missing_key.usages] == [
        "stack 'dev', orchestrator 'l', configuration.p",
        "stack 'prod', orchestrator 'k', configuration.a",
    ]
    assert len(report.problems) == 4
    with pytest.raises(SecretValidationError) as info:
        both.raise_for_problems()
    assert info.value.report is both


async def test_no_secret_value_reaches_logs_or_reports():
    """Captured log events, the report and its JSON never contain a secret value."""
    values = {"db": {"user": "dbuser-SECRET-1", "password": "pw-SECRET-2"}}
    store = CountingStore(values)
    stack = Stack("p", [Component("t", "f", "c", {"u": "{{db.user}}", "x": "{{db.nokey}}"})])
    with structlog.testing.capture_logs() as logs:
        async with AsyncClient(store) as client:
            report = await client.validate_stack(stack)
            await client.get_secret("db")
            resolved_fail = None
            try:
                await client.resolve_stack(stack)
            except SecretValidationError as exc:
                resolved_fail = exc
    text = repr(logs) + report.to_text() + report.to_json() + str(resolved_fail)
    assert logs, "the engine logs its work"
    assert not any(v in text for v in ("dbuser-SECRET-1", "pw-SECRET-2"))


async def test_resolve_stack_substitutes_whole_and_embedded_references():
    """resolve_stack replaces every reference, also inside longer strings, with masked values."""
    store = CountingStore({"db": {"user": "alice", "password": "s3cr3t-pw"}})
    stack = Stack(
        "p",
        [
            Component(
                "artifact_store",
                "s3",
                "a",
                {"url": "postgresql://{{db.user}}:{{db.password}}@h/x", "plain": "x", "n": 3},
                {"docker": {"environment": {"PW": "{{ db.password }}"}, "lit": r"\{{keep}}"}},
            )
        ],
    )
    async with AsyncClient(store) as client:
        resolved = await client.resolve_stack(stack)
    component = resolved.components[0]
    url = component.configuration["url"]
    assert isinstance(url, SecretValue)
    assert url.get_secret_value() == "postgresql://alice:s3cr3t-pw@h/x"
    assert component.settings["docker"]["environment"]["PW"].get_secret_value() == "s3cr3t-pw"
    assert component.settings["docker"]["lit"] == "{{keep}}"
    assert component.configuration["plain"] == "x"
    assert component.configuration["n"] == 3
    assert "s3cr3t-pw" not in repr(resolved)
    assert "s3cr3t-pw" not in f"{url}"


async def test_resolve_stack_refuses_a_stack_with_problems():
    """A stack whose references cannot all be resolved raises with the whole report."""
    store = CountingStore({"db": {"user": "alice"}})
    stack = Stack("p", [Component("t", "f", "c", {"a": "{{db.password}}", "b": "{{x.y}}"})])
    async with AsyncClient(store) as client:
        with pytest.raises(SecretValidationError) as info:
            await client.resolve_stack(stack)
    assert len(info.value.report.problems) == 2


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize(
    ("error", "message"),
    [
        (StoreCorruptError, "the store file is not valid JSON"),
        (AuthenticationError, "the server refused the login"),
    ],
)
async def test_an_unusable_store_fails_the_validation_instead_of_each_secret(
    batched: bool, error: type[Exception], message: str
):
    """A store whose data is unreadable, or that refuses the caller's credentials, raises
    once, rather than reporting a problem per secret."""
    store = CountingStore(secrets(3), batched_exists=batched)

    def unusable(method: str, subject: str) -> None:
        raise error(message)

    store.fault = unusable
    with pytest.raises(error, match=message):
        await validate_stack(stack_using("p", ["s0", "s1", "s2"]), store=store)


async def test_a_forbidden_secret_is_a_problem_of_that_secret():
    """A store that refuses one secret (not the caller) reports 'forbidden' for that one."""
    store = CountingStore(secrets(2), batched_exists=False)

    def refuse(method: str, subject: str) -> None:
        if subject == "s1":
            raise ForbiddenError("no access to s1")

    store.fault = refuse
    report = await validate_stack(stack_using("p", ["s0", "s1"]), store=store)
    assert [(p.kind, p.secret) for p in report.problems] == [(ProblemKind.FORBIDDEN, "s1")]


async def test_resolve_stack_handles_configuration_nested_thousands_deep():
    """Resolution walks without recursion: 5,000 levels resolve as they validate."""
    deep: object = "{{s0.password}}"
    for _ in range(5_000):
        deep = {"inner": [deep]}
    stack = Stack("deep", [Component("orchestrator", "local", "o", {"root": deep})])
    async with AsyncClient(CountingStore(secrets(1))) as client:
        report = await client.validate_stack(stack, level="SECRET_AND_KEY_EXISTS")
        assert report.ok
        resolved = await client.resolve_stack(stack)
    node = resolved.components[0].configuration["root"]
    for _ in range(5_000):
        node = node["inner"][0]
    assert isinstance(node, SecretValue)
    assert node.get_secret_value() == "p-0-value"


async def test_resolve_reads_each_secret_once_under_one_operation():
    """resolve_stacks collects once and substitutes what its validation read: one read per
    secret, however many stacks and references use it."""
    store = CountingStore(secrets(3), batched_exists=False)
    stacks = [stack_using(f"p{i}", ["s0", "s1", "s2"]) for i in range(4)]
    async with AsyncClient(store) as client:
        resolved = await client.resolve_stacks(stacks)
    assert store.calls["get_secret"] == 3
    assert [s.name for s in resolved] == ["p0", "p1", "p2", "p3"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("max_concurrency", 0),
        ("max_concurrency", -3),
        ("cache_ttl", -1),
        ("retry_attempts", 0),
        ("deadline", 0),
        ("deadline", "soon"),
        ("max_concurrency", True),
    ],
)
def test_an_option_out_of_range_is_a_configuration_error_naming_it(option, value):
    """A bad option is our ConfigurationError, naming the option, at construction."""
    with pytest.raises(ConfigurationError, match=f"option {option}"):
        AsyncClient("memory://", **{option: value})


def test_option_keywords_are_exactly_the_options_fields():
    """The typed keyword list and the options class name the same options."""
    import attrs

    from stacksecrets._options import OptionOverrides

    assert set(OptionOverrides.__annotations__) == {f.name for f in attrs.fields(ClientOptions)}


def test_a_client_reads_the_level_only_when_validating(monkeypatch):
    """Building a client and reading secrets never parse the level variable."""
    monkeypatch.setenv("STACKSECRETS_VALIDATION_LEVEL", "bogus")
    client = AsyncClient("memory://")
    assert "from environment" in repr(client)
    with pytest.raises(ConfigurationError, match="STACKSECRETS_VALIDATION_LEVEL"):
        _ = client.level


@pytest.mark.parametrize(
    "literal",
    [
        "{{q7Lp.Secr3t",  # a password that starts with braces
        "pre{{hunter2}}post",  # no dot
        "{{ hunter 2.x }}",  # whitespace inside
        "{{" + "A" * 80,  # long
    ],
)
async def test_reports_show_the_shape_of_invalid_text_never_the_text(literal: str):
    """Literal text that merely contains '{{' may be a credential: the report, its JSON, the
    problem and the error say where it is and what shape it has, not what it says."""
    stack = Stack("p", [Component("orchestrator", "local", "o", {"password": literal})])
    report = await validate_stack(stack, store=CountingStore({}), level="NONE")
    (problem,) = report.problems
    assert problem.kind is ProblemKind.INVALID_REFERENCE
    assert "configuration.password" in report.to_text()
    shown = report.to_text() + report.to_json() + repr(problem) + repr(report)
    words = [w for w in re.findall(r"[A-Za-z0-9]{4,}", literal) if w != "post"]
    assert words
    assert not [w for w in words if w in shown]
    assert "{{" in problem.detail
    assert "xx" in problem.detail


class BatchCountingStore(CountingStore):
    """A ``CountingStore`` that reads up to 20 names a call (as AWS's BatchGetSecretValue)."""

    max_read_batch = 20

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batch_sizes: list[int] = []

    async def get_secrets(self, names):
        await self._enter("get_secrets", ",".join(names))
        try:
            assert len(names) <= self.max_read_batch
            self.batch_sizes.append(len(names))
            await anyio.sleep(0.01)
            answers = {}
            for name in names:
                try:
                    answers[name] = await self.inner.get_secret(name)
                except SecretNotFoundError as exc:
                    answers[name] = exc
            return answers
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize(
    ("names", "calls", "in_flight"),
    [(331, 17, 17), (336, 17, 17), (320, 16, 16), (400, 20, 16), (21, 2, 2)],
)
async def test_batched_reads_are_planned_as_one_wave(names: int, calls: int, in_flight: int):
    """A key-level pass on a batching store: as few calls as 20 names a call allow, the names
    spread evenly (sizes differ by one at most); when the calls exceed the default window (16)
    by at most an eighth of it (331 names: 17 calls) they all go out at once, one round trip;
    beyond that (400 names: 20 calls) the window holds as for any call."""
    store = BatchCountingStore(secrets(names))
    wanted = [f"s{i}" for i in range(names)]
    async with AsyncClient(store) as client:
        report = await client.validate_stack(stack_using("p", wanted))
    assert report.ok
    assert store.calls["get_secrets"] == calls
    assert sum(store.batch_sizes) == names
    assert max(store.batch_sizes) - min(store.batch_sizes) <= 1
    assert store.max_in_flight == in_flight
