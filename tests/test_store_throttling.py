"""Every store tells throttling ("slow down") from failure (issue 24, store side).

A store raises ``StoreUnavailableError(throttled=True, retry_after=...)`` when the backend said
slow down (HTTP 429, 503 with ``Retry-After``, AWS ``ThrottlingException`` and its kin), a plain
``StoreUnavailableError`` for other transient failures, and never a transient error for a
permanent one. Real loopback servers answer as the backends do (``tests/hostile_server.py``
for ZenML and Vault, ``scripted_aws`` for AWS's JSON errors).
"""

from __future__ import annotations

import json

import pytest

from hostile_server import HostileServer
from moto_fixtures import AwsEnv, scripted_aws
from stacksecrets import ForbiddenError, SecretNotFoundError, StoreError, StoreUnavailableError
from stacksecrets.stores import AwsSecretsManagerStore, VaultStore, ZenMLStore

# (status, headers, throttled?, retry_after); None: not a StoreUnavailableError at all.
HTTP_ANSWERS = [
    pytest.param(429, {"Retry-After": "7"}, True, 7.0, id="429-retry-after"),
    pytest.param(429, {}, True, None, id="429-bare"),
    pytest.param(503, {"Retry-After": "3"}, True, 3.0, id="503-retry-after"),
    pytest.param(503, {}, False, None, id="503-bare"),
    pytest.param(502, {}, False, None, id="502"),
    pytest.param(504, {"Retry-After": "2"}, False, 2.0, id="504"),
    pytest.param(500, {}, None, None, id="500-permanent"),
]


def _check(exc: BaseException, throttled: bool | None, retry_after: float | None) -> None:
    if throttled is None:
        assert isinstance(exc, StoreError)
        assert not isinstance(exc, StoreUnavailableError)
        return
    assert isinstance(exc, StoreUnavailableError)
    assert exc.throttled is throttled
    assert exc.retry_after == retry_after


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "headers", "throttled", "retry_after"), HTTP_ANSWERS)
async def test_zenml_store_tells_throttling_from_failure(
    status: int, headers: dict[str, str], throttled: bool | None, retry_after: float | None
) -> None:
    """A ZenML server's 429 (and 503 with Retry-After) is throttling; 502/504/bare 503 are
    transient failures; 500 is not transient."""
    body = json.dumps({"detail": ["RateLimitError", "slow down"]})
    with HostileServer("answer", status=status, headers=headers, body=body) as server:
        async with ZenMLStore(server.url, api_key="ZENKEY_x") as store:
            with pytest.raises(StoreError) as caught:
                await store.secrets_exist(["a"])
    _check(caught.value, throttled, retry_after)


@pytest.mark.anyio
@pytest.mark.parametrize(("status", "headers", "throttled", "retry_after"), HTTP_ANSWERS)
async def test_vault_store_tells_throttling_from_failure(
    status: int, headers: dict[str, str], throttled: bool | None, retry_after: float | None
) -> None:
    """A Vault standby's or rate-limit quota's 429 is throttling; a sealed server's bare 503
    is a transient failure; 500 is not transient."""
    body = json.dumps({"errors": ["request rate limit exceeded"]})
    with HostileServer("answer", status=status, headers=headers, body=body) as server:
        async with VaultStore(server.url, token="hvs.x") as store:
            with pytest.raises(StoreError) as caught:
                await store.get_secret("a")
    _check(caught.value, throttled, retry_after)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        pytest.param(400, "ThrottlingException", True, id="ThrottlingException"),
        pytest.param(400, "TooManyRequestsException", True, id="TooManyRequestsException"),
        pytest.param(400, "RequestLimitExceeded", True, id="RequestLimitExceeded"),
        pytest.param(429, None, True, id="429"),
        pytest.param(503, "ServiceUnavailable", False, id="ServiceUnavailable"),
        pytest.param(500, "InternalServiceError", False, id="InternalServiceError"),
        pytest.param(400, "AccessDeniedException", ForbiddenError, id="AccessDenied"),
        pytest.param(400, "ResourceNotFoundException", SecretNotFoundError, id="NotFound"),
    ],
)
async def test_aws_store_tells_throttling_from_failure(
    aws_env: AwsEnv, status: int, code: str | None, expected: object
) -> None:
    """AWS's throttling codes (and a bare 429) are throttling; its transient server errors
    are not; permanent errors are never transient."""
    with scripted_aws() as script:
        body = {"__type": code, "message": "Rate exceeded"} if code else {}
        script.answers["GetSecretValue"] = [(status, body)]
        store = AwsSecretsManagerStore(endpoint_url=script.url)
        try:
            with pytest.raises(StoreError) as caught:
                await store.get_secret("a")
        finally:
            await store.aclose()
    if isinstance(expected, bool):
        assert isinstance(caught.value, StoreUnavailableError)
        assert caught.value.throttled is expected
    else:
        assert isinstance(caught.value, expected)  # type: ignore[arg-type]
        assert not isinstance(caught.value, StoreUnavailableError)
