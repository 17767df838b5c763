"""AWS Secrets Manager as a secret store (``aws-sm://``), through botocore.

URL: ``aws-sm://?region=eu-west-1&prefix=zenml/&profile=dev`` (every option may be left out;
see ``docs/aws.md``). Region, credentials, profile and endpoint come from the standard AWS
configuration chain (``AWS_REGION``, ``AWS_PROFILE``, ``AWS_ACCESS_KEY_ID``, the shared config
and credentials files, SSO, instance roles, ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` /
``AWS_ENDPOINT_URL``); the URL's options only override it. Credentials are never taken from
the URL.

- A secret's keys are the fields of its ``SecretString`` when that is a JSON object. A binary
  secret, or one whose string is not a JSON object, exists but has no readable keys
  (``Secret.unreadable_reason``): every key asked of it is a ``value_not_readable`` problem.
- ``prefix`` maps stacksecrets names onto a namespace of the account: ``db`` is the AWS
  secret ``zenml/db``; ``list_secrets`` shows only that namespace, without the prefix.
- Existence: ``ListSecrets`` with a ``name`` filter of up to 10 names per call. AWS matches
  those by prefix (``db`` finds ``db-old``) and without regard to case, so exact names are
  compared here. No value is read.
- Reads: ``BatchGetSecretValue`` with up to 20 names per call (``get_secrets``); each missing
  or refused name comes back as its own error. ``get_secret`` is one ``GetSecretValue``.
- A secret scheduled for deletion counts as missing, as ``ListSecrets`` leaves it out.

botocore is synchronous (aiobotocore is asyncio-only), so each call runs in a worker thread
(``anyio.to_thread``, under this store's own limiter) on one shared, thread-safe client: the
same code works on asyncio and trio. botocore's own retries are off; the engine retries
transient failures (``StoreUnavailableError``) with back-off.

Errors: throttling, 429 and 5xx answers and network failures -> ``StoreUnavailableError``
(``throttled`` for ``ThrottlingException``, ``TooManyRequestsException``,
``RequestLimitExceeded`` and a 429: AWS said slow down);
refused credentials -> ``AuthenticationError``; ``AccessDeniedException`` (and KMS decryption
refusals) -> ``ForbiddenError``; ``ResourceNotFoundException`` -> ``SecretNotFoundError``.
Messages name the operation, the AWS error code and the endpoint; never a value, a credential
or an answer's body.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import math
import os
import queue
import re
import threading
import urllib.parse
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

try:
    import boto3
    import botocore.config
    import botocore.exceptions
except ImportError as exc:  # pragma: no cover - the optional extra is not installed
    raise ImportError(
        "the AWS Secrets Manager store needs boto3: pip install 'stacksecrets[aws]'"
    ) from exc

from .._errors import (
    AuthenticationError,
    ConfigurationError,
    ForbiddenError,
    SecretExistsError,
    SecretNotFoundError,
    StoreError,
    StoreUnavailableError,
)
from .._logging import logger
from .._secret import Secret
from ._base import StoreBase, StoreCapabilities, check_write, merge_update
from ._batched import at_once, cut
from ._urls import StoreURL, parse_store_url

__all__ = ["AwsSecretsManagerStore"]

#: Calls in flight at once (worker threads, pooled connections): the engine's default window
#: of 16 plus the few batch reads it sends beyond it (``Window.beyond``: 2 at 16), so that
#: 331 names in 17 BatchGetSecretValue calls go out in one round trip.
MAX_CONNECTIONS = 20

T = TypeVar("T")

SCHEME = "aws-sm"
#: AWS allows at most 10 values in one ListSecrets filter.
MAX_NAMES_PER_LIST = 10
#: AWS allows at most 20 ids in one BatchGetSecretValue call.
MAX_NAMES_PER_READ = 20
#: ListSecrets' largest page.
LIST_PAGE_SIZE = 100
#: The largest answer read; a larger one is refused while it streams in (as HTTP stores do).
MAX_ANSWER_BYTES = 16 * 1024 * 1024
#: The characters AWS allows in a secret name, and its longest name.
_VALID_NAME = re.compile(r"[A-Za-z0-9/_+=.@-]{1,512}")
_URL_OPTIONS = frozenset(
    {"region", "prefix", "profile", "endpoint_url", "force_delete_without_recovery"}
)
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9.]{0,80}")
_XML_CODE = re.compile(r"<Code>([A-Za-z][A-Za-z0-9.]{0,80})</Code>")

# Error codes, as AWS and its SDKs classify them.
_AUTH_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignature",
        "IncompleteSignatureException",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "AuthFailure",
        "InvalidAccessKeyId",
    }
)
_FORBIDDEN_CODES = frozenset(
    {"AccessDeniedException", "AccessDenied", "DecryptionFailure", "KMSAccessDeniedException"}
)
_TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServiceError",
        "InternalFailure",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
    }
)
#: The transient codes that say "slow down" (a quota or rate limit), not "failed".
_THROTTLING_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "PriorRequestNotComplete",
    }
)
_NOT_FOUND_CODES = frozenset({"ResourceNotFoundException"})
# Asked of a secret scheduled for deletion; that secret is as good as gone.
_DELETED_CODES = frozenset({"InvalidRequestException"})
_BINARY = "its value is binary (SecretBinary), not a JSON object of keys"
_NOT_JSON = "its value is not JSON, so it has no keys"
_NOT_OBJECT = "its value is JSON but not an object of keys"


# ---------------------------------------------------------------------- logging


class _WithholdBotocoreDebug(logging.Filter):
    """Withholds botocore's DEBUG records that carry request parameters, bodies or signing
    input: they hold secret values (``SecretString``) and session tokens. An application that
    turns on DEBUG logging still sees that a record was logged, never its content. Only these
    records change; no logging configuration does."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            record.msg = "botocore DEBUG record withheld by stacksecrets (may hold secrets)"
            record.args = ()
        return True


def _withhold_botocore_debug() -> None:
    for name in ("botocore.endpoint", "botocore.parsers", "botocore.auth"):
        target = logging.getLogger(name)
        if not any(isinstance(f, _WithholdBotocoreDebug) for f in target.filters):
            target.addFilter(_WithholdBotocoreDebug())


_withhold_botocore_debug()


# ---------------------------------------------------------------------- the store


class AwsSecretsManagerStore(StoreBase):
    """Secrets in AWS Secrets Manager (or a service that speaks its API, such as moto).

    ``region``, ``profile`` and ``endpoint_url`` override the AWS configuration chain;
    ``prefix`` is put before every name. ``force_delete_without_recovery`` makes
    ``delete_secret`` delete at once instead of after AWS's recovery window (30 days).
    """

    def __init__(
        self,
        *,
        region: str | None = None,
        prefix: str = "",
        profile: str | None = None,
        endpoint_url: str | None = None,
        force_delete_without_recovery: bool = False,
        max_connections: int = MAX_CONNECTIONS,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        session: boto3.session.Session | None = None,
    ) -> None:
        if prefix and not _VALID_NAME.fullmatch(prefix):
            raise ConfigurationError(
                f"the AWS secret name prefix {prefix!r} holds characters AWS does not allow "
                "in names (letters, digits and /_+=.@- only)"
            )
        if max_connections < 1:
            raise ConfigurationError("max_connections must be at least 1")
        if endpoint_url is not None:
            _check_endpoint(endpoint_url)
        self._prefix = prefix
        self._profile = profile
        self._force_delete = force_delete_without_recovery
        try:
            self._session = session or boto3.session.Session(
                profile_name=profile, region_name=region
            )
            # botocore reads AWS_DEFAULT_REGION; AWS_REGION (set by Lambda, ECS, and read by
            # the other AWS SDKs) only where nothing else named a region.
            region = self._session.region_name or os.environ.get("AWS_REGION") or None
            self._client_options: dict[str, Any] = {
                "region_name": region,
                "endpoint_url": endpoint_url,
                "max_connections": max_connections,
            }
            self._client = self._new_client(connect_timeout, read_timeout)
        except botocore.exceptions.ProfileNotFound as exc:
            raise ConfigurationError(
                f"the AWS profile {profile or os.environ.get('AWS_PROFILE', '')!r} is not in "
                "the shared config or credentials files"
            ) from exc
        except botocore.exceptions.NoRegionError as exc:
            raise ConfigurationError(
                "no AWS region for the Secrets Manager store: set AWS_REGION (or a profile's "
                "region), or add ?region=... to the aws-sm:// URL"
            ) from exc
        except (botocore.exceptions.BotoCoreError, ValueError) as exc:
            raise ConfigurationError(
                f"cannot set up the AWS Secrets Manager client ({type(exc).__name__})"
            ) from None
        self._region = str(self._client.meta.region_name)
        self._endpoint = _shown_endpoint(str(self._client.meta.endpoint_url))
        self._limiter = anyio.CapacityLimiter(max_connections)
        self._timeouts = (connect_timeout, read_timeout)
        self._short_clients: dict[tuple[float, float], Any] = {}
        self._calls_lock = threading.Lock()
        self._workers = _DaemonWorkers()
        #: API calls sent, by operation (``ListSecrets``, ``BatchGetSecretValue``, ...).
        self.calls: collections.Counter[str] = collections.Counter()

    @classmethod
    def from_url(
        cls, url: StoreURL | str, /, *, environ: Mapping[str, str] | None = None
    ) -> AwsSecretsManagerStore:
        """A store for ``aws-sm://?region=...&prefix=...&profile=...&endpoint_url=...``.

        The rest of the configuration comes from the AWS configuration chain: ``environ``
        (default ``os.environ``) for ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, ``AWS_PROFILE``,
        ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` / ``AWS_ENDPOINT_URL`` and the access keys, and
        the AWS files, which botocore reads itself.
        """
        env = os.environ if environ is None else environ
        parsed = parse_store_url(url) if isinstance(url, str) else url
        where = parsed.redacted
        if parsed.scheme != SCHEME:
            raise ConfigurationError(
                f"not an AWS Secrets Manager store URL: {where!r}; use "
                "aws-sm://?region=REGION&prefix=PREFIX"
            )
        if (
            parsed.username is not None
            or parsed.password is not None
            or parsed.host
            or parsed.port is not None
            or parsed.path.strip("/")
            or parsed.fragment
        ):
            raise ConfigurationError(
                f"the AWS Secrets Manager store URL {where!r} takes options only "
                "(aws-sm://?region=...&prefix=...); put nothing between aws-sm:// and ?"
            )
        try:
            named = urllib.parse.parse_qs(
                parsed.query, keep_blank_values=True, strict_parsing=bool(parsed.query)
            )
        except ValueError:
            named = {}
        unknown = sorted(set(named) - _URL_OPTIONS)
        if any("key" in o.lower() or "token" in o.lower() for o in unknown):
            raise ConfigurationError(
                f"unknown option(s) {', '.join(unknown)} in the store URL {where!r}; known: "
                f"{', '.join(sorted(_URL_OPTIONS))}; credentials come from the AWS "
                "configuration chain (environment, shared files, profiles), never from the URL"
            )
        option = {key: value.strip() for key, value in parsed.options(_URL_OPTIONS).items()}
        force = option.get("force_delete_without_recovery", "false").lower()
        if force not in {"true", "false", "1", "0", "yes", "no"}:
            raise ConfigurationError(
                "force_delete_without_recovery in the aws-sm:// URL must be true or false"
            )
        region = option.get("region") or None
        profile = option.get("profile") or None
        endpoint = option.get("endpoint_url") or None
        session = None
        if env is not os.environ:
            # Another environment than the process's: what botocore would read from the
            # process environment is read from it instead.
            region = region or _env(env, "AWS_REGION") or _env(env, "AWS_DEFAULT_REGION")
            profile = profile or _env(env, "AWS_PROFILE")
            endpoint = (
                endpoint
                or _env(env, "AWS_ENDPOINT_URL_SECRETS_MANAGER")
                or _env(env, "AWS_ENDPOINT_URL")
            )
            session = _session(env, profile, region)
        return cls(
            region=region,
            prefix=option.get("prefix", ""),
            profile=profile,
            endpoint_url=endpoint,
            force_delete_without_recovery=force in {"true", "1", "yes"},
            session=session,
        )

    @property
    def capabilities(self) -> StoreCapabilities:
        return StoreCapabilities(batched_exists=True, max_batch=MAX_NAMES_PER_LIST, writable=True)

    @property
    def max_read_batch(self) -> int:
        return MAX_NAMES_PER_READ

    @property
    def description(self) -> str:
        options = {"region": self._region}
        if self._prefix:
            options["prefix"] = self._prefix
        if self._profile:
            options["profile"] = self._profile
        text = f"{SCHEME}://?" + urllib.parse.urlencode(options, safe="/")
        return f"{text} ({self._endpoint})"

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Worker threads may still hold a client: closing drops its pooled connections only
        # (a call still in flight fails at once instead of waiting out its timeout).
        for client in (self._client, *self._short_clients.values()):
            client.close()
        self._workers.close()

    def _new_client(self, connect_timeout: float, read_timeout: float) -> Any:
        """A Secrets Manager client: no retries of its own (the engine's see every attempt),
        these timeouts, and answers read capped at ``MAX_ANSWER_BYTES``."""
        options = self._client_options
        client = self._session.client(
            "secretsmanager",
            region_name=options["region_name"],
            endpoint_url=options["endpoint_url"],
            config=botocore.config.Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                max_pool_connections=options["max_connections"],
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
            ),
        )
        _cap_answers(client, MAX_ANSWER_BYTES)
        return client

    def _client_within(self, deadline: float) -> Any:
        """The client whose timeouts end by ``deadline`` (an anyio clock time): botocore's
        own timeouts are derived from the operation's deadline, so a call that outlives it
        in its thread ends soon after (one client per second of time left, made once)."""
        left = deadline - anyio.current_time()
        connect, read = self._timeouts
        if not math.isfinite(left) or left >= max(connect, read):
            return self._client
        wanted = (min(connect, max(1.0, math.ceil(left))), min(read, max(1.0, math.ceil(left))))
        client = self._short_clients.get(wanted)
        if client is None:
            client = self._short_clients[wanted] = self._new_client(*wanted)
        return client

    # ------------------------------------------------------------------ reads

    async def secrets_exist(self, names: Sequence[str]) -> frozenset[str]:
        self._check_open()
        wanted = [name for name in dict.fromkeys(names) if self._valid(name)]
        found: set[str] = set()

        async def one_chunk(chunk: list[str]) -> None:
            filters = [{"Key": "name", "Values": [self._aws_name(n) for n in chunk]}]
            for entry in await self._list_all(filters):
                found.add(str(entry.get("Name", "")))

        await at_once(one_chunk, cut(wanted, MAX_NAMES_PER_LIST))
        # AWS matched prefixes, without regard to case: keep exact names only.
        return frozenset(name for name in wanted if self._aws_name(name) in found)

    async def get_secret(self, name: str) -> Secret:
        self._check_open()
        if not self._valid(name):
            raise SecretNotFoundError(name, store=self.description)
        answer = await self._api("GetSecretValue", secret=name, SecretId=self._aws_name(name))
        if answer.get("Name") != self._aws_name(name):
            # A name that looks like a partial ARN can match another secret: not this one.
            raise SecretNotFoundError(name, store=self.description)
        return _secret(name, answer)

    async def get_secrets(self, names: Sequence[str]) -> dict[str, Secret | StoreError]:
        """Each name's secret or its own error, reading up to 20 names per call.

        ``SecretNotFoundError`` for a missing name, ``ForbiddenError`` for a refused one. A
        failure of a whole call (throttling, bad credentials) is raised.
        """
        self._check_open()
        wanted = list(dict.fromkeys(names))
        results: dict[str, Secret | StoreError] = {}
        valid = []
        for name in wanted:
            if self._valid(name):
                valid.append(name)
            else:
                results[name] = SecretNotFoundError(name, store=self.description)

        async def one_chunk(chunk: list[str]) -> None:
            results.update(await self._read_chunk(chunk))

        await at_once(one_chunk, cut(valid, MAX_NAMES_PER_READ))
        return {name: results[name] for name in wanted}

    async def _read_chunk(self, chunk: list[str]) -> dict[str, Secret | StoreError]:
        by_aws_name = {self._aws_name(name): name for name in chunk}
        results: dict[str, Secret | StoreError] = {}
        # Up to 20 ids fit one answer: no NextToken to follow.
        answer = await self._api("BatchGetSecretValue", SecretIdList=list(by_aws_name))
        for entry in _list_of_dicts(answer.get("SecretValues")):
            name = by_aws_name.get(entry.get("Name"))  # type: ignore[arg-type]
            if name is not None:
                results[name] = _secret(name, entry)
        for error in _list_of_dicts(answer.get("Errors")):
            name = by_aws_name.get(error.get("SecretId"))  # type: ignore[arg-type]
            if name is not None and name not in results:
                results[name] = self._entry_error(name, error.get("ErrorCode"))
        for name in chunk:
            if name not in results:
                results[name] = StoreError(
                    f"AWS Secrets Manager {self._endpoint}: BatchGetSecretValue gave no "
                    f"answer for secret {name!r}"
                )
        return results

    def _entry_error(self, name: str, code: object) -> StoreError:
        """One secret's error inside a ``BatchGetSecretValue`` answer."""
        code = code if isinstance(code, str) and _CODE.fullmatch(code) else "unknown error"
        if code in _NOT_FOUND_CODES or code in _DELETED_CODES:
            return SecretNotFoundError(name, store=self.description)
        text = f"AWS Secrets Manager {self._endpoint}: reading secret {name!r} failed ({code})"
        if code in _FORBIDDEN_CODES:
            return ForbiddenError(text)
        if code in _TRANSIENT_CODES:
            return StoreUnavailableError(text, throttled=code in _THROTTLING_CODES)
        return StoreError(text)

    async def list_secrets(self) -> list[str]:
        self._check_open()
        filters = [{"Key": "name", "Values": [self._prefix]}] if self._prefix else []
        names = {str(entry.get("Name", "")) for entry in await self._list_all(filters)}
        return sorted(
            name.removeprefix(self._prefix) for name in names if name.startswith(self._prefix)
        )

    async def _list_all(self, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every entry ListSecrets gives for ``filters``, page after page."""
        entries: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"MaxResults": LIST_PAGE_SIZE}
            if filters:
                params["Filters"] = filters
            if token:
                params["NextToken"] = token
            answer = await self._api("ListSecrets", **params)
            entries.extend(_list_of_dicts(answer.get("SecretList")))
            next_token = answer.get("NextToken")
            if not isinstance(next_token, str) or not next_token or next_token == token:
                return entries
            token = next_token

    # ------------------------------------------------------------------ writes

    async def create_secret(self, name: str, values: Mapping[str, str]) -> None:
        self._check_open()
        new, _ = check_write(name, values)
        self._check_name(name)
        await self._api(
            "CreateSecret",
            secret=name,
            Name=self._aws_name(name),
            SecretString=_secret_string(new),
        )

    async def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        """Read, merge, write (``PutSecretValue``). AWS has no compare-and-set, so two
        concurrent updates of one secret can lose one writer's keys: the last write wins."""
        self._check_open()
        new, removed = check_write(name, values, remove_keys)
        current = await self.get_secret(name)
        if current.unreadable_reason is not None:
            raise StoreError(
                f"secret {name!r} in {self.description} cannot be updated key by key: "
                f"{current.unreadable_reason}"
            )
        merged = merge_update(current.values, new, removed)
        await self._api(
            "PutSecretValue",
            secret=name,
            SecretId=self._aws_name(name),
            SecretString=_secret_string(merged),
        )

    async def delete_secret(self, name: str, *, force_without_recovery: bool | None = None) -> None:
        """Schedule the secret's deletion after AWS's recovery window (30 days), or delete it
        at once when ``force_without_recovery`` (default: the store's option) is true."""
        self._check_open()
        if not self._valid(name):
            raise SecretNotFoundError(name, store=self.description)
        force = self._force_delete if force_without_recovery is None else force_without_recovery
        params: dict[str, Any] = {"SecretId": self._aws_name(name)}
        if force:
            # AWS answers a forced delete of a name that does not exist with success; the
            # contract says not found, so ask first (one DescribeSecret).
            await self._api("DescribeSecret", secret=name, SecretId=self._aws_name(name))
            params["ForceDeleteWithoutRecovery"] = True
        await self._api("DeleteSecret", secret=name, **params)

    # ------------------------------------------------------------------ calls

    def _aws_name(self, name: str) -> str:
        return self._prefix + name

    def _valid(self, name: str) -> bool:
        """Whether AWS could hold a secret of this name (others exist nowhere; asking for
        them could only be misread, e.g. a leading ``!`` negates a ListSecrets filter)."""
        return _VALID_NAME.fullmatch(self._aws_name(name)) is not None

    def _check_name(self, name: str) -> None:
        if not self._valid(name):
            raise ConfigurationError(
                f"{name!r} is not a valid AWS secret name: letters, digits and /_+=.@- only, "
                f"at most {512 - len(self._prefix)} characters with the prefix"
            )

    async def _api(self, operation: str, *, secret: str | None = None, **params: Any) -> Any:
        """One API call in a daemon worker thread; errors mapped to ours."""
        self._check_open()
        client = self._client_within(anyio.current_effective_deadline())
        method: Callable[..., Any] = getattr(client, _snake(operation))

        def call() -> Any:
            with self._calls_lock:
                self.calls[operation] += 1
            return method(**params)

        try:
            async with self._limiter:
                answer = await self._workers.run(call)
        except _AnswerTooLarge:
            raise StoreError(
                f"{self._where(operation)}: the answer is larger than "
                f"{MAX_ANSWER_BYTES // (1024 * 1024)} MiB; refused"
            ) from None
        except botocore.exceptions.ClientError as exc:
            raise self._client_error(operation, exc, secret) from None
        except (
            botocore.exceptions.HTTPClientError,
            botocore.exceptions.ConnectionError,
        ) as exc:
            logger.debug(
                "stacksecrets.aws.request",
                endpoint=self._endpoint,
                operation=operation,
                error=type(exc).__name__,
            )
            raise StoreUnavailableError(
                f"{self._where(operation)} failed: {type(exc).__name__}"
            ) from None
        except (
            botocore.exceptions.NoCredentialsError,
            botocore.exceptions.PartialCredentialsError,
            botocore.exceptions.CredentialRetrievalError,
            botocore.exceptions.TokenRetrievalError,
            botocore.exceptions.SSOError,
        ) as exc:
            raise AuthenticationError(
                f"{self._where(operation)}: no usable AWS credentials ({type(exc).__name__}); "
                "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or log in with "
                "aws sso login"
            ) from None
        except botocore.exceptions.BotoCoreError as exc:
            # Parameter errors can quote the parameters (secret values): no chained cause.
            raise StoreError(f"{self._where(operation)} failed: {type(exc).__name__}") from None
        logger.debug(
            "stacksecrets.aws.request",
            endpoint=self._endpoint,
            operation=operation,
            status=_status(answer),
        )
        return answer

    def _client_error(
        self, operation: str, exc: botocore.exceptions.ClientError, secret: str | None
    ) -> StoreError:
        code = _error_code(exc.response)
        status = _status(exc.response)
        logger.debug(
            "stacksecrets.aws.request",
            endpoint=self._endpoint,
            operation=operation,
            status=status,
            error=code,
        )
        if secret is not None and code in _NOT_FOUND_CODES:
            return SecretNotFoundError(secret, store=self.description)
        if secret is not None and code == "ResourceExistsException":
            return SecretExistsError(secret)
        if secret is not None and operation == "GetSecretValue" and code in _DELETED_CODES:
            return SecretNotFoundError(secret, store=self.description)
        text = f"{self._where(operation)} answered {status} ({code})"
        if code in _AUTH_CODES or status == 401:  # noqa: PLR2004
            return AuthenticationError(f"{text}: the AWS credentials were refused")
        if code in _FORBIDDEN_CODES or status == 403:  # noqa: PLR2004
            return ForbiddenError(text)
        if code in _TRANSIENT_CODES or status == 429 or (status >= 500 and status != 501):  # noqa: PLR2004
            return StoreUnavailableError(
                text,
                retry_after=_retry_after(exc.response),
                throttled=code in _THROTTLING_CODES or status == 429,  # noqa: PLR2004
            )
        if secret is not None and code in _DELETED_CODES:
            return StoreError(f"{text}: is secret {secret!r} scheduled for deletion?")
        return StoreError(text)

    def _where(self, operation: str) -> str:
        return f"AWS Secrets Manager {self._endpoint}: {operation}"


# ---------------------------------------------------------------------- helpers


def _secret(name: str, entry: Mapping[str, Any]) -> Secret:
    """The secret ``name`` from a GetSecretValue / BatchGetSecretValue entry."""
    text = entry.get("SecretString")
    if not isinstance(text, str):
        return Secret(name, {}, unreadable_reason=_BINARY)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return Secret(name, {}, unreadable_reason=_NOT_JSON)
    if not isinstance(data, dict):
        return Secret(name, {}, unreadable_reason=_NOT_OBJECT)
    values: dict[str, str] = {}
    unreadable: set[str] = set()
    for key, value in data.items():
        if isinstance(value, str):
            values[key] = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            # 5432 in the console's JSON editor means the string a config file would hold.
            values[key] = json.dumps(value)
        elif isinstance(value, bool):
            values[key] = "true" if value else "false"
        else:  # null, lists and objects are no single value to substitute
            unreadable.add(key)
    return Secret(name, values, unreadable_keys=unreadable)


def _secret_string(values: Mapping[str, str]) -> str:
    for key, value in values.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigurationError("secret keys and values must be strings")
    return json.dumps(dict(values), ensure_ascii=False)


def _list_of_dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _snake(operation: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def _status(response: Mapping[str, Any]) -> int:
    metadata = response.get("ResponseMetadata")
    status = metadata.get("HTTPStatusCode") if isinstance(metadata, dict) else None
    return status if isinstance(status, int) else 0


def _error_code(response: Mapping[str, Any]) -> str:
    """The AWS error code; never the message or body, which may echo input."""
    error = response.get("Error")
    code = error.get("Code") if isinstance(error, dict) else None
    if isinstance(code, str) and code.isdigit() and isinstance(error, dict):
        # Some servers (moto's IAM checks) answer an XML error to a JSON API: botocore then
        # gives the status as the code and the body as the message. Take the code from it.
        message = error.get("Message")
        match = _XML_CODE.search(message) if isinstance(message, str) else None
        if match:
            return match.group(1)
    if isinstance(code, str) and _CODE.fullmatch(code):
        return code
    return "unknown error"


def _retry_after(response: Mapping[str, Any]) -> float | None:
    """Seconds from a ``Retry-After`` header, if the answer had one (AWS itself sends none;
    proxies and gateways in front of it may)."""
    metadata = response.get("ResponseMetadata")
    headers = metadata.get("HTTPHeaders") if isinstance(metadata, dict) else None
    value = headers.get("retry-after") if isinstance(headers, dict) else None
    if not isinstance(value, str):
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


class _AnswerTooLarge(Exception):  # noqa: N818 - private, mapped to StoreError
    """An answer past ``MAX_ANSWER_BYTES``; raised in botocore's send, caught in ``_api``."""


def _cap_answers(client: Any, limit: int) -> None:
    """Read ``client``'s answers as streams, refusing one past ``limit`` bytes.

    botocore reads a whole answer into memory before parsing it; a server answering an
    endless or huge body would cost that much. A ``before-send`` handler (botocore's hook for
    sending a request itself) sends it on the client's own HTTP session with the body left
    unread, then reads it here, capped.
    """
    session = getattr(getattr(client, "_endpoint", None), "http_session", None)
    if session is None:  # pragma: no cover - a botocore without the session we know
        return

    def send(request: Any, **_: Any) -> Any:
        request.stream_output = True
        response = session.send(request)
        body = bytearray()
        try:
            for chunk in response.raw.stream(64 * 1024):
                body += chunk
                if len(body) > limit:
                    raise _AnswerTooLarge
        finally:
            response.raw.release_conn() if len(body) <= limit else response.raw.close()
        response._content = bytes(body)  # noqa: SLF001 - what AWSResponse.content reads
        return response

    client.meta.events.register_first("before-send.secrets-manager", send)


class _DaemonWorkers:
    """Daemon worker threads that run a store's botocore calls, kept between calls.

    ``await workers.run(call)`` runs ``call()`` on an idle worker (or a new one when none is
    idle) and awaits its outcome without blocking the event loop. A caller cancelled (its
    deadline passed) stops waiting at once; the worker is left to end on botocore's own
    timeout, and, being a daemon, never keeps the process alive at exit (``anyio.to_thread``'s
    workers are joined at exit: a dripping server kept the process running for good).

    Kept rather than started per call: ``Thread.start()`` waits until the new thread runs,
    which, while other workers hold the GIL signing and parsing, held the event loop up to a
    switch interval (5 ms) per call and spread a wave of 17 batch reads over ~30 ms. A worker
    idle for ``IDLE_SECONDS`` ends; ``close()`` ends the idle ones at once.
    """

    IDLE_SECONDS = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._idle = 0
        self._closed = False
        #: Threads started so far (a store reused starts none for calls it made before).
        self.started = 0

    @property
    def idle(self) -> int:
        """Workers waiting for a call."""
        with self._lock:
            return self._idle

    async def run(self, call: Callable[[], T]) -> T:
        token = anyio.lowlevel.current_token()
        done = anyio.Event()
        outcome: list[Any] = []

        def job() -> None:
            try:
                outcome.append((True, call()))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                outcome.append((False, exc))
            with contextlib.suppress(Exception):  # the caller gave up; its loop may be gone
                anyio.from_thread.run_sync(done.set, token=token)

        self._submit(job)
        await done.wait()
        ok, value = outcome[0]
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def _submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._idle:
                # One idle worker is taken for this job; it finds it in the queue.
                self._idle -= 1
                self._jobs.put(job)
                return
            self.started += 1
        threading.Thread(
            target=self._work, args=(job,), name="stacksecrets-aws", daemon=True
        ).start()

    def _work(self, job: Callable[[], None] | None) -> None:
        while job is not None:
            job()
            with self._lock:
                if self._closed:
                    return
                self._idle += 1
            try:
                job = self._jobs.get(timeout=self.IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    # A job handed over just as the wait ended is still this worker's.
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        self._idle -= 1
                        return

    def close(self) -> None:
        """Idle workers end now; busy ones when their call returns. Later jobs still run."""
        with self._lock:
            self._closed, idle, self._idle = True, self._idle, 0
        for _ in range(idle):
            self._jobs.put(None)


def _env(environ: Mapping[str, str], name: str) -> str | None:
    return environ.get(name, "").strip() or None


def _session(
    environ: Mapping[str, str], profile: str | None, region: str | None
) -> boto3.session.Session:
    """A boto3 session whose credentials come from ``environ``'s access keys (when it has
    them), else from the profile and the AWS files."""
    key, secret = _env(environ, "AWS_ACCESS_KEY_ID"), _env(environ, "AWS_SECRET_ACCESS_KEY")
    try:
        if key and secret and not profile:
            return boto3.session.Session(
                aws_access_key_id=key,
                aws_secret_access_key=secret,
                aws_session_token=_env(environ, "AWS_SESSION_TOKEN"),
                region_name=region,
            )
        return boto3.session.Session(profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound as exc:
        raise ConfigurationError(
            f"the AWS profile {profile!r} is not in the shared config or credentials files"
        ) from exc


def _check_endpoint(url: str) -> None:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise ConfigurationError(
            f"endpoint_url must be http(s)://host[:port], got {_shown_endpoint(url)!r}"
        )
    if parsed.username or parsed.password:
        raise ConfigurationError("endpoint_url must not hold credentials")


def _shown_endpoint(url: str) -> str:
    """``scheme://host[:port]/path`` of an endpoint: no userinfo, query or fragment."""
    parsed = urllib.parse.urlsplit(url)
    host = parsed.netloc.rsplit("@", 1)[-1]
    return f"{parsed.scheme}://{host}{parsed.path.rstrip('/')}"
