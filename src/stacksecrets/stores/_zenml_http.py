"""One logged-in HTTP session with a ZenML server's REST API (``/api/v1``).

Shared by the secret store (``_zenml.py``) and the stack source (``_zenml_stacks.py``): one
pooled ``httpx.AsyncClient``, a login at the first call (once, however many calls start
together), one fresh login when the server refuses the token (401), ZenML's pages read to the
end, and every failure mapped to our errors:

401 (after the fresh login) and 403 -> ``ForbiddenError``; a refused login ->
``AuthenticationError``; 408/429/502/503/504 and network failures -> ``StoreUnavailableError``
with the server's ``Retry-After`` hint (``throttled`` for 429, and 503 with ``Retry-After``);
400 and 422 (the server refused the input: a name too long, say) -> ``ConfigurationError``
with the server's reason, its echo of the input removed; anything else (404 and 500 too) ->
``StoreError``. Messages name the host, method and path; never a token, password, key or a
response body (nor, chained, an exception holding one).

A hostile or broken server cannot make a call last or grow without bound: an answer is read
as a stream and refused past ``MAX_BODY_BYTES`` (``_http.read_capped``), and a listing past
``MAX_PAGES`` pages. What is general HTTP (the send path, capped reads, ``Retry-After``) lives
in ``_http.py``; here only ZenML's conventions: its login, its session, its error bodies and
its query conventions (``oneof:`` filters, names in chunks that fit a URL).
"""

from __future__ import annotations

import base64
import binascii
import http.cookiejar
import json
import os
import re
import ssl
import time
import urllib.parse
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import anyio
import attrs
import httpx

from .._errors import (
    AuthenticationError,
    ClosedError,
    ConfigurationError,
    ForbiddenError,
    StoreError,
    StoreUnavailableError,
)
from .._logging import logger
from ._http import (
    MAX_BODY_BYTES,
    TRANSIENT_STATUSES,
    http_date,
    is_loopback,
    json_object,
    send_logged,
    unavailable,
)
from ._urls import parse_store_url, redact

__all__ = [
    "API",
    "MAX_BODY_BYTES",
    "STAMP_RESOLUTION_SECONDS",
    "STAMP_SETTLE_SECONDS",
    "Credentials",
    "ZenMLSession",
    "json_object",
]

API = "/api/v1"
#: ZenML's largest page.
PAGE_SIZE = 10_000
#: How many names one ``oneof:`` filter carries at most.
MAX_NAMES_PER_CALL = 50
#: Budget for one URL-encoded ``oneof:`` filter value; keeps URLs well under common limits.
MAX_FILTER_CHARS = 4000
#: The most pages one listing reads (a million items in ZenML's largest pages).
MAX_PAGES = 100
#: How many times a paged listing is read when the list changed between its pages.
LISTING_PASSES = 3
#: ``updated`` is taken to tell changes apart to the second only (MySQL's DATETIME keeps whole
#: seconds; SQLite keeps microseconds).
STAMP_RESOLUTION_SECONDS = 1.0
#: ZenML commits a secret's new ``updated`` before it writes the new values
#: (``SqlZenStore.update_secret``; with an external secrets backend, one more round trip): a read
#: in between sees the new stamp with the old keys. So an answer vouches for a stamp only when
#: the server's clock (its ``Date`` header) was this much past it, plus the resolution.
STAMP_SETTLE_SECONDS = 5.0
#: ZenML's ``STR_FIELD_MAX_LENGTH``: the longest secret (or other entity) name it stores.
MAX_NAME_LENGTH = 255

_ERROR_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,60}")
# One pydantic error as FastAPI's 422 text shows it: {'type': ..., 'loc': (...), 'msg': ...}.
_VALIDATION_ITEM = re.compile(
    r"'type': '(?P<type>[a-z_]{1,60})', 'loc': \((?P<loc>[^()]{0,400})\), "
    r"'msg': (?P<q>['\"])(?P<msg>(?:\\.|(?!(?P=q)).){0,300})(?P=q)"
)
_LOC_PART = re.compile(r"'((?:\\.|[^'\\]){1,100})'|(\d{1,6})")
_PLAIN_MESSAGE = re.compile(r"[A-Za-z0-9 ,.;:()_-]{1,200}")


@attrs.frozen
class Credentials:
    """How to log in: an API key (``ZENKEY_...``), or a user name and password; never shown.

    ``token`` is a bearer token (``ZENML_STORE_API_TOKEN``, or the token ``zenml login`` keeps):
    used first, and, with no key or password beside it, the only credential (it cannot log in
    again: a refused token is an ``AuthenticationError`` saying how to log in again).
    ``anonymous`` is a server that needs no login (``zenml login --local``: ``NO_AUTH``).
    """

    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    api_key: str | None = attrs.field(default=None, repr=False)
    token: str | None = attrs.field(default=None, repr=False)
    anonymous: bool = False

    @property
    def can_login(self) -> bool:
        return self.api_key is not None or (self.username is not None and self.password is not None)

    def login_form(self) -> tuple[dict[str, str], str]:
        """The form ``POST /login`` takes, and the grant's name for logs."""
        if self.api_key is not None:
            return {"grant_type": "zenml-api-key", "password": self.api_key}, "api_key"
        return {"username": self.username or "", "password": self.password or ""}, "password"

    def who(self) -> str:
        if self.api_key is not None:
            return "the API key"
        if self.username is not None:
            return f"user {self.username!r}"
        return "the API token" if self.token is not None else "no credentials"


class ZenMLSession:
    """Authenticated requests to one ZenML server (``http(s)://host[:port][/prefix]``).

    ``token`` starts the session with a bearer token (no login until the server refuses it).
    ``transport`` sends the requests through another httpx transport (a recording or mocking
    one in tests, a proxy set-up); ``verify`` and ``max_connections`` are then the transport's.
    """

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        *,
        max_connections: int = 16,
        timeout: float = 30.0,
        verify: bool | str | ssl.SSLContext = True,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        verify_source: str = "verify=False",
    ) -> None:
        if not url.strip().lower().startswith(("http://", "https://")):
            raise ConfigurationError(
                "ZenML server URL must be http://host[:port] or https://host[:port], got "
                f"{redact(url)!r}"
            )
        parsed = parse_store_url(url)
        if not parsed.host:
            raise ConfigurationError(
                "ZenML server URL must be http://host[:port] or https://host[:port], got "
                f"{parsed.redacted!r}"
            )
        if parsed.username is not None or parsed.query or parsed.fragment:
            raise ConfigurationError(
                "give ZenML credentials as arguments, not inside the server URL "
                f"{parsed.redacted!r}"
            )
        if (
            credentials.api_key is None
            and credentials.username is None
            and credentials.token is None
            and not credentials.anonymous
        ):
            raise ConfigurationError(
                f"no credentials for the ZenML server {parsed.netloc}: give api_key, or "
                "username and password"
            )
        if (
            credentials.username is not None
            and credentials.api_key is None
            and (credentials.password is None)
        ):
            raise ConfigurationError(
                f"no password for user {credentials.username!r} on the ZenML server {parsed.netloc}"
            )
        if max_connections < 1:
            raise ConfigurationError("max_connections must be at least 1")
        self.scheme = parsed.scheme
        #: ``host[:port]``, safe to show.
        self.host = parsed.netloc
        self.path = parsed.path.rstrip("/")
        self.credentials = credentials
        self._warn_if_insecure(parsed.host, verify, verify_source)
        self._token = token if token is not None else credentials.token
        self._token_generation = 0
        self._login_lock = anyio.Lock()
        self._closed = False
        #: HTTP requests sent, logins included.
        self.http_calls = 0
        #: When (``time.monotonic()``) the server last answered "slow down" (None: never).
        self.throttled_at: float | None = None
        self._client = httpx.AsyncClient(
            base_url=f"{self.scheme}://{self.host}{self.path}",
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"Accept": "application/json"},
            verify=verify if _may_use_tls(self.scheme) else False,
            transport=transport,
            follow_redirects=False,
            # The server also sets its token as a cookie, which it prefers to the header; keep
            # none, so the bearer token this session manages is the only credential sent.
            cookies=http.cookiejar.CookieJar(
                http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
            ),
        )

    def _warn_if_insecure(
        self, host: str, verify: bool | str | ssl.SSLContext, verify_source: str
    ) -> None:
        """One warning event per session (so per store) when what it sends can be read on the
        way: TLS verification off, or credentials over plain HTTP to another machine."""
        if self.scheme == "https" and verify is False:
            logger.warning(
                "stacksecrets.zenml.tls_verification_off",
                host=self.host,
                setting=verify_source,
                hint="the server's certificate is not checked: anyone on the path can read "
                "the credentials and the secrets",
            )
        elif self.scheme == "http" and not is_loopback(host) and not self.credentials.anonymous:
            logger.warning(
                "stacksecrets.zenml.plain_http",
                host=self.host,
                hint="credentials and secrets travel unencrypted to another machine: use "
                "zenml+https://",
            )

    def __repr__(self) -> str:
        return f"<ZenMLSession {self.scheme}://{self.host}{self.path}>"

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._token = None
        await self._client.aclose()

    def where(self, method: str, path: str) -> str:
        return f"ZenML server {self.host}: {method} {API}{path}"

    # ------------------------------------------------------------------ requests

    async def list_all(self, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every item of a paginated list, in ZenML's largest pages."""
        items, _ = await self.list_all_dated(path, params)
        return items

    async def list_all_dated(
        self, path: str, params: Mapping[str, str]
    ) -> tuple[list[dict[str, Any]], datetime | None]:
        """``list_all``, and the server's time (its ``Date`` header) at the last page.

        Pages are offsets into the server's list, so an item created or deleted by someone
        else between two pages shifts the rest across a page boundary and the listing can miss
        one that existed all along. When the server's ``total`` moved between pages, the list
        is read again (up to ``LISTING_PASSES`` times) and the passes merged by id: an item
        deleted meanwhile may be in the answer; one that existed throughout is not left out
        unless the list changed under every pass. The time is the earliest pass's (a stamp
        is vouched for by the oldest answer that may hold it)."""
        merged: dict[object, dict[str, Any]] = {}
        answered: list[datetime | None] = []
        for _ in range(LISTING_PASSES):
            items, answered_at, steady = await self._one_listing(path, params)
            merged.update((item.get("id", len(merged)), item) for item in items)
            answered.append(answered_at)
            if steady:
                break
        dates = [date for date in answered if date is not None]
        return list(merged.values()), min(dates) if len(dates) == len(answered) else None

    async def _one_listing(
        self, path: str, params: Mapping[str, str]
    ) -> tuple[list[dict[str, Any]], datetime | None, bool]:
        """One pass over the pages: the items, the last page's time, and whether the server's
        ``total`` stayed the same from the first page to the last."""
        items: list[dict[str, Any]] = []
        totals: set[object] = set()
        answered_at: datetime | None = None
        page = 1
        while True:
            if page > MAX_PAGES:
                raise StoreError(
                    f"{self.where('GET', path)}: the listing goes on past {MAX_PAGES} pages of "
                    f"{PAGE_SIZE}; stopped reading it"
                )
            query = {**params, "page": str(page), "size": str(PAGE_SIZE)}
            # A page past the end is refused (400): the list shrank since the last page.
            allow = (httpx.codes.BAD_REQUEST,) if page > 1 else ()
            response = await self.request("GET", path, params=query, allow=allow)
            if response.status_code == httpx.codes.BAD_REQUEST:
                return items, answered_at, False
            answered_at = http_date(response.headers.get("Date"))
            data = json_object(response, self.where("GET", path))
            page_items = data.get("items")
            total_pages = data.get("total_pages")
            if not isinstance(page_items, list) or not isinstance(total_pages, int):
                raise StoreError(f"{self.where('GET', path)}: the answer is not a page")
            totals.add(data.get("total"))
            items.extend(item for item in page_items if isinstance(item, dict))
            if page >= total_pages or not page_items:
                return items, answered_at, len(totals) == 1
            page += 1

    @property
    def token_subject(self) -> str | None:
        """The ``sub`` claim (ZenML: the user id) of the current token, read without checking
        it (it only names a cache scope; the server checks the token on every call)."""
        return _token_subject(self._token)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        allow: Collection[int] = (),
    ) -> httpx.Response:
        """Send an authenticated request; log in again once if the token was refused.

        A success, or a status in ``allow`` (the caller maps it), is returned; any other
        status raises our error for it.
        """
        if self._closed:
            raise ClosedError(f"the session with the ZenML server {self.host} is closed")
        generation = await self._ensure_token()
        response = await self._send(method, path, params=params, json_body=json_body)
        if response.status_code == httpx.codes.UNAUTHORIZED:
            await self._relogin(generation)
            response = await self._send(method, path, params=params, json_body=json_body)
        if response.is_success or response.status_code in allow:
            return response
        error = self._status_error(method, path, response)
        if isinstance(error, StoreUnavailableError) and error.throttled:
            self.throttled_at = time.monotonic()
        raise error

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        headers = {}
        if auth and self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        self.http_calls += 1
        started = time.perf_counter()
        request = self._client.build_request(
            method, f"{API}{path}", params=params, json=json_body, data=data, headers=headers
        )
        return await send_logged(
            self._client,
            request,
            where=self.where(method, path),
            event="stacksecrets.zenml.request",
            host=self.host,
            path=f"{API}{path}",
            started=started,
        )

    # ------------------------------------------------------------------ login

    async def ensure_login(self) -> None:
        """Log in now unless a token is held (the user it names scopes a cache)."""
        if self._closed:
            raise ClosedError(f"the session with the ZenML server {self.host} is closed")
        await self._ensure_token()

    async def _ensure_token(self) -> int:
        """Log in unless a token is held; concurrent first calls log in once."""
        if self._token is None and not self.credentials.anonymous:
            async with self._login_lock:
                if self._token is None:
                    await self._login()
        return self._token_generation

    async def _relogin(self, refused_generation: int) -> None:
        """Log in again, unless another task already replaced the refused token."""
        async with self._login_lock:
            if self._token_generation == refused_generation:
                await self._login()

    async def _login(self) -> None:
        if not self.credentials.can_login:
            self._token = None
            again = f"log in again: zenml login {self.scheme}://{self.host}{self.path}"
            if self.credentials.token is None:
                raise AuthenticationError(
                    f"the ZenML server {self.host} needs a login; {again}, or set "
                    "ZENML_STORE_API_KEY"
                )
            raise AuthenticationError(
                f"the ZenML server {self.host} refused the API token (expired or revoked); {again}"
            )
        form, grant = self.credentials.login_form()
        self._token = None
        response = await self._send("POST", "/login", data=form, auth=False)
        if response.status_code in {httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN}:
            raise AuthenticationError(
                f"the ZenML server {self.host} refused the login of {self.credentials.who()} "
                f"({_error_type(response) or response.status_code})"
            )
        if not response.is_success:
            raise self._status_error("POST", "/login", response)
        token = json_object(response, self.where("POST", "/login")).get("access_token")
        if not isinstance(token, str) or not token:
            raise StoreError(f"{self.where('POST', '/login')}: the answer holds no access token")
        self._token = token
        self._token_generation += 1
        logger.debug("stacksecrets.zenml.login", host=self.host, grant=grant)

    def _status_error(
        self, method: str, path: str, response: httpx.Response
    ) -> StoreError | ConfigurationError:
        status = response.status_code
        kind = _error_type(response)
        if status in {httpx.codes.BAD_REQUEST, httpx.codes.UNPROCESSABLE_ENTITY}:
            reason = invalid_input_reason(response)
            return ConfigurationError(
                f"{self.where(method, path)} refused the request as invalid ({status})"
                + (f": {reason}" if reason else f" ({kind})" if kind else "")
            )
        text = f"{self.where(method, path)} answered {status}" + (f" ({kind})" if kind else "")
        if status in {httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN}:
            return ForbiddenError(text)
        if status in TRANSIENT_STATUSES:
            return unavailable(text, response)
        return StoreError(text)


# ---------------------------------------------------------------------- ZenML's conventions


def oneof(names: Sequence[str]) -> str:
    """A ``name=oneof:[...]`` (or ``id=``) filter value."""
    # ZenML parses the value after ``oneof:`` with json.loads; an empty list would match all.
    if not names:
        raise ValueError("an empty oneof: filter matches everything")
    return "oneof:" + json.dumps(list(names))


def chunks(names: Sequence[str]) -> Iterator[list[str]]:
    """Names in groups of at most ``MAX_NAMES_PER_CALL`` whose ``oneof:`` filter fits the URL
    budget: one group when the caller already cut them to size and they are not long."""
    chunk: list[str] = []
    size = len("oneof:[]")
    for name in names:
        cost = len(urllib.parse.quote(json.dumps(name), safe="")) + 6  # ", " encoded
        if chunk and (len(chunk) >= MAX_NAMES_PER_CALL or size + cost > MAX_FILTER_CHARS):
            yield chunk
            chunk, size = [], len("oneof:[]")
        chunk.append(name)
        size += cost
    if chunk:
        yield chunk


def name_of(item: Mapping[str, Any]) -> str:
    name = item.get("name")
    return name if isinstance(name, str) else ""


def uuid_of(value: object, host: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        pass
    raise StoreError(f"the ZenML server {host} answered an id that is not a UUID")


def invalid_input_reason(response: httpx.Response) -> str:
    """What a 400/422 answer says was wrong, without the input it echoes.

    ZenML answers ``["ValueError", "1 validation error:\\n  {'type': 'string_too_long', 'loc':
    ('body', 'name'), 'msg': '...', 'input': '<the input>', ...}"]`` (or the same under
    ``detail``). Kept: each error's field path and type, and its message when the message is
    plain words that do not hold the input; never the ``input`` itself.
    """
    try:
        data = response.json()
    except ValueError:
        return ""
    if isinstance(data, dict):
        data = data.get("detail")
    if not isinstance(data, list) or len(data) < 2 or not isinstance(data[1], str):  # noqa: PLR2004
        return ""
    reasons: list[str] = []
    for match in _VALIDATION_ITEM.finditer(data[1]):
        loc = ".".join(quoted or number for quoted, number in _LOC_PART.findall(match.group("loc")))
        shown = "".join(c if c.isprintable() else "?" for c in loc)
        message = match.group("msg")
        rest = data[1][match.end() : match.end() + 2000]
        echoed = re.match(r", 'input': (['\"])((?:\\.|(?!\1).)*)\1", rest)
        if _PLAIN_MESSAGE.fullmatch(message) and not (
            echoed and len(echoed.group(2)) >= 3 and echoed.group(2) in message  # noqa: PLR2004
        ):
            reasons.append(f"{shown}: {message} ({match.group('type')})")
        else:
            reasons.append(f"{shown}: {match.group('type')}")
        if len(reasons) >= 5:  # noqa: PLR2004
            break
    return "; ".join(reasons)


def _error_type(response: httpx.Response) -> str | None:
    """ZenML's error class name (``detail[0]``); the rest of the body may echo input."""
    try:
        data = response.json()
    except ValueError:
        return None
    detail = data.get("detail") if isinstance(data, dict) else None
    if (
        isinstance(detail, list)
        and detail
        and isinstance(detail[0], str)
        and _ERROR_TYPE.fullmatch(detail[0])
    ):
        return detail[0]
    return None


def _may_use_tls(scheme: str) -> bool:
    """Whether a session with a ``scheme`` server may open a TLS connection: always over
    https; over plain http only through a proxy from the environment (httpx's ``trust_env``).
    Otherwise no certificate is ever checked, and the client is made without loading the CA
    bundle (tens of milliseconds of start-up)."""
    if scheme != "http":
        return True
    return any(name.lower() in {"http_proxy", "https_proxy", "all_proxy"} for name in os.environ)


def _token_subject(token: str | None) -> str | None:
    if token is None:
        return None
    parts = token.split(".")
    if len(parts) != 3:  # noqa: PLR2004 - header.claims.signature
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) and subject else None
