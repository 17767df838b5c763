"""A ZenML server as a secret store (``zenml+http://host:port``, ``zenml+https://host``).

Talks to the server's REST API (``/api/v1``) with one pooled ``httpx.AsyncClient``. Where ZenML
itself is loose, this store is exact:

- Names are matched exactly: ``name=equals:NAME`` and ``name=oneof:[...]`` filters, and the
  answer is compared name by name again here. ZenML's validation matches by substring, so
  ``{{aws-pr.k}}`` passes when only ``aws-prod`` exists, and more than 20 partial matches hide
  an exact one; neither happens here.
- Existence is answered from list calls only (no value is read), many names per call. The ids
  they return serve one read each within ``ID_MEMO_SECONDS``, so a key-level validation costs
  one call per found secret after the existence pass, where ZenML spends two.
- A secret is found as ZenML resolves it at run time: a public secret before a private one.
- ``null`` values (the caller may see the key but not the value) become
  ``Secret.unreadable_keys``, never a value.
- Names and filters travel only as query parameters and JSON bodies; URL paths carry only ids
  that parsed as UUIDs, so no name can change which endpoint is hit.

Errors: 401 after one fresh login, and 403 -> ``ForbiddenError``; 404 ->
``SecretNotFoundError``; 408/429/502/503/504 and network failures -> ``StoreUnavailableError``
with the server's ``Retry-After`` hint; anything else (500 too) -> ``StoreError``. Messages name
the host, method and path; never a token, password, key or a response body.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import http.cookiejar
import json
import logging
import math
import os
import re
import time
import urllib.parse
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import anyio
import httpx

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
from .._metacache import SecretStamp
from .._secret import Secret
from .._stack import Component, Stack
from ._base import StoreBase, StoreCapabilities

__all__ = ["ZenMLStore"]

API = "/api/v1"
#: How many names one ``oneof:`` existence call carries at most.
MAX_NAMES_PER_CALL = 50
#: Budget for one URL-encoded ``oneof:`` filter value; keeps URLs well under common limits.
MAX_FILTER_CHARS = 4000
#: ZenML's largest page.
PAGE_SIZE = 10_000
#: How long an id seen in an existence answer may stand in for a fresh exact-name look-up.
ID_MEMO_SECONDS = 60.0
#: ``updated`` is taken to tell changes apart to the second only (MySQL's DATETIME keeps whole
#: seconds; SQLite keeps microseconds).
STAMP_RESOLUTION_SECONDS = 1.0
#: ZenML commits a secret's new ``updated`` before it writes the new values
#: (``SqlZenStore.update_secret``; with an external secrets backend, one more round trip): a read
#: in between sees the new stamp with the old keys. So an answer vouches for a stamp only when
#: the server's clock (its ``Date`` header) was this much past it, plus the resolution.
STAMP_SETTLE_SECONDS = 5.0

# As ZenML's own client retries them; a 500 is a bug on the server, not worth asking again.
_TRANSIENT_STATUSES = frozenset({408, 429, 502, 503, 504})
_URL_OPTIONS = frozenset({"username", "password", "api_key", "verify_ssl"})
_SHOWN_STACKS = 20
_ERROR_TYPE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,60}")
_SET_COOKIE = re.compile(r"""(b['"]set-cookie['"], )b(['"])(?:\\.|(?!\2).)*\2""", re.IGNORECASE)


class _MaskCookies(logging.Filter):
    """Masks cookie values in httpcore's DEBUG records of response headers.

    httpcore logs every response's headers at DEBUG, and ZenML's login answer sets the bearer
    token as a cookie: an application that turns on DEBUG logging would write the token out.
    This filter changes only those records, not any logging configuration.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "set-cookie" in message.lower():
            record.msg, record.args = _SET_COOKIE.sub(r"\1b'**********'", message), ()
        return True


def _mask_cookies_in_httpcore_logs() -> None:
    for name in ("httpcore.http11", "httpcore.http2"):
        target = logging.getLogger(name)
        if not any(isinstance(f, _MaskCookies) for f in target.filters):
            target.addFilter(_MaskCookies())


_mask_cookies_in_httpcore_logs()


class ZenMLStore(StoreBase):
    """Secrets (and stacks) on a ZenML server, through its REST API.

    Give either ``api_key`` (``ZENKEY_...``, a service account's key) or ``username`` and
    ``password``. The store logs in at its first call, once even when many calls start
    together, and logs in again once when the server says the token is no longer valid.
    """

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        max_connections: int = 16,
        timeout: float = 30.0,
        verify: bool | str = True,
    ) -> None:
        parsed = urllib.parse.urlsplit(url.strip())
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise ConfigurationError(
                f"ZenML server URL must be http://host[:port] or https://host[:port], got "
                f"{_redacted_url(url)!r}"
            )
        if parsed.username or parsed.password or parsed.query or parsed.fragment:
            raise ConfigurationError(
                "give ZenML credentials as arguments, not inside the server URL "
                f"{_redacted_url(url)!r}"
            )
        if api_key is None and username is None:
            raise ConfigurationError(
                f"no credentials for the ZenML server {_host(parsed)}: give api_key, or "
                "username and password"
            )
        if api_key is None and password is None:
            raise ConfigurationError(
                f"no password for user {username!r} on the ZenML server {_host(parsed)}"
            )
        if max_connections < 1:
            raise ConfigurationError("max_connections must be at least 1")
        self._scheme = parsed.scheme
        self._host = _host(parsed)
        self._path = parsed.path.rstrip("/")
        self._base_url = f"{parsed.scheme}://{self._host}{self._path}"
        self._username = username
        self._password = password
        self._api_key = api_key
        self._token: str | None = None
        self._token_generation = 0
        self._login_lock = anyio.Lock()
        #: name -> (id, when): ids from the last existence answers, each used at most once.
        self._recent_ids: dict[str, tuple[uuid.UUID, float]] = {}
        #: HTTP requests sent, logins included.
        self.http_calls = 0
        self._client = httpx.AsyncClient(
            base_url=self._base_url,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"Accept": "application/json"},
            verify=verify,
            follow_redirects=False,
            # The server also sets its token as a cookie, which it prefers to the header; keep
            # none, so the bearer token this store manages is the only credential sent.
            cookies=http.cookiejar.CookieJar(
                http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
            ),
        )

    # ------------------------------------------------------------------ configuration

    @classmethod
    def from_url(cls, url: str, *, environ: Mapping[str, str] | None = None) -> ZenMLStore:
        """A store for ``zenml+http://...`` / ``zenml+https://...`` (see ``docs/zenml.md``).

        Credentials come from the URL (``user:password@host``, or the query options
        ``username``, ``password``, ``api_key``), else from ZenML's own variables
        ``ZENML_STORE_API_KEY``, or ``ZENML_STORE_USERNAME`` and ``ZENML_STORE_PASSWORD``. A
        URL without a host (``zenml+https://``, ``zenml://``) means the server in
        ``ZENML_STORE_URL``. ``verify_ssl=false`` (or a CA bundle path), else
        ``ZENML_STORE_VERIFY_SSL``, controls TLS verification.
        """
        env = os.environ if environ is None else environ
        scheme, sep, _ = url.partition("://")
        scheme = scheme.lower()
        if not sep or scheme not in {"zenml", "zenml+http", "zenml+https"}:
            raise ConfigurationError(
                f"not a ZenML store URL: {_redacted_url(url)!r}; use zenml+https://host or "
                "zenml+http://host:port"
            )
        parsed = urllib.parse.urlsplit(url.strip())
        try:
            options = urllib.parse.parse_qs(
                parsed.query, keep_blank_values=True, strict_parsing=bool(parsed.query)
            )
        except ValueError as exc:
            raise ConfigurationError(
                f"cannot read the options of the ZenML store URL {_redacted_url(url)!r}"
            ) from exc
        unknown = sorted(set(options) - _URL_OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {', '.join(unknown)} in the ZenML store URL "
                f"{_redacted_url(url)!r}; known: {', '.join(sorted(_URL_OPTIONS))}"
            )
        option = {key: values[-1] for key, values in options.items()}

        if parsed.hostname:
            if scheme == "zenml":
                raise ConfigurationError(
                    f"say which protocol the ZenML server at {_redacted_url(url)!r} speaks: "
                    "zenml+https://host or zenml+http://host:port"
                )
            try:
                port = parsed.port
            except ValueError as exc:
                raise ConfigurationError(
                    f"bad port in the ZenML store URL {_redacted_url(url)!r}"
                ) from exc
            host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
            netloc = host if port is None else f"{host}:{port}"
            server = f"{scheme.removeprefix('zenml+')}://{netloc}{parsed.path}"
        else:
            server = env.get("ZENML_STORE_URL", "").strip()
            if not server.startswith(("http://", "https://")):
                raise ConfigurationError(
                    f"the ZenML store URL {_redacted_url(url)!r} names no server, and "
                    "ZENML_STORE_URL does not hold an http(s):// server URL; set one of them"
                )

        url_user = _unquote(parsed.username) or option.get("username") or None
        url_password = (
            _unquote(parsed.password) if parsed.password is not None else option.get("password")
        )
        api_key = option.get("api_key") or None
        username: str | None = None
        password: str | None = None
        if api_key is None and url_user is not None:
            username = url_user
            password = url_password if url_password is not None else env.get("ZENML_STORE_PASSWORD")
        elif api_key is None:
            api_key = env.get("ZENML_STORE_API_KEY") or None
            if api_key is None:
                username = env.get("ZENML_STORE_USERNAME") or None
                password = env.get("ZENML_STORE_PASSWORD")
        where = _redacted_url(url)
        if api_key is None and username is None:
            raise ConfigurationError(
                f"no credentials for the ZenML store {where!r}: set ZENML_STORE_API_KEY, or "
                "ZENML_STORE_USERNAME and ZENML_STORE_PASSWORD (or put user:password@ or "
                "?api_key=... in the URL)"
            )
        if api_key is None and password is None:
            raise ConfigurationError(
                f"no password for user {username!r} of the ZenML store {where!r}: set "
                "ZENML_STORE_PASSWORD (or put it in the URL)"
            )
        verify = _verify_option(option.get("verify_ssl", env.get("ZENML_STORE_VERIFY_SSL")))
        return cls(server, username=username, password=password, api_key=api_key, verify=verify)

    @property
    def capabilities(self) -> StoreCapabilities:
        return StoreCapabilities(batched_exists=True, max_batch=MAX_NAMES_PER_CALL, writable=True)

    @property
    def description(self) -> str:
        return f"zenml+{self._scheme}://{self._host}{self._path}"

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._token = None
        await self._client.aclose()

    # ------------------------------------------------------------------ secrets

    async def secrets_exist(self, names: Sequence[str]) -> frozenset[str]:
        self._check_open()
        wanted = list(dict.fromkeys(names))
        found: set[str] = set()

        self._forget_stale_ids()

        async def one_chunk(chunk: list[str]) -> None:
            items = await self._list_all("/secrets", {"name": _oneof(chunk)})
            self._remember_ids(items)
            found.update(_name(item) for item in items)

        chunks = list(_chunks(wanted))
        if len(chunks) == 1:
            await one_chunk(chunks[0])
        elif chunks:
            async with anyio.create_task_group() as group:
                for chunk in chunks:
                    group.start_soon(one_chunk, chunk)
        # The server's comparison may fold case (MySQL); ours does not.
        return frozenset(name for name in wanted if name in found)

    async def get_secret(self, name: str) -> Secret:
        self._check_open()
        remembered = self._recent_ids.pop(name, None)
        if remembered is not None and time.monotonic() - remembered[1] < ID_MEMO_SECONDS:
            try:
                return await self._read_secret(name, remembered[0])
            except SecretNotFoundError:
                pass  # deleted or renamed since the existence call: look it up afresh
            except StoreUnavailableError:
                # Not used up: the retry of a read that failed on the way costs one call too.
                self._recent_ids.setdefault(name, remembered)
                raise
        return await self._read_secret(name, await self._find_secret_id(name))

    async def _read_secret(self, name: str, secret_id: uuid.UUID) -> Secret:
        response = await self._request("GET", f"/secrets/{secret_id}", not_found=name)
        item = _json_object(response, self._where("GET", f"/secrets/{secret_id}"))
        if _name(item) != name:
            raise SecretNotFoundError(name, store=self.description)
        if item.get("permission_denied") is True:
            raise ForbiddenError(f"the ZenML server {self._host} refuses to show secret {name!r}")
        body = item.get("body")
        raw_values = body.get("values") if isinstance(body, dict) else None
        if not isinstance(raw_values, dict):
            raise StoreError(
                f"the ZenML server {self._host} answered GET {API}/secrets/{secret_id} "
                "without secret values"
            )
        values: dict[str, str] = {}
        unreadable: set[str] = set()
        for key, value in raw_values.items():
            if isinstance(value, str):
                values[str(key)] = value
            else:
                unreadable.add(str(key))
        # attrs types the frozenset converter as Iterable[_T_co]; the value is a set of str.
        return Secret(name, values, unreadable_keys=unreadable)

    async def list_secrets(self) -> list[str]:
        self._check_open()
        items = await self._list_all("/secrets", {})
        return sorted({_name(item) for item in items})

    async def create_secret(self, name: str, values: Mapping[str, str]) -> None:
        self._check_open()
        self._recent_ids.pop(name, None)  # a new public secret outranks a private one
        body = {"name": name, "private": False, "values": dict(values)}
        await self._request("POST", "/secrets", json_body=body, exists=name)

    async def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        secret_id = await self._find_secret_id(name)
        # ZenML's patch semantics: a key with a null value is removed.
        patch: dict[str, str | None] = dict(values)
        patch.update(dict.fromkeys(remove_keys))
        await self._request(
            "PUT",
            f"/secrets/{secret_id}",
            params={"patch_values": "true"},
            json_body={"values": patch},
            not_found=name,
        )

    async def delete_secret(self, name: str) -> None:
        self._recent_ids.pop(name, None)
        secret_id = await self._find_secret_id(name)
        await self._request("DELETE", f"/secrets/{secret_id}", not_found=name)

    def _remember_ids(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Keep the ids an existence answer gave, so a read right after needs one call."""
        now = time.monotonic()
        # Private first, so a public secret of the same name replaces it: ZenML's order.
        for item in sorted(items, key=_is_private, reverse=True):
            try:
                self._recent_ids[_name(item)] = (_uuid(item.get("id"), self._host), now)
            except StoreError:
                continue

    def _forget_stale_ids(self) -> None:
        now = time.monotonic()
        stale = [n for n, (_, at) in self._recent_ids.items() if now - at >= ID_MEMO_SECONDS]
        for name in stale:
            del self._recent_ids[name]

    async def _find_secret_id(self, name: str) -> uuid.UUID:
        """The id of the secret ZenML would use at run time: public first, then private."""
        self._check_open()
        items = await self._list_all("/secrets", {"name": f"equals:{name}"})
        exact = [item for item in items if _name(item) == name]
        if not exact:
            raise SecretNotFoundError(name, store=self.description)
        exact.sort(key=_is_private)
        return _uuid(exact[0].get("id"), self._host)

    # ------------------------------------------------------------------ metadata cache hook
    # (issue 14; kept in one block so that it moves whole into the secret store module.)

    @property
    def metadata_scope(self) -> str | None:
        """This server and the user the store acts as: the user name, else (API key) the user
        id the server put in its token; ``None`` before the first login."""
        if self._api_key is None and self._username is not None:
            return f"{self.description} user={self._username}"
        user = _token_subject(self._token)
        return None if user is None else f"{self.description} user_id={user}"

    async def secrets_metadata(self, names: Sequence[str]) -> dict[str, SecretStamp]:
        """Id and stamp of each of ``names`` that exists, from the existence list calls.

        The secret is the one ZenML resolves at run time (public before private); its stamp is
        ``body.updated`` (bumped by every update through ZenML, values-only too) and its
        private flag. ``settled`` when the answer's ``Date`` is at least
        ``STAMP_RESOLUTION_SECONDS + STAMP_SETTLE_SECONDS`` past ``updated``.
        """
        self._check_open()
        wanted = list(dict.fromkeys(names))
        stamps: dict[str, SecretStamp] = {}
        self._forget_stale_ids()

        async def one_chunk(chunk: list[str]) -> None:
            items, answered_at = await self._list_all_dated("/secrets", {"name": _oneof(chunk)})
            self._remember_ids(items)
            by_name: dict[str, list[dict[str, Any]]] = {}
            for item in items:
                by_name.setdefault(_name(item), []).append(item)
            for name in chunk:
                matches = sorted(by_name.get(name, []), key=_is_private)
                if matches:  # exact names only: the server's comparison may fold case
                    stamps[name] = self._stamp_of(matches[0], answered_at)

        chunks = list(_chunks(wanted))
        if len(chunks) == 1:
            await one_chunk(chunks[0])
        elif chunks:
            async with anyio.create_task_group() as group:
                for chunk in chunks:
                    group.start_soon(one_chunk, chunk)
        return {name: stamps[name] for name in wanted if name in stamps}

    def _stamp_of(self, item: Mapping[str, Any], answered_at: datetime | None) -> SecretStamp:
        body = item.get("body")
        raw = body.get("updated") if isinstance(body, dict) else None
        updated = _utc_datetime(raw)
        settled = (
            updated is not None
            and answered_at is not None
            and (answered_at - updated).total_seconds()
            >= STAMP_RESOLUTION_SECONDS + STAMP_SETTLE_SECONDS
        )
        stamp = f"{raw if isinstance(raw, str) else ''} private={_is_private(item)}"
        return SecretStamp(str(_uuid(item.get("id"), self._host)), stamp, settled=settled)

    async def _list_all_dated(
        self, path: str, params: Mapping[str, str]
    ) -> tuple[list[dict[str, Any]], datetime | None]:
        """Like ``_list_all``, and the server's time (``Date``) of its last page, if given."""
        items: list[dict[str, Any]] = []
        answered_at: datetime | None = None
        page = 1
        while True:
            query = {**params, "page": str(page), "size": str(PAGE_SIZE)}
            response = await self._request("GET", path, params=query)
            answered_at = _http_date(response.headers.get("Date"))
            data = _json_object(response, self._where("GET", path))
            page_items = data.get("items")
            total_pages = data.get("total_pages")
            if not isinstance(page_items, list) or not isinstance(total_pages, int):
                raise StoreError(f"{self._where('GET', path)}: the answer is not a page")
            items.extend(item for item in page_items if isinstance(item, dict))
            if page >= total_pages or not page_items:
                return items, answered_at
            page += 1

    # ------------------------------------------------------------------ stacks

    async def list_stack_names(self) -> list[str]:
        """Every stack name on the server, sorted."""
        self._check_open()
        return sorted({_name(item) for item in await self._list_all("/stacks", {})})

    async def get_stacks(self, names: Sequence[str] | None = None) -> list[Stack]:
        """Stacks with their components' type, flavor, name and configuration.

        ``None`` reads every stack (sorted by name); else the stacks in the order given. A
        name the server does not know raises ``ConfigurationError`` naming every such name.
        Costs one call per 50 stacks and one per 50 components, however many there are.
        """
        self._check_open()
        if names is None:
            items = await self._list_all("/stacks", {"hydrate": "true"})
            by_name = {_name(item): item for item in items}
            wanted = sorted(by_name)
        else:
            wanted = list(dict.fromkeys(names))
            by_name = {}
            for chunk in _chunks(wanted):
                for item in await self._list_all(
                    "/stacks", {"name": _oneof(chunk), "hydrate": "true"}
                ):
                    if _name(item) in chunk:
                        by_name[_name(item)] = item
            unknown = [name for name in wanted if name not in by_name]
            if unknown:
                known = await self.list_stack_names()
                shown = ", ".join(known[:_SHOWN_STACKS])
                if len(known) > _SHOWN_STACKS:
                    shown += ", ..."
                raise ConfigurationError(
                    f"the ZenML server {self._host} has no stack named "
                    f"{', '.join(repr(n) for n in unknown)}; its stacks: {shown or 'none'}"
                )

        layout: dict[str, list[tuple[str, uuid.UUID]]] = {}
        for name in wanted:
            metadata = by_name[name].get("metadata")
            groups = metadata.get("components") if isinstance(metadata, dict) else None
            if not isinstance(groups, dict):
                raise StoreError(
                    f"the ZenML server {self._host} answered without components for stack {name!r}"
                )
            layout[name] = [
                (str(kind), _uuid(component.get("id"), self._host))
                for kind, components in groups.items()
                if isinstance(components, list)
                for component in components
                if isinstance(component, dict)
            ]

        all_ids = list(dict.fromkeys(cid for parts in layout.values() for _, cid in parts))
        components: dict[uuid.UUID, Component] = {}
        for chunk in _chunks([str(cid) for cid in all_ids]):
            for item in await self._list_all(
                "/components", {"id": _oneof(chunk), "hydrate": "true"}
            ):
                components[_uuid(item.get("id"), self._host)] = self._component(item)
        missing = [cid for cid in all_ids if cid not in components]
        if missing:
            raise StoreError(
                f"the ZenML server {self._host} did not return components "
                f"{', '.join(map(str, missing))}"
            )
        return [Stack(name, [components[cid] for _, cid in layout[name]]) for name in wanted]

    def _component(self, item: dict[str, Any]) -> Component:
        body = item.get("body")
        metadata = item.get("metadata")
        if not isinstance(body, dict) or not isinstance(metadata, dict):
            raise StoreError(f"the ZenML server {self._host} answered a component without body")
        configuration = metadata.get("configuration") or {}
        settings = metadata.get("settings") or {}  # not in ZenML 0.98's component model
        return Component(
            type=str(body.get("type", "")),
            flavor=str(body.get("flavor_name", "")),
            name=_name(item),
            configuration=configuration if isinstance(configuration, dict) else {},
            settings=settings if isinstance(settings, dict) else {},
        )

    # ------------------------------------------------------------------ HTTP

    async def _list_all(self, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """Every item of a paginated list, in ZenML's largest pages."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            query = {**params, "page": str(page), "size": str(PAGE_SIZE)}
            response = await self._request("GET", path, params=query)
            data = _json_object(response, self._where("GET", path))
            page_items = data.get("items")
            total_pages = data.get("total_pages")
            if not isinstance(page_items, list) or not isinstance(total_pages, int):
                raise StoreError(f"{self._where('GET', path)}: the answer is not a page")
            items.extend(item for item in page_items if isinstance(item, dict))
            if page >= total_pages or not page_items:
                return items
            page += 1

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        not_found: str | None = None,
        exists: str | None = None,
    ) -> httpx.Response:
        """Send an authenticated request; log in again once if the token was refused."""
        self._check_open()
        generation = await self._ensure_token()
        response = await self._send(method, path, params=params, json_body=json_body)
        if response.status_code == httpx.codes.UNAUTHORIZED:
            await self._relogin(generation)
            response = await self._send(method, path, params=params, json_body=json_body)
        if response.is_success:
            return response
        if response.status_code == httpx.codes.NOT_FOUND and not_found is not None:
            raise SecretNotFoundError(not_found, store=self.description)
        if response.status_code == httpx.codes.CONFLICT and exists is not None:
            raise SecretExistsError(exists)
        raise self._status_error(method, path, response)

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
        try:
            response = await self._client.request(
                method,
                f"{API}{path}",
                params=params,
                json=json_body,
                data=data,
                headers=headers,
            )
        except httpx.TransportError as exc:
            logger.debug(
                "stacksecrets.zenml.request",
                host=self._host,
                method=method,
                path=f"{API}{path}",
                error=type(exc).__name__,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
            raise StoreUnavailableError(
                f"{self._where(method, path)} failed: {type(exc).__name__}"
            ) from exc
        except httpx.HTTPError as exc:
            raise StoreError(f"{self._where(method, path)} failed: {type(exc).__name__}") from exc
        logger.debug(
            "stacksecrets.zenml.request",
            host=self._host,
            method=method,
            path=f"{API}{path}",
            status=response.status_code,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response

    async def _ensure_token(self) -> int:
        """Log in unless a token is held; concurrent first calls log in once."""
        if self._token is None:
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
        if self._api_key is not None:
            form = {"grant_type": "zenml-api-key", "password": self._api_key}
            grant = "api_key"
        else:
            form = {"username": self._username or "", "password": self._password or ""}
            grant = "password"
        self._token = None
        response = await self._send("POST", "/login", data=form, auth=False)
        if response.status_code in {httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN}:
            who = "the API key" if grant == "api_key" else f"user {self._username!r}"
            raise AuthenticationError(
                f"the ZenML server {self._host} refused the login of {who} "
                f"({_error_type(response) or response.status_code})"
            )
        if not response.is_success:
            raise self._status_error("POST", "/login", response)
        token = _json_object(response, self._where("POST", "/login")).get("access_token")
        if not isinstance(token, str) or not token:
            raise StoreError(f"{self._where('POST', '/login')}: the answer holds no access token")
        self._token = token
        self._token_generation += 1
        logger.debug("stacksecrets.zenml.login", host=self._host, grant=grant)

    def _status_error(self, method: str, path: str, response: httpx.Response) -> StoreError:
        status = response.status_code
        kind = _error_type(response)
        text = f"{self._where(method, path)} answered {status}" + (f" ({kind})" if kind else "")
        if status in {httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN}:
            return ForbiddenError(text)
        if status == httpx.codes.NOT_FOUND:
            return StoreError(text)
        if status in _TRANSIENT_STATUSES:
            return StoreUnavailableError(
                text, retry_after=_retry_after(response.headers.get("Retry-After"))
            )
        return StoreError(text)

    def _where(self, method: str, path: str) -> str:
        return f"ZenML server {self._host}: {method} {API}{path}"


# ---------------------------------------------------------------------- helpers


def _host(parsed: urllib.parse.SplitResult) -> str:
    host = parsed.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host if parsed.port is None else f"{host}:{parsed.port}"


def _redacted_url(url: str) -> str:
    """``url`` with userinfo and query dropped: safe to show."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep:  # no scheme: still drop a user:password@ and a query
        return url.strip().rsplit("@", 1)[-1].split("?", 1)[0][:60]
    authority, slash, path = rest.partition("/")
    authority = authority.rsplit("@", 1)[-1].split("?", 1)[0]
    path = path.split("?", 1)[0].split("#", 1)[0]
    return f"{scheme}://{authority}{slash}{path}"


def _unquote(value: str | None) -> str | None:
    return None if value is None else urllib.parse.unquote(value)


def _verify_option(value: str | None) -> bool | str:
    if value is None or value.strip().lower() in {"", "1", "true", "yes", "on"}:
        return True
    if value.strip().lower() in {"0", "false", "no", "off"}:
        return False
    return value  # a CA bundle path, as ZenML's own verify_ssl accepts


def _oneof(names: Sequence[str]) -> str:
    # ZenML parses the value after ``oneof:`` with json.loads; an empty list would match all.
    if not names:
        raise ValueError("an empty oneof: filter matches everything")
    return "oneof:" + json.dumps(list(names))


def _chunks(names: Sequence[str]) -> Iterator[list[str]]:
    """Names in groups of at most 50 whose ``oneof:`` filter fits the URL budget."""
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


def _name(item: Mapping[str, Any]) -> str:
    name = item.get("name")
    return name if isinstance(name, str) else ""


def _is_private(item: Mapping[str, Any]) -> bool:
    body = item.get("body")
    return bool(body.get("private")) if isinstance(body, dict) else False


def _uuid(value: object, host: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise StoreError(f"the ZenML server {host} answered an id that is not a UUID") from exc


def _json_object(response: httpx.Response, where: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise StoreError(f"{where}: the answer is not JSON") from exc
    if not isinstance(data, dict):
        raise StoreError(f"{where}: the answer is not a JSON object")
    return data


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


def _utc_datetime(value: object) -> datetime | None:
    """An ISO datetime of ZenML's (naive means UTC), or ``None``."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def _http_date(value: str | None) -> datetime | None:
    """An HTTP ``Date`` header (whole seconds, a lower bound of the server's time), or ``None``."""
    if value is None:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def _token_subject(token: str | None) -> str | None:
    """The ``sub`` claim (ZenML: the user id) of a JWT, read without checking it: it only
    names the cache scope, and the server checks the token on every call."""
    if token is None:
        return None
    parts = token.split(".")
    if len(parts) != 3:  # noqa: PLR2004
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) and subject else None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
