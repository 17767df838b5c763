"""A ZenML server as a secret store (``zenml+http://host:port``, ``zenml+https://host``).

Secrets through the server's REST API, on one logged-in session (``_zenml_http.py``); the
server's stacks are read by ``ZenMLStackSource`` (``store.stacks``). Where ZenML itself is
loose, this store is exact:

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

Errors: those of the session (see ``_zenml_http.py``), and 404 on a secret ->
``SecretNotFoundError``, 409 on create -> ``SecretExistsError``.
"""

from __future__ import annotations

import os
import ssl
import time
import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from .._errors import (
    ConfigurationError,
    ForbiddenError,
    SecretExistsError,
    SecretNotFoundError,
    StoreError,
    StoreUnavailableError,
)
from .._logging import logger
from .._metacache import SecretStamp, is_settled
from .._secret import Secret
from ._base import StoreBase, StoreCapabilities, check_name_length, check_write
from ._batched import at_once
from ._discovery import SavedLogin, same_server, saved_login
from ._urls import StoreURL, parse_store_url, redact
from ._zenml_http import (
    API,
    MAX_NAME_LENGTH,
    MAX_NAMES_PER_CALL,
    STAMP_RESOLUTION_SECONDS,
    STAMP_SETTLE_SECONDS,
    Credentials,
    ZenMLSession,
    chunks,
    json_object,
    name_of,
    oneof,
    uuid_of,
)
from ._zenml_stacks import ZenMLStackSource

__all__ = ["ZenMLStore"]

#: How long an id seen in an existence answer may stand in for a fresh exact-name look-up.
ID_MEMO_SECONDS = 60.0
#: ... and how long while the server throttles (it answered "slow down" since the id came): the
#: reads of one validation then wait on the server's quota, not on anything the memo guards
#: against, and a look-up afresh would spend one more call of that quota per read (a fleet of
#: 200 clients behind 20 requests/s spent twice the calls it needed). The operation's deadline
#: bounds it too.
ID_MEMO_THROTTLED_SECONDS = 900.0
#: How long an answer asked early, while the stacks were read, may stand in for the
#: validation's own existence or stamp call (once per name).
PREFETCH_SECONDS = 10.0

_SCHEMES = frozenset({"zenml", "zenml+http", "zenml+https"})
_URL_OPTIONS = frozenset({"username", "password", "api_key", "verify_ssl"})
#: ZenML's credential variables, which belong to the server in ``ZENML_STORE_URL``.
_CREDENTIAL_VARIABLES = (
    "ZENML_STORE_API_KEY",
    "ZENML_STORE_USERNAME",
    "ZENML_STORE_PASSWORD",
    "ZENML_STORE_API_TOKEN",
)


class ZenMLStore(StoreBase):
    """Secrets on a ZenML server, through its REST API; ``stacks`` reads its stacks.

    Give either ``api_key`` (``ZENKEY_...``, a service account's key) or ``username`` and
    ``password``. The store logs in at its first call, once even when many calls start
    together, and logs in again once when the server says the token is no longer valid.
    ``token`` starts it with a bearer token (with a key or password beside it, a login follows
    when the server refuses the token; alone, a refused token is an ``AuthenticationError``
    saying how to log in again); ``anonymous=True`` sends no credential (a ``NO_AUTH``
    server); ``transport`` sends its requests through another httpx transport, which then owns
    ``verify`` and ``max_connections``.
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
        verify: bool | str | ssl.SSLContext = True,
        token: str | None = None,
        anonymous: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        verify_source: str = "verify=False",
    ) -> None:
        self._session = ZenMLSession(
            url,
            Credentials(
                username=username,
                password=password,
                api_key=api_key,
                token=token,
                anonymous=anonymous,
            ),
            max_connections=max_connections,
            timeout=timeout,
            verify=verify,
            transport=transport,
            verify_source=verify_source,
        )
        #: The server's stacks, read on this store's session.
        self.stacks = ZenMLStackSource(
            self._session, scope=lambda: self.metadata_scope, prefetch=self._prefetch
        )
        #: name -> (stamp, or ``None`` for absent; when): answers asked early (``_prefetch``),
        #: each used once within ``PREFETCH_SECONDS``.
        self._prefetched: dict[str, tuple[SecretStamp | None, float]] = {}
        #: name -> (id, when): ids from the last existence answers, each used at most once.
        self._recent_ids: dict[str, tuple[uuid.UUID, float]] = {}

    # ------------------------------------------------------------------ configuration

    @classmethod
    def from_url(
        cls,
        url: str | StoreURL,
        /,
        *,
        environ: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> ZenMLStore:
        """A store for ``zenml+http://...`` / ``zenml+https://...`` (see ``docs/zenml.md``).

        Credentials come from the URL (``user:password@host``, or the query options
        ``username``, ``password``, ``api_key``), else from ZenML's own variables
        ``ZENML_STORE_API_KEY``, or ``ZENML_STORE_USERNAME`` and ``ZENML_STORE_PASSWORD``, or
        ``ZENML_STORE_API_TOKEN`` (for the server in ``ZENML_STORE_URL``), else from the login
        ``zenml login`` kept (``stores._discovery.saved_login``). A
        URL without a host (``zenml+https://``, ``zenml://``) means the server in
        ``ZENML_STORE_URL``. ``verify_ssl=false`` (or a CA bundle path), else
        ``ZENML_STORE_VERIFY_SSL``, controls TLS verification. A password holding
        ``/ ? # @`` is best percent-encoded (see ``stores._urls`` for how it is read if not).
        """
        env = os.environ if environ is None else environ
        parsed = parse_store_url(url) if isinstance(url, str) else url
        if parsed.scheme not in _SCHEMES:
            raise ConfigurationError(
                f"not a ZenML store URL: {parsed.redacted!r}; use zenml+https://host or "
                "zenml+http://host:port"
            )
        option = parsed.options(_URL_OPTIONS)

        server = parsed.server(
            env,
            variable="ZENML_STORE_URL",
            example="zenml+https://host or zenml+http://host:port",
            with_path=True,
        )

        url_user = parsed.username or option.get("username") or None
        url_password = parsed.password if parsed.password is not None else option.get("password")
        api_key = option.get("api_key") or None
        username: str | None = None
        password: str | None = None
        token: str | None = None
        anonymous = False
        # ZenML's variables belong to the server in ZENML_STORE_URL: they go to no other one
        # (a key or password for A is never sent in a login form to B). With no
        # ZENML_STORE_URL they name no server, and serve the one the URL names.
        env_server = env.get("ZENML_STORE_URL", "").strip()
        env_is_ours = not env_server or same_server(env_server, server)
        env_password = env.get("ZENML_STORE_PASSWORD") if env_is_ours else None
        foreign = (
            []
            if env_is_ours
            else [name for name in _CREDENTIAL_VARIABLES if env.get(name, "").strip()]
        )
        if api_key is None and url_user is not None:
            username = url_user
            password = url_password if url_password is not None else env_password
        elif api_key is None:
            if env_is_ours:
                api_key = env.get("ZENML_STORE_API_KEY") or None
                if api_key is None:
                    username = env.get("ZENML_STORE_USERNAME") or None
                    password = env_password
            if env_server and same_server(env_server, server):
                token = env.get("ZENML_STORE_API_TOKEN") or None
            if api_key is None and username is None and token is None:
                saved = saved_login(server, env)
                if saved is not None:
                    api_key, username, token = saved.api_key, saved.username, saved.token
                    password = saved.password
                    anonymous = saved == SavedLogin()
        where = parsed.redacted
        elsewhere = (
            f"; {', '.join(foreign)} belong to the server in ZENML_STORE_URL "
            f"({redact(env_server)}), not this one (never sent to another server)"
            if foreign
            else ""
        )
        if foreign:
            logger.info(
                "stacksecrets.zenml.credentials_for_another_server",
                store=where,
                credentials_for=redact(env_server),
                variables=foreign,
            )
        if api_key is None and username is None and token is None and not anonymous:
            raise ConfigurationError(
                f"no credentials for the ZenML store {where!r}{elsewhere}: run `zenml login "
                f"{server}`, or set ZENML_STORE_API_KEY, or ZENML_STORE_USERNAME and "
                "ZENML_STORE_PASSWORD (or put user:password@ or ?api_key=... in the URL)"
            )
        if username is not None and api_key is None and password is None:
            raise ConfigurationError(
                f"no password for user {username!r} of the ZenML store {where!r}{elsewhere}: set "
                "ZENML_STORE_PASSWORD (or put it in the URL)"
            )
        if "verify_ssl" in option:
            verify_source = "the store URL's verify_ssl option"
            verify = _verify_option(option["verify_ssl"], verify_source)
        else:
            verify_source = "ZENML_STORE_VERIFY_SSL"
            verify = _verify_option(env.get("ZENML_STORE_VERIFY_SSL"), verify_source)
        return cls(
            server,
            username=username,
            password=password,
            api_key=api_key,
            verify=verify,
            token=token,
            anonymous=anonymous,
            transport=transport,
            verify_source=verify_source,
        )

    @property
    def capabilities(self) -> StoreCapabilities:
        return StoreCapabilities(batched_exists=True, max_batch=MAX_NAMES_PER_CALL, writable=True)

    @property
    def description(self) -> str:
        session = self._session
        return f"zenml+{session.scheme}://{session.host}{session.path}"

    @property
    def http_calls(self) -> int:
        """HTTP requests sent, logins included."""
        return self._session.http_calls

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._session.aclose()

    # ------------------------------------------------------------------ secrets

    async def secrets_exist(self, names: Sequence[str]) -> frozenset[str]:
        """Which of ``names`` exist: one list call for up to ``capabilities.max_batch`` names,
        as the engine sends them. Only names too long for one URL, or more names than that
        (another caller), are split into more calls here, which run concurrently."""
        self._check_open()
        wanted = list(dict.fromkeys(names))
        early = self._take_prefetched(wanted)
        if early is not None:
            return frozenset(early)
        found: set[str] = set()

        self._forget_stale_ids()

        async def one_chunk(chunk: list[str]) -> None:
            items = await self._session.list_all("/secrets", {"name": oneof(chunk)})
            self._remember_ids(items)
            found.update(name_of(item) for item in items)

        await at_once(one_chunk, chunks(wanted))
        # The server's comparison may fold case (MySQL); ours does not.
        return frozenset(name for name in wanted if name in found)

    async def get_secret(self, name: str) -> Secret:
        self._check_open()
        remembered = self._recent_ids.pop(name, None)
        if remembered is not None and self._id_fresh(remembered[1], time.monotonic()):
            try:
                return await self._read_secret(name, remembered[0])
            except SecretNotFoundError:
                pass  # deleted or renamed since the existence call: look it up afresh
            except StoreUnavailableError:
                # Not used up: the retry of a read that failed on the way costs one call too.
                self._recent_ids.setdefault(name, remembered)
                raise
        secret_id = await self._find_secret_id(name)
        try:
            return await self._read_secret(name, secret_id)
        except StoreUnavailableError:
            # The look-up is not lost: the retry reads by this id (one call, not two).
            self._recent_ids.setdefault(name, (secret_id, time.monotonic()))
            raise

    async def _read_secret(self, name: str, secret_id: uuid.UUID) -> Secret:
        response = await self._request("GET", f"/secrets/{secret_id}", not_found=name)
        item = json_object(response, self._session.where("GET", f"/secrets/{secret_id}"))
        if name_of(item) != name:
            raise SecretNotFoundError(name, store=self.description)
        if item.get("permission_denied") is True:
            raise ForbiddenError(
                f"the ZenML server {self._session.host} refuses to show secret {name!r}"
            )
        body = item.get("body")
        raw_values = body.get("values") if isinstance(body, dict) else None
        if not isinstance(raw_values, dict):
            raise StoreError(
                f"the ZenML server {self._session.host} answered GET {API}/secrets/{secret_id} "
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
        items = await self._session.list_all("/secrets", {})
        return sorted({name_of(item) for item in items})

    async def create_secret(self, name: str, values: Mapping[str, str]) -> None:
        self._check_open()
        self._prefetched.clear()  # answers from before a write are not used after it
        new, _ = check_write(name, values)
        check_name_length(name, MAX_NAME_LENGTH, "ZenML")
        self._recent_ids.pop(name, None)  # a new public secret outranks a private one
        body = {"name": name, "private": False, "values": new}
        await self._request("POST", "/secrets", json_body=body, exists=name)

    async def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        new, removed = check_write(name, values, remove_keys)
        self._prefetched.clear()  # answers from before a write are not used after it
        secret_id = await self._find_secret_id(name)
        # ZenML's patch semantics: a key with a null value is removed.
        patch: dict[str, str | None] = dict(new)
        patch.update(dict.fromkeys(removed))
        await self._request(
            "PUT",
            f"/secrets/{secret_id}",
            params={"patch_values": "true"},
            json_body={"values": patch},
            not_found=name,
        )

    async def delete_secret(self, name: str) -> None:
        self._prefetched.clear()  # answers from before a write are not used after it
        self._recent_ids.pop(name, None)
        secret_id = await self._find_secret_id(name)
        await self._request("DELETE", f"/secrets/{secret_id}", not_found=name)

    # ------------------------------------------------------------------ metadata cache hook

    @property
    def metadata_scope(self) -> str | None:
        """This server and the user the store acts as: the user name, else (API key) the user
        id the server put in its token; ``None`` before the first login."""
        credentials = self._session.credentials
        if credentials.api_key is None and credentials.username is not None:
            return f"{self.description} user={credentials.username}"
        user = self._session.token_subject
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
        early = self._take_prefetched(wanted)
        if early is not None:
            return early
        return await self._secrets_metadata(wanted)

    async def _prefetch(self, names: list[str]) -> None:
        """Ask now for the stamps of ``names`` (secrets the stacks being read referenced when
        last read), so that the validation's own call right after is answered without a round
        trip (``_take_prefetched``)."""
        stamps = await self._secrets_metadata(list(dict.fromkeys(names)))
        now = time.monotonic()
        for name in names:
            self._prefetched[name] = (stamps.get(name), now)

    def _take_prefetched(self, names: list[str]) -> dict[str, SecretStamp] | None:
        """The early answers for ``names`` when there is a fresh one for every name (each is
        then used up), else ``None``: the caller asks the server."""
        if not self._prefetched:
            return None
        now = time.monotonic()
        answers = {name: self._prefetched.pop(name, None) for name in names}
        if any(early is None or now - early[1] >= PREFETCH_SECONDS for early in answers.values()):
            return None  # asked afresh: none of these early answers is used later either
        return {
            name: early[0]
            for name, early in answers.items()
            if early is not None and early[0] is not None
        }

    async def _secrets_metadata(self, wanted: list[str]) -> dict[str, SecretStamp]:
        stamps: dict[str, SecretStamp] = {}
        self._forget_stale_ids()

        async def one_chunk(chunk: list[str]) -> None:
            items, answered_at = await self._session.list_all_dated(
                "/secrets", {"name": oneof(chunk)}
            )
            self._remember_ids(items)
            by_name: dict[str, list[dict[str, Any]]] = {}
            for item in items:
                by_name.setdefault(name_of(item), []).append(item)
            for name in chunk:
                matches = sorted(by_name.get(name, []), key=_is_private)
                if matches:  # exact names only: the server's comparison may fold case
                    stamps[name] = self._stamp_of(matches[0], answered_at)

        await at_once(one_chunk, chunks(wanted))
        return {name: stamps[name] for name in wanted if name in stamps}

    def _stamp_of(self, item: Mapping[str, Any], answered_at: datetime | None) -> SecretStamp:
        body = item.get("body")
        raw = body.get("updated") if isinstance(body, dict) else None
        updated = _utc_datetime(raw)
        settled = is_settled(updated, answered_at, STAMP_RESOLUTION_SECONDS + STAMP_SETTLE_SECONDS)
        stamp = f"{raw if isinstance(raw, str) else ''} private={_is_private(item)}"
        return SecretStamp(str(uuid_of(item.get("id"), self._session.host)), stamp, settled=settled)

    def _remember_ids(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Keep the ids an existence answer gave, so a read right after needs one call."""
        now = time.monotonic()
        # Private first, so a public secret of the same name replaces it: ZenML's order.
        for item in sorted(items, key=_is_private, reverse=True):
            try:
                self._recent_ids[name_of(item)] = (uuid_of(item.get("id"), self._session.host), now)
            except StoreError:
                continue

    def _id_fresh(self, at: float, now: float) -> bool:
        """Whether an id remembered at ``at`` may still stand in for a look-up: within
        ``ID_MEMO_SECONDS``, or ``ID_MEMO_THROTTLED_SECONDS`` when the server throttled since."""
        throttled_at = self._session.throttled_at
        if throttled_at is not None and throttled_at >= at:
            return now - at < ID_MEMO_THROTTLED_SECONDS
        return now - at < ID_MEMO_SECONDS

    def _forget_stale_ids(self) -> None:
        now = time.monotonic()
        stale = [n for n, (_, at) in self._recent_ids.items() if not self._id_fresh(at, now)]
        for name in stale:
            del self._recent_ids[name]

    async def _find_secret_id(self, name: str) -> uuid.UUID:
        """The id of the secret ZenML would use at run time: public first, then private."""
        self._check_open()
        items = await self._session.list_all("/secrets", {"name": f"equals:{name}"})
        exact = [item for item in items if name_of(item) == name]
        if not exact:
            raise SecretNotFoundError(name, store=self.description)
        exact.sort(key=_is_private)
        return uuid_of(exact[0].get("id"), self._session.host)

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
        """A session request, with 404 as ``not_found`` missing and 409 as ``exists`` taken."""
        allow = set()
        if not_found is not None:
            allow.add(httpx.codes.NOT_FOUND)
        if exists is not None:
            allow.add(httpx.codes.CONFLICT)
        response = await self._session.request(
            method, path, params=params, json_body=json_body, allow=allow
        )
        if response.status_code == httpx.codes.NOT_FOUND and not_found is not None:
            raise SecretNotFoundError(not_found, store=self.description)
        if response.status_code == httpx.codes.CONFLICT and exists is not None:
            raise SecretExistsError(exists)
        return response


def _verify_option(value: str | None, source: str) -> bool | ssl.SSLContext:
    """TLS verification as ZenML's ``verify_ssl`` takes it: a boolean word, the path of a CA
    bundle file, or the PEM text of one; anything else is a ``ConfigurationError`` naming
    ``source`` (the text itself is not shown: it may be anything)."""
    if value is None:
        return True
    text = value.strip()
    if text.lower() in {"", "1", "true", "yes", "on"}:
        return True
    if text.lower() in {"0", "false", "no", "off"}:
        return False
    try:
        if text.startswith("-----BEGIN"):
            return ssl.create_default_context(cadata=text)
        if Path(text).expanduser().is_file():
            return ssl.create_default_context(cafile=str(Path(text).expanduser()))
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigurationError(
            f"{source} names a CA bundle that cannot be loaded ({type(exc).__name__})"
        ) from None
    raise ConfigurationError(
        f"{source} must be true, false, or the path of a CA bundle file; got a value of "
        f"{len(text)} characters that is none of these (no such file)"
    )


def _is_private(item: Mapping[str, Any]) -> bool:
    body = item.get("body")
    return bool(body.get("private")) if isinstance(body, dict) else False


def _utc_datetime(value: object) -> datetime | None:
    """An ISO datetime of ZenML's (naive means UTC), or ``None``."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed
