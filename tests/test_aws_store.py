"""The AWS Secrets Manager store against a real Secrets Manager API: moto's server on loopback.

Every async test runs on asyncio and trio. Each test works in its own name prefix of the one
session-wide moto server. Answers moto cannot give (a refused secret inside a batch answer,
AWS's own JSON error shapes) come from a scripted loopback server instead, and say so.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from backends import asyncio_only_against_servers
from cli_runner import Cli, Ran
from fault_proxy import Fault, ProxyThread
from moto_fixtures import (
    REGION,
    AwsEnv,
    aws_variables,
    run_moto,
    scripted_aws,
)
from stacksecrets import (
    AsyncClient,
    AuthenticationError,
    Client,
    Component,
    ConfigurationError,
    ForbiddenError,
    ProblemKind,
    SecretExistsError,
    SecretNotFoundError,
    Stack,
    ValidationLevel,
    ValidationReport,
)
from stacksecrets.stores import AwsSecretsManagerStore, BatchReader, open_store

#: The trio runs kept (the backend matters: concurrency, cancellation, timeouts, retries); the
#: other tests against the real server run on asyncio only (tests/backends.py).
trio_not_needed = asyncio_only_against_servers(
    keep={
        "test_cancelled_batched_read_leaves_nothing_behind",
        "test_concurrent_validations_share_batched_reads",
        "test_300_secrets_cost_batched_calls_only",
        "test_throttling_through_the_fault_proxy",
        "test_scripted_throttling_is_retried",
        "test_unreachable_endpoint_is_a_store_error_per_secret",
    }
)


KEY = ValidationLevel.SECRET_AND_KEY_EXISTS
EXISTS = ValidationLevel.SECRET_EXISTS
FAST_RETRIES = {"retry_wait_initial": 0.01, "retry_wait_max": 0.05}


def stack_of(*refs: str, name: str = "s") -> Stack:
    config = {f"f{i:03d}": "{{" + ref + "}}" for i, ref in enumerate(refs)}
    return Stack(name, [Component("experiment_tracker", "mlflow", "tracker", config)])


def until(condition: Callable[[], bool], seconds: float = 10) -> bool:
    """Whether ``condition`` holds within ``seconds`` (for worker threads to settle)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def kinds(report: ValidationReport) -> dict[tuple[str | None, str | None], ProblemKind]:
    return {(p.secret, p.key): p.kind for p in report.problems}


# ---------------------------------------------------------------------- configuration


def test_url_options_and_description(aws_env: AwsEnv):
    """``aws-sm://?region=...&prefix=...`` sets the region and prefix; the description shows
    them and the endpoint, never a credential."""
    store = open_store("aws-sm://?region=us-west-2&prefix=zenml/")
    assert isinstance(store, AwsSecretsManagerStore)
    assert isinstance(store, BatchReader)
    text = store.description + repr(store)
    assert "region=us-west-2" in text
    assert "prefix=zenml/" in text
    assert aws_env.server.url in text
    assert aws_env.secret_access_key not in text
    assert "AKIA" not in text


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("aws-sm://?region=eu-west-1&aws_secret_access_key=x", "never from the URL"),
        ("aws-sm://?colour=blue", "unknown option(s) colour"),
        ("aws-sm://eu-west-1/zenml", "takes options only"),
        ("aws-sm://?prefix=bad%20prefix", "characters AWS does not allow"),
        ("aws-sm://?endpoint_url=ftp://x", "endpoint_url must be http(s)"),
        ("aws-sm://?force_delete_without_recovery=maybe", "must be true or false"),
        ("aws-sm://?profile=no-such-profile", "is not in the shared config"),
    ],
)
def test_bad_urls_are_configuration_errors(aws_env: AwsEnv, url: str, message: str):
    """A bad aws-sm:// URL is a ConfigurationError that says what is wrong, and echoes no
    option value (which could be a pasted key)."""
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_store(url)


def test_aws_region_is_honoured(aws_env: AwsEnv, monkeypatch: pytest.MonkeyPatch):
    """AWS_REGION (Lambda's, ECS's, the other SDKs') names the region when nothing else
    does; botocore itself reads only AWS_DEFAULT_REGION."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert "region=ap-south-1" in open_store("aws-sm://").description


def test_no_region_is_a_configuration_error(aws_env: AwsEnv, monkeypatch: pytest.MonkeyPatch):
    """Without a region anywhere in the chain, the error says where to set one."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ConfigurationError, match="AWS_REGION"):
        open_store("aws-sm://")


@pytest.mark.anyio
async def test_profile_from_shared_files(
    aws_env: AwsEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """A named profile in the shared config and credentials files supplies region and keys
    (the standard chain, not our own lookup)."""
    for name in ("AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    config, credentials = tmp_path / "config", tmp_path / "credentials"
    config.write_text(f"[profile ci]\nregion = {REGION}\n")
    credentials.write_text("[ci]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    aws_env.seed({"db": {"password": "p"}})
    async with AsyncClient(f"{aws_env.url}&profile=ci") as client:
        assert (await client.get_secret("db")).secret_values == {"password": "p"}


# ---------------------------------------------------------------------- both levels


HELD_OUT = {
    "db-old": {"password": "p"},
    "plain": "just a string, not JSON",
    "binary": b"\x00\x01\x02",
    "array": '["a", "b"]',
    "typed": {"port": 5432, "debug": True, "nested": {"a": "b"}, "none": None},
    **{f"svc-{i:02d}": {"token": f"t{i}"} for i in range(1, 26, 2)},
}
HELD_OUT_REFS = [
    "db.password",  # only db-old exists: AWS's name filter would match it
    "db-old.password",
    "db-old.user",  # missing key
    "plain.value",
    "binary.value",
    "array.value",
    "typed.port",
    "typed.debug",
    "typed.nested",
    *(f"svc-{i:02d}.token" for i in range(1, 26)),  # 13 of 25 exist
    "svc-1.token",  # prefix of svc-1x: none exists
    "svc.token",
]


def expected_problems(level: ValidationLevel) -> dict[tuple[str, str | None], ProblemKind]:
    missing_secrets = ["db", "svc-1", "svc", *(f"svc-{i:02d}" for i in range(2, 26, 2))]
    expected: dict[tuple[str, str | None], ProblemKind] = {
        (name, None): ProblemKind.MISSING_SECRET for name in missing_secrets
    }
    if level is KEY:
        expected[("db-old", "user")] = ProblemKind.MISSING_KEY
        for name in ("plain", "binary", "array"):
            expected[(name, "value")] = ProblemKind.VALUE_NOT_READABLE
        expected[("typed", "nested")] = ProblemKind.VALUE_NOT_READABLE
    return expected


@pytest.mark.anyio
@pytest.mark.parametrize("level", [EXISTS, KEY], ids=["exists", "key"])
async def test_held_out_cases_with_exact_names(aws_env: AwsEnv, level: ValidationLevel):
    """Prefix trap (``db`` vs ``db-old``), 25 similar names, missing keys, plain-text,
    binary and JSON-array secrets: every problem, of the right kind, and nothing else."""
    aws_env.seed(HELD_OUT)
    async with AsyncClient(aws_env.url) as client:
        report = await client.validate_stacks([stack_of(*HELD_OUT_REFS)], level=level)
    assert kinds(report) == expected_problems(level)
    not_readable = [p for p in report.problems if p.secret == "binary"]
    assert all("binary" in p.detail for p in not_readable)


@pytest.mark.anyio
async def test_typed_json_values_read_as_their_json_text(aws_env: AwsEnv):
    """Numbers and booleans in a JSON secret read as their JSON text; null, lists and objects
    are keys without a readable value."""
    aws_env.seed({"typed": HELD_OUT["typed"]})
    async with AsyncClient(aws_env.url) as client:
        secret = await client.get_secret("typed")
    assert secret.secret_values == {"port": "5432", "debug": "true"}
    assert secret.unreadable_keys == {"nested", "none"}


def test_sync_client_both_levels(aws_env: AwsEnv):
    """``Client(store="aws-sm://...")`` validates at both levels against moto."""
    aws_env.seed({"db": {"password": "p"}, "db-old": {"password": "q"}})
    stack = stack_of("db.password", "db.user", "gone.x")
    with Client(store=aws_env.url) as client:
        exists = client.validate_stack(stack, level="SECRET_EXISTS")
        key = client.validate_stack(stack, level="SECRET_AND_KEY_EXISTS")
        assert client.get_secret("db").secret_values == {"password": "p"}
    assert kinds(exists) == {("gone", None): ProblemKind.MISSING_SECRET}
    assert kinds(key) == {
        ("gone", None): ProblemKind.MISSING_SECRET,
        ("db", "user"): ProblemKind.MISSING_KEY,
    }


# ---------------------------------------------------------------------- call counts


@pytest.mark.anyio
async def test_300_secrets_cost_batched_calls_only(aws_env: AwsEnv):
    """300 secrets and 10 missing names: the existence level is ceil(310/10) ListSecrets
    calls, the key level ceil(310/20) BatchGetSecretValue calls and nothing else (the batch
    answer names the missing ones); counted by the store and on the wire by a proxy."""
    names = [f"s{i:04d}" for i in range(300)]
    aws_env.seed({name: {"username": "u", "password": "p"} for name in names})
    refs = [f"{n}.{k}" for n in names for k in ("username", "password")]
    refs += [f"gone-{i}.password" for i in range(10)]
    stacks = [stack_of(*refs[i : i + 20], name=f"b{i}") for i in range(0, len(refs), 20)]
    with ProxyThread("127.0.0.1", aws_env.server.port) as proxy:
        store = AwsSecretsManagerStore(
            prefix=aws_env.prefix, endpoint_url=f"http://127.0.0.1:{proxy.port}"
        )
        async with AsyncClient(store, missing_ttl=300) as client:
            key = await client.validate_stacks(stacks, level=KEY)
            assert dict(store.calls) == {"BatchGetSecretValue": math.ceil(310 / 20)}
            assert proxy.requests == 16
            assert key.stats.store_calls == 16
            # Within the cache lifetime, again and at the other level: no call at all.
            store.calls.clear()
            await client.validate_stacks(stacks, level=KEY)
            await client.validate_stacks(stacks, level=EXISTS)
            assert not store.calls
        async with AsyncClient(store) as client:  # a fresh cache
            exists = await client.validate_stacks(stacks, level=EXISTS)
            assert dict(store.calls) == {"ListSecrets": math.ceil(310 / 10)}
            assert proxy.requests == 16 + 31
        await store.aclose()
    expected = {(f"gone-{i}", None): ProblemKind.MISSING_SECRET for i in range(10)}
    assert kinds(exists) == expected
    assert kinds(key) == expected


@pytest.mark.anyio
async def test_a_store_reused_keeps_its_client_and_worker_threads(aws_env: AwsEnv):
    """A store validated through twice (a fresh client and cache each time, as a service
    does) makes its calls on the botocore client and worker threads it already has: the
    second pass starts no thread and builds no client. Closing the store ends its idle
    workers."""
    names = [f"s{i:03d}" for i in range(100)]
    aws_env.seed({name: {"k": "v"} for name in names})
    stacks = [
        stack_of(*[f"{n}.k" for n in names[i : i + 20]], name=f"b{i}") for i in range(0, 100, 20)
    ]
    store = AwsSecretsManagerStore(prefix=aws_env.prefix)
    client_before = store._client
    workers = store._workers
    async with AsyncClient(store) as client:
        assert (await client.validate_stacks(stacks, level=KEY)).ok
    started = workers.started
    assert 1 <= started <= math.ceil(100 / 20)
    # Every answer is in; the last worker may still be on its way back to the idle ones.
    assert until(lambda: workers.idle == started)
    async with AsyncClient(store) as client:
        assert (await client.validate_stacks(stacks, level=KEY)).ok
    assert store.calls["BatchGetSecretValue"] == 2 * math.ceil(100 / 20)
    assert workers.started == started
    assert store._client is client_before
    assert not store._short_clients
    await store.aclose()
    assert until(lambda: all(t.name != "stacksecrets-aws" for t in threading.enumerate()))


@pytest.mark.anyio
async def test_existence_reads_no_value(aws_env: AwsEnv):
    """The existence level calls ListSecrets only, never a value-reading operation."""
    aws_env.seed({"db": {"password": "p"}})
    store = AwsSecretsManagerStore(prefix=aws_env.prefix)
    async with AsyncClient(store) as client:
        await client.validate_stack(stack_of("db.password", "x.y"), level=EXISTS)
    await store.aclose()
    assert set(store.calls) == {"ListSecrets"}


# ---------------------------------------------------------------------- errors


@pytest.mark.anyio
async def test_deleted_secret_inside_a_batch_is_missing(aws_env: AwsEnv):
    """moto's own per-secret errors in a batch answer: a name that never existed
    (ResourceNotFoundException) and one scheduled for deletion (InvalidRequestException)."""
    aws_env.seed({"kept": {"k": "v"}, "doomed": {"k": "v"}})
    aws_env.server.admin().delete_secret(SecretId=aws_env.prefix + "doomed")
    store = AwsSecretsManagerStore(prefix=aws_env.prefix)
    async with store:
        answers = await store.get_secrets(["kept", "doomed", "never"])
    assert store.calls["BatchGetSecretValue"] == 1
    assert answers["kept"].secret_values == {"k": "v"}  # type: ignore[union-attr]
    assert isinstance(answers["doomed"], SecretNotFoundError)
    assert isinstance(answers["never"], SecretNotFoundError)


@pytest.mark.anyio
async def test_refused_secrets_inside_a_batch_answer(aws_env: AwsEnv):
    """Scripted (moto's IAM check refuses whole calls only): a batch answer with one secret,
    one AccessDeniedException, one KMS DecryptionFailure and one ResourceNotFoundException
    gives one problem per secret, of the right kind."""
    with scripted_aws() as script:
        script.answers["BatchGetSecretValue"] = [
            (
                200,
                {
                    "SecretValues": [{"Name": "ok", "SecretString": '{"k": "v"}'}],
                    "Errors": [
                        {"SecretId": "denied", "ErrorCode": "AccessDeniedException"},
                        {"SecretId": "kms", "ErrorCode": "DecryptionFailure"},
                        {"SecretId": "gone", "ErrorCode": "ResourceNotFoundException"},
                    ],
                },
            )
        ]
        store = AwsSecretsManagerStore(endpoint_url=script.url)
        async with AsyncClient(store) as client:
            report = await client.validate_stack(
                stack_of("ok.k", "denied.k", "kms.k", "gone.k"), level=KEY
            )
        await store.aclose()
    assert kinds(report) == {
        ("denied", None): ProblemKind.FORBIDDEN,
        ("kms", None): ProblemKind.FORBIDDEN,
        ("gone", None): ProblemKind.MISSING_SECRET,
    }
    assert [op for op, _ in script.calls] == ["BatchGetSecretValue"]


@pytest.mark.anyio
@pytest.mark.parametrize("code", ["ThrottlingException", "TooManyRequestsException"])
async def test_scripted_throttling_is_retried(aws_env: AwsEnv, code: str):
    """AWS's throttling answers (JSON ``__type``) are transient: retried, then answered."""
    with scripted_aws() as script:
        ok = (200, {"SecretValues": [{"Name": "a", "SecretString": '{"k": "v"}'}], "Errors": []})
        script.answers["BatchGetSecretValue"] = [(400, {"__type": code}), ok]
        store = AwsSecretsManagerStore(endpoint_url=script.url)
        async with AsyncClient(store, **FAST_RETRIES) as client:
            report = await client.validate_stack(stack_of("a.k", "a.k2", "b.k"), level=KEY)
        await store.aclose()
    assert kinds(report) == {
        ("a", "k2"): ProblemKind.MISSING_KEY,
        ("b", None): ProblemKind.STORE_ERROR,  # scripted: neither a value nor an error for b
    }
    assert len(script.calls) == 2


@pytest.mark.anyio
async def test_scripted_refused_credentials_raise_authentication_error(aws_env: AwsEnv):
    """AWS's answer to an unknown access key (UnrecognizedClientException) is one
    AuthenticationError for the whole validation, not a problem per secret."""
    with scripted_aws() as script:
        script.answers["BatchGetSecretValue"] = [(400, {"__type": "UnrecognizedClientException"})]
        store = AwsSecretsManagerStore(endpoint_url=script.url)
        async with AsyncClient(store) as client:
            with pytest.raises(AuthenticationError, match="credentials were refused"):
                await client.validate_stack(stack_of("a.k", "b.k"), level=KEY)
        await store.aclose()


@pytest.mark.anyio
async def test_throttling_through_the_fault_proxy(aws_env: AwsEnv):
    """429 answers (with Retry-After) injected between the store and moto are retried with
    back-off; the report equals the fault-free one."""
    aws_env.seed({f"n{i}": {"k": "v"} for i in range(30)})
    stack = stack_of(*(f"n{i}.k" for i in range(30)), "n0.missing", "gone.k")
    with ProxyThread("127.0.0.1", aws_env.server.port) as proxy:
        proxy.retry_after = "0"
        store = AwsSecretsManagerStore(
            prefix=aws_env.prefix, endpoint_url=f"http://127.0.0.1:{proxy.port}"
        )
        async with AsyncClient(store, **FAST_RETRIES) as client:
            proxy.inject(Fault.HTTP_429, count=3)
            with anyio.fail_after(30):
                report = await client.validate_stack(stack, level=KEY)
        async with AsyncClient(store, **FAST_RETRIES) as client:  # a fresh cache
            proxy.inject(Fault.HTTP_429, count=2)
            with anyio.fail_after(30):
                exists = await client.validate_stack(stack, level=EXISTS)
        await store.aclose()
    assert proxy.faults_applied[Fault.HTTP_429] == 5
    assert kinds(report) == {
        ("gone", None): ProblemKind.MISSING_SECRET,
        ("n0", "missing"): ProblemKind.MISSING_KEY,
    }
    assert kinds(exists) == {("gone", None): ProblemKind.MISSING_SECRET}


@pytest.mark.anyio
async def test_unreachable_endpoint_is_a_store_error_per_secret(aws_env: AwsEnv):
    """Nothing listening: retried, then a store error per secret, never "missing"."""
    from server_process import free_port

    store = AwsSecretsManagerStore(endpoint_url=f"http://127.0.0.1:{free_port()}")
    async with AsyncClient(store, retry_attempts=2, **FAST_RETRIES) as client:
        report = await client.validate_stack(stack_of("a.k", "b.k"), level=KEY)
    await store.aclose()
    assert set(kinds(report).values()) == {ProblemKind.STORE_ERROR}
    assert all("EndpointConnectionError" in p.detail for p in report.problems)


@pytest.fixture(scope="module")
def iam_moto(tmp_path_factory: pytest.TempPathFactory):
    """A second moto server that enforces IAM after its first 5 requests (the set-up):
    secrets ``db`` and ``api`` exist, and user ``lister`` may only call ListSecrets."""
    tmp = tmp_path_factory.mktemp("moto-iam")
    with run_moto(tmp, {"INITIAL_NO_AUTH_ACTION_COUNT": "5"}) as server:
        admin = server.admin()
        admin.create_secret(Name="db", SecretString='{"password": "p"}')
        admin.create_secret(Name="api", SecretString='{"token": "t"}')
        iam = admin_iam(server)
        iam.create_user(UserName="lister")
        iam.put_user_policy(
            UserName="lister",
            PolicyName="list-only",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Action": "secretsmanager:ListSecrets", "Resource": "*"}
                    ],
                }
            ),
        )
        key = iam.create_access_key(UserName="lister")["AccessKey"]
        _spend_the_free_actions(server, key["AccessKeyId"])
        yield server, key["AccessKeyId"], key["SecretAccessKey"]


def _spend_the_free_actions(server: Any, key_id: str) -> None:
    """Make moto enforce IAM from the first request of a test on: moto lets the first
    ``INITIAL_NO_AUTH_ACTION_COUNT`` requests through unchecked, and how many of them the
    set-up used is moto's count (its readiness polls may or may not be among them). Requests
    with a wrong secret key are sent until one is refused; before this, the first test to use
    the fixture could pass a bad-credentials check on a free action."""
    import boto3
    from botocore.exceptions import ClientError

    wrong = boto3.client(
        "secretsmanager",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key="wrong",
    )
    for _ in range(10):
        try:
            wrong.list_secrets()
        except ClientError:
            return
    raise AssertionError("moto never began to enforce IAM")


def admin_iam(server: Any) -> Any:
    import boto3

    return boto3.client(
        "iam",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.mark.anyio
async def test_list_only_principal_under_moto_iam(
    aws_env: AwsEnv, iam_moto: Any, monkeypatch: pytest.MonkeyPatch
):
    """moto enforces IAM for Secrets Manager: a list-only principal passes the existence
    level, gets a forbidden problem per secret at the key level, and a wrong secret key is one
    AuthenticationError."""
    server, key_id, secret = iam_moto
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    stack = stack_of("db.password", "api.token", "gone.k")
    async with AsyncClient("aws-sm://", **FAST_RETRIES) as client:
        exists = await client.validate_stack(stack, level=EXISTS)
    async with AsyncClient("aws-sm://", **FAST_RETRIES) as client:  # nothing cached
        key = await client.validate_stack(stack, level=KEY)
    assert kinds(exists) == {("gone", None): ProblemKind.MISSING_SECRET}
    # Refused as a whole, so even the missing name reads as refused: never as "found".
    assert kinds(key) == dict.fromkeys(
        [("db", None), ("api", None), ("gone", None)], ProblemKind.FORBIDDEN
    )
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    async with AsyncClient("aws-sm://", **FAST_RETRIES) as client:
        with pytest.raises(AuthenticationError, match="SignatureDoesNotMatch"):
            await client.validate_stack(stack, level=EXISTS)


# ---------------------------------------------------------------------- writes


@pytest.mark.anyio
async def test_writes_round_trip(aws_env: AwsEnv):
    """create, update (merge and remove keys), list and delete; a taken name is
    SecretExistsError; a deleted secret is missing at once, and its name stays taken during
    AWS's recovery window unless deleted without recovery."""
    async with AsyncClient(aws_env.url) as client:
        await client.create_secret("db", {"user": "u", "password": "p"})
        with pytest.raises(SecretExistsError):
            await client.create_secret("db", {"user": "x"})
        await client.update_secret("db", {"password": "p2", "host": "h"}, remove_keys=["user"])
        client.invalidate("db")
        assert (await client.get_secret("db")).secret_values == {"password": "p2", "host": "h"}
        await client.create_secret("api", {"token": "t"})
        assert await client.list_secrets() == ["api", "db"]
        await client.delete_secret("db")
        assert await client.list_secrets() == ["api"]
        with pytest.raises(SecretNotFoundError):
            await client.get_secret("db")
        with pytest.raises(SecretExistsError):  # scheduled for deletion: the name is taken
            await client.create_secret("db", {"user": "again"})
    async with AsyncClient(f"{aws_env.url}&force_delete_without_recovery=true") as client:
        await client.delete_secret("api")
        await client.create_secret("api", {"token": "new"})  # gone for good: free again
        assert (await client.get_secret("api")).secret_values == {"token": "new"}


@pytest.mark.anyio
async def test_update_refuses_a_secret_without_keys(aws_env: AwsEnv):
    """A plain-text secret is not overwritten by a key-by-key update."""
    aws_env.seed({"plain": "not json"})
    async with AsyncClient(aws_env.url) as client:
        with pytest.raises(Exception, match="not JSON"):
            await client.update_secret("plain", {"k": "v"})
    value = aws_env.server.admin().get_secret_value(SecretId=aws_env.prefix + "plain")
    assert value["SecretString"] == "not json"


@pytest.mark.anyio
async def test_invalid_names_are_missing_without_a_call(aws_env: AwsEnv):
    """Names AWS cannot hold (spaces, a leading ``!``, which would negate a ListSecrets
    filter) are missing without asking AWS."""
    store = AwsSecretsManagerStore(prefix=aws_env.prefix)
    async with store:
        assert await store.secrets_exist(["!db", "a b"]) == frozenset()
        with pytest.raises(SecretNotFoundError):
            await store.get_secret("a b")
    assert not store.calls


# ---------------------------------------------------------------------- CLI


STACK_YAML = """\
name: prod
components:
  - type: experiment_tracker
    flavor: mlflow
    name: tracker
    configuration:
      password: '{{db.password}}'
"""


def cli(*args: str, env: dict[str, str]) -> Ran:
    """The command in this process, with exactly ``env`` as its environment."""
    return Cli(hidden=("",)).invoke(*args, env=env)


def test_cli_validate_and_secret_commands(aws_env: AwsEnv, tmp_path: Path):
    """``stacksecrets validate --store aws-sm://...`` at both levels, and the secret commands,
    against moto; exact names (``db`` is missing although ``db-old`` exists)."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKSECRETS_")}
    aws_env.seed({"db-old": {"password": "p"}})
    stack_file = tmp_path / "stack.yaml"
    stack_file.write_text(
        STACK_YAML + "      old: '{{db-old.password}}'\n      typo: '{{db-old.pasword}}'\n"
    )
    store = ["--store", aws_env.url]
    exists = cli("validate", *store, "--level", "SECRET_EXISTS", str(stack_file), env=env)
    assert exists.returncode == 1, exists.stderr
    assert "'db'" in exists.stdout
    assert "pasword" not in exists.stdout
    key = cli("validate", *store, str(stack_file), env=env)
    assert key.returncode == 1, key.stderr
    assert "pasword" in key.stdout
    created = cli("secret", "create", "db", "--password=fresh", *store, env=env)
    assert created.returncode == 0, created.stderr
    fine = cli("validate", *store, "--level", "SECRET_EXISTS", str(stack_file), env=env)
    assert fine.returncode == 0, fine.stdout + fine.stderr
    listed = cli("secret", "list", *store, env=env)
    assert listed.stdout.split() == ["db", "db-old"]
    deleted = cli("secret", "delete", "db", "--yes", *store, env=env)
    assert deleted.returncode == 0, deleted.stderr


def test_cli_bad_credentials_exit_two(iam_moto: Any, tmp_path: Path):
    """Refused credentials are a configuration problem (exit 2), said once."""
    import os

    server, key_id, _ = iam_moto
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKSECRETS_", "AWS_"))}
    env.update(aws_variables(server.url, "wrong", tmp_path))
    env["AWS_ACCESS_KEY_ID"] = key_id
    stack_file = tmp_path / "stack.yaml"
    stack_file.write_text(STACK_YAML)
    started = time.monotonic()
    result = cli("validate", "--store", "aws-sm://", str(stack_file), env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "credentials were refused" in result.stderr
    assert "wrong" not in result.stderr
    assert time.monotonic() - started < 60


# ---------------------------------------------------------------------- the engine's batched path


@pytest.mark.anyio
async def test_concurrent_validations_share_batched_reads(aws_env: AwsEnv):
    """Two validations of the same 45 names at once read each name once: ceil(45/20) calls
    in all, not twice that (single-flight across batched reads)."""
    names = [f"c{i:02d}" for i in range(45)]
    aws_env.seed({name: {"k": "v"} for name in names})
    stack = stack_of(*(f"{n}.k" for n in names))
    store = AwsSecretsManagerStore(prefix=aws_env.prefix)
    async with AsyncClient(store) as client:
        reports: list[ValidationReport] = []

        async def validate() -> None:
            reports.append(await client.validate_stack(stack, level=KEY))

        async with anyio.create_task_group() as tg:
            tg.start_soon(validate)
            tg.start_soon(validate)
    await store.aclose()
    assert [r.ok for r in reports] == [True, True]
    assert store.calls["BatchGetSecretValue"] == 3


@pytest.mark.anyio
async def test_cancelled_batched_read_leaves_nothing_behind(aws_env: AwsEnv):
    """A validation cancelled while its batch reads are on a slow link ends at once; the next
    one reads afresh and answers."""
    aws_env.seed({"a": {"k": "v"}, "b": {"k": "v"}})
    stack = stack_of("a.k", "b.k", "c.k")
    with ProxyThread("127.0.0.1", aws_env.server.port, latency_ms=3000) as proxy:
        slow = AwsSecretsManagerStore(
            prefix=aws_env.prefix, endpoint_url=f"http://127.0.0.1:{proxy.port}"
        )
        async with AsyncClient(slow) as client:
            started = time.monotonic()
            with anyio.move_on_after(0.3):
                await client.validate_stack(stack, level=KEY)
            assert time.monotonic() - started < 2
            assert client.in_flight == 0
            proxy.latency_ms = 0
            report = await client.validate_stack(stack, level=KEY)
        await slow.aclose()
    assert kinds(report) == {("c", None): ProblemKind.MISSING_SECRET}


def test_a_secret_without_keys_shows_why_not_its_value(aws_env: AwsEnv):
    """The repr of a binary or plain-text secret says why it has no keys, never the value."""
    aws_env.seed({"plain": "hunter2-plain-text"})
    with Client(store=aws_env.url) as client:
        secret = client.get_secret("plain")
    assert secret.keys == frozenset()
    assert "not JSON" in repr(secret)
    assert "hunter2" not in repr(secret) + str(secret)


@pytest.mark.anyio
async def test_failing_batches_raise_one_store_error(aws_env: AwsEnv):
    """25 names are three ListSecrets calls; when they fail, the store raises one of its own
    errors (ForbiddenError here), never an ExceptionGroup, and a validation reports each name."""
    with scripted_aws() as script:
        script.answers["ListSecrets"] = [(400, {"__type": "AccessDeniedException"})]
        store = AwsSecretsManagerStore(endpoint_url=script.url)
        names = [f"n{i:02d}" for i in range(25)]
        with pytest.raises(ForbiddenError):
            await store.secrets_exist(names)
        async with AsyncClient(store) as client:
            report = await client.validate_stack(stack_of(*(f"{n}.k" for n in names)), level=EXISTS)
        await store.aclose()
    assert set(kinds(report).values()) == {ProblemKind.FORBIDDEN}
    assert len(report.problems) == 25
