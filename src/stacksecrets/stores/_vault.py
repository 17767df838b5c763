"""HashiCorp Vault / OpenBao KV version 2 as a secret store (``vault+https://host:port/MOUNT``).

One pooled ``httpx.AsyncClient``, the token in the ``X-Vault-Token`` header. Secret names may
hold ``/``: ``team/db`` is the secret ``db`` in the folder ``team/`` of the mount.

- Existence is answered by ``LIST {mount}/metadata/{folder}/``: one call per folder that holds
  asked-for names, whatever their number, all folders at once, in pages of
  ``list_page_size`` names where the server pages (OpenBao's ``limit``/``after``; Vault answers
  every name in one page). No value is read, so a token whose policy grants only ``list`` can
  check existence.
- A read is ``GET {mount}/data/{name}``: the latest version. A latest version that was deleted
  or destroyed is an absent secret (the server answers 404 for it). ``LIST`` cannot tell such a
  secret from a live one (its metadata stays), so the existence level counts it as present.
- Writes use check-and-set: create with ``cas=0`` (refused when the name is taken), update as
  read-merge-write with ``cas`` = the version read (retried when another writer came first);
  delete removes the metadata and every version.

Errors: 403 is ``ForbiddenError`` for that secret, unless the token itself is no longer valid
(Vault answers 403 for both; one ``auth/token/lookup-self`` call, at most every
``TOKEN_CHECK_SECONDS``, decides), then ``AuthenticationError``; 401 too. 404 is absent;
408/429/502/503/504 (a sealed server answers 503, a standby or a rate-limit quota 429) and
network failures are ``StoreUnavailableError`` with the ``Retry-After`` hint; anything else is
``StoreError``. Messages name the host, method and path; never the token or a response body.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.parse
import warnings
from collections.abc import Collection, Coroutine, Iterable, Mapping, Sequence
from pathlib import Path
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
from .._secret import Secret
from ._base import StoreBase, StoreCapabilities, check_write
from ._urls import StoreURL, parse_store_url
from ._urls import redact as _redacted_url
from ._zenml_http import _retry_after, is_loopback, json_object, send_logged

__all__ = ["VaultStore", "VaultTLSWarning"]

API = "/v1"
DEFAULT_MOUNT = "secret"
#: Names asked per page of a ``LIST`` (OpenBao pages; Vault ignores it and answers all).
LIST_PAGE_SIZE = 1000
#: The most pages one folder listing reads.
MAX_PAGES = 1000
#: How long a successful token look-up vouches for the token when a 403 arrives.
TOKEN_CHECK_SECONDS = 30.0
#: Read-merge-write attempts of an update when other writers keep coming first.
CAS_ATTEMPTS = 5

_TRANSIENT_STATUSES = frozenset({408, 429, 502, 503, 504})
_URL_OPTIONS = frozenset({"token", "namespace"})
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"", "0", "false", "f", "no", "n", "off"})


class VaultTLSWarning(UserWarning):
    """TLS certificate verification is off (``VAULT_SKIP_VERIFY``)."""


class VaultStore(StoreBase):
    """Secrets in a KV version 2 engine of a Vault or OpenBao server.

    ``address`` is the server (``https://host:8200``), ``mount`` the engine's path
    (``secret``), ``token`` a Vault token, ``namespace`` a Vault Enterprise namespace.
    ``verify`` is ``True``, ``False`` or an ``ssl.SSLContext``.
    """

    def __init__(
        self,
        address: str,
        *,
        token: str,
        mount: str = DEFAULT_MOUNT,
        namespace: str | None = None,
        verify: bool | ssl.SSLContext = True,
        max_connections: int = 16,
        timeout: float = 30.0,
        list_page_size: int = LIST_PAGE_SIZE,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(address.strip())
        if parsed.scheme not in {"http", "https"} or not parsed.hostname:
            raise ConfigurationError(
                f"Vault address must be http(s)://host[:port], got {_redacted_url(address)!r}"
            )
        if parsed.username or parsed.password or parsed.query or parsed.fragment:
            raise ConfigurationError(
                f"give the Vault token as an argument, not in the address "
                f"{_redacted_url(address)!r}"
            )
        try:
            port = parsed.port
        except ValueError as exc:
            raise ConfigurationError(f"bad port in {_redacted_url(address)!r}") from exc
        if not token:
            raise ConfigurationError("no Vault token: set VAULT_TOKEN")
        if max_connections < 1:
            raise ConfigurationError("max_connections must be at least 1")
        if list_page_size < 1:
            raise ConfigurationError("list_page_size must be at least 1")
        mount = mount.strip("/")
        if not mount or any(part in {"", ".", ".."} for part in mount.split("/")):
            raise ConfigurationError(f"bad KV mount path {mount!r}")
        host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
        self._host = host if port is None else f"{host}:{port}"
        self._scheme = parsed.scheme
        self._prefix = parsed.path.rstrip("/")  # a server behind a path-routing proxy
        if parsed.scheme == "http" and not is_loopback(parsed.hostname):
            logger.warning(
                "stacksecrets.vault.plain_http",
                host=self._host,
                hint="the token and secrets travel unencrypted to another machine: use https://",
            )
        self.mount = mount
        self._mount_path = "/".join(urllib.parse.quote(p, safe="") for p in mount.split("/"))
        self.namespace = namespace or None
        self.list_page_size = list_page_size
        self._token = token
        self._token_ok_until = 0.0
        self._token_refused = False
        self._token_lock = anyio.Lock()
        #: HTTP requests sent, token look-ups included.
        self.http_calls = 0
        headers = {"Accept": "application/json", "X-Vault-Token": token}
        if self.namespace:
            headers["X-Vault-Namespace"] = self.namespace
        self._client = httpx.AsyncClient(
            base_url=f"{parsed.scheme}://{self._host}{self._prefix}",
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers=headers,
            verify=verify,
            follow_redirects=False,  # a redirect would carry the token to another host
            transport=transport,
        )

    # ------------------------------------------------------------------ configuration

    @classmethod
    def from_url(
        cls, url: StoreURL | str, *, environ: Mapping[str, str] | None = None
    ) -> VaultStore:
        """A store for ``vault+http(s)://host:port/MOUNT`` or ``vault:///MOUNT`` (see
        ``docs/vault.md``).

        ``vault://`` takes the server from ``VAULT_ADDR``. The token is the URL option
        ``token``, else ``VAULT_TOKEN``, else the Vault CLI's ``~/.vault-token``. The namespace
        is the option ``namespace``, else ``VAULT_NAMESPACE``. TLS: ``VAULT_CACERT`` (a CA
        bundle), ``VAULT_SKIP_VERIFY`` (no verification, with a warning).
        """
        env = os.environ if environ is None else environ
        parsed = url if isinstance(url, StoreURL) else parse_store_url(url.strip())
        where = parsed.redacted
        scheme = parsed.scheme
        if scheme not in {"vault", "vault+http", "vault+https"}:
            raise ConfigurationError(
                f"not a Vault store URL: {where!r}; use vault+https://host:8200/MOUNT"
            )
        option = parsed.options(_URL_OPTIONS)
        if parsed.username is not None or parsed.password is not None:
            raise ConfigurationError(
                f"put the Vault token in VAULT_TOKEN (or ?token=), not before the host: {where!r}"
            )
        if parsed.host:
            if scheme == "vault":
                raise ConfigurationError(
                    f"{where!r}: say which protocol the server speaks (vault+https://host:8200/"
                    "MOUNT), or write vault:///MOUNT to use VAULT_ADDR"
                )
            address = f"{scheme.removeprefix('vault+')}://{parsed.netloc}"
        else:
            address = env.get("VAULT_ADDR", "").strip()
            if not address.startswith(("http://", "https://")):
                raise ConfigurationError(
                    f"the Vault store URL {where!r} names no server, and VAULT_ADDR does not "
                    "hold an http(s):// address; set one of them"
                )
        mount = urllib.parse.unquote(parsed.path).strip("/") or DEFAULT_MOUNT
        token = option.get("token") or env.get("VAULT_TOKEN", "").strip() or _token_file(env)
        if not token:
            raise ConfigurationError(
                f"no Vault token for {where!r}: set VAULT_TOKEN (or log in with the Vault CLI, "
                "which writes ~/.vault-token)"
            )
        namespace = option.get("namespace") or env.get("VAULT_NAMESPACE", "").strip() or None
        return cls(
            address, token=token, mount=mount, namespace=namespace, verify=_tls(env, address)
        )

    @property
    def capabilities(self) -> StoreCapabilities:
        return StoreCapabilities(batched_exists=True, max_batch=None, writable=True)

    @property
    def description(self) -> str:
        ns = f" (namespace {self.namespace})" if self.namespace else ""
        return f"vault+{self._scheme}://{self._host}{self._prefix}/{self.mount}{ns}"

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._client.aclose()

    # ------------------------------------------------------------------ reading

    async def secrets_exist(self, names: Sequence[str]) -> frozenset[str]:
        self._check_open()
        by_folder: dict[str, set[str]] = {}
        for name in dict.fromkeys(names):
            if _valid_name(name):
                folder, _, leaf = name.rpartition("/")
                by_folder.setdefault(folder, set()).add(leaf)
        found: set[str] = set()

        async def one_folder(folder: str, leaves: set[str]) -> None:
            listed = await self._list_folder(folder)
            prefix = f"{folder}/" if folder else ""
            found.update(prefix + leaf for leaf in leaves & listed)

        await _all(one_folder(folder, leaves) for folder, leaves in by_folder.items())
        return frozenset(found)

    async def get_secret(self, name: str) -> Secret:
        self._check_open()
        if not _valid_name(name):
            raise SecretNotFoundError(name, store=self.description)
        data, _ = await self._read(name)
        if data is None:
            raise SecretNotFoundError(name, store=self.description)
        return Secret(name, data)

    async def list_secrets(self) -> list[str]:
        self._check_open()
        names: list[str] = []

        async def walk(folder: str) -> None:
            entries = await self._list_folder(folder)
            prefix = f"{folder}/" if folder else ""
            names.extend(prefix + entry for entry in entries if not entry.endswith("/"))
            await _all(walk(prefix + entry.rstrip("/")) for entry in entries if entry.endswith("/"))

        await walk("")
        return sorted(names)

    async def _list_folder(self, folder: str) -> set[str]:
        """Every entry (``name``, ``sub/``) of a folder, page by page; empty when absent."""
        path = self._path("metadata", folder) + "/"
        entries: set[str] = set()
        after: str | None = None
        for _page in range(MAX_PAGES):
            params = {"limit": str(self.list_page_size)}
            if after is not None:
                params["after"] = after
            response = await self._request(
                "LIST", path, params=params, what=f"the folder {folder + '/' if folder else '/'!r}"
            )
            if response.status_code == httpx.codes.NOT_FOUND:
                return entries
            data = json_object(response, self._where("LIST", path)).get("data")
            keys = data.get("keys") if isinstance(data, dict) else None
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise StoreError(f"{self._where('LIST', path)}: the answer holds no key list")
            new = set(keys) - entries
            entries.update(keys)
            # A short page is the last; a server that does not page answers everything at
            # once (more than asked) or the same names again.
            if len(keys) != self.list_page_size or not new:
                return entries
            after = max(keys)
        raise StoreError(
            f"{self._where('LIST', path)}: the listing goes on past {MAX_PAGES} pages of "
            f"{self.list_page_size}; stopped reading it"
        )

    async def _read(self, name: str) -> tuple[dict[str, str] | None, int]:
        """The latest version's values (``None`` when deleted or destroyed) and number."""
        path = self._path("data", name)
        response = await self._request("GET", path, what=f"secret {name!r}")
        if response.status_code == httpx.codes.NOT_FOUND:
            return None, 0
        data = json_object(response, self._where("GET", path)).get("data")
        if not isinstance(data, dict):
            raise StoreError(f"{self._where('GET', path)}: the answer holds no data")
        metadata = data.get("metadata")
        version = metadata.get("version") if isinstance(metadata, dict) else None
        values = data.get("data")
        if values is None:
            return None, int(version) if isinstance(version, int) else 0
        if not isinstance(values, dict) or not isinstance(version, int):
            raise StoreError(f"{self._where('GET', path)}: the answer is not a KV v2 secret")
        # KV v2 holds any JSON; stacksecrets values are text, so others become JSON text.
        return {
            str(k): v if isinstance(v, str) else json.dumps(v) for k, v in values.items()
        }, version

    # ------------------------------------------------------------------ writing

    async def create_secret(self, name: str, values: Mapping[str, str]) -> None:
        self._check_open()
        new, _ = check_write(name, values)
        _check_name(name)
        cas = 0
        if await self._write(name, new, cas):
            return
        # Taken, unless every version is deleted or destroyed (an absent secret): then
        # write over it, still only if nobody wrote in between.
        current = await self._current_version(name)
        if current is None or not current[1] or not await self._write(name, new, current[0]):
            raise SecretExistsError(name)

    async def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        self._check_open()
        new, removed = check_write(name, values, remove_keys)
        if not _valid_name(name):
            raise SecretNotFoundError(name, store=self.description)
        for _attempt in range(CAS_ATTEMPTS):
            current, version = await self._read(name)
            if current is None:
                raise SecretNotFoundError(name, store=self.description)
            for key in removed:
                current.pop(key, None)
            current.update(new)
            if await self._write(name, current, version):
                return
        raise StoreUnavailableError(
            f"{self._where('POST', self._path('data', name))}: the secret {name!r} kept "
            f"changing under {CAS_ATTEMPTS} updates in a row; try again"
        )

    async def delete_secret(self, name: str) -> None:
        self._check_open()
        if not _valid_name(name) or await self._current_version(name) is None:
            raise SecretNotFoundError(name, store=self.description)
        path = self._path("metadata", name)
        response = await self._request("DELETE", path, what=f"secret {name!r}")
        if response.status_code == httpx.codes.NOT_FOUND:
            raise SecretNotFoundError(name, store=self.description)

    async def _write(self, name: str, values: dict[str, str], cas: int) -> bool:
        """Write a new version if the current one is ``cas``; ``False`` if it is not."""
        path = self._path("data", name)
        body = {"options": {"cas": cas}, "data": values}
        response = await self._request(
            "POST", path, json_body=body, what=f"secret {name!r}", cas=True
        )
        return response.status_code != httpx.codes.BAD_REQUEST

    async def _current_version(self, name: str) -> tuple[int, bool] | None:
        """The current version and whether it is deleted or destroyed; ``None``: no secret."""
        path = self._path("metadata", name)
        response = await self._request("GET", path, what=f"secret {name!r}")
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        data = json_object(response, self._where("GET", path)).get("data")
        if not isinstance(data, dict) or not isinstance(data.get("current_version"), int):
            raise StoreError(f"{self._where('GET', path)}: the answer holds no metadata")
        current: int = data["current_version"]
        versions = data.get("versions")
        latest = versions.get(str(current)) if isinstance(versions, dict) else None
        gone = not isinstance(latest, dict) or bool(
            latest.get("deletion_time") or latest.get("destroyed")
        )
        return current, gone

    # ------------------------------------------------------------------ HTTP

    def _path(self, kind: str, name: str) -> str:
        """``/MOUNT/KIND/NAME``, each part of the name percent-encoded: a name cannot change
        which endpoint is hit (``?``, ``#``, ``%``, ``..``)."""
        parts = [urllib.parse.quote(part, safe="") for part in name.split("/") if part]
        return "/".join([f"/{self._mount_path}", kind, *parts])

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        what: str | None = None,
        cas: bool = False,
    ) -> httpx.Response:
        """A request; answers 2xx and 404 (and 400 for ``cas`` writes) are returned, every
        other answer raises our error."""
        self._check_open()
        response = await self._send(method, path, params=params, json_body=json_body)
        status = response.status_code
        if status == httpx.codes.NOT_FOUND and _no_route(response):
            raise StoreError(
                f"{self._where(method, path)} answered 404: nothing is mounted at "
                f"{self.mount!r} on this server; check the mount in the store URL"
            )
        if response.is_success or status == httpx.codes.NOT_FOUND:
            return response
        if cas and status == httpx.codes.BAD_REQUEST and _cas_mismatch(response):
            return response
        if status == httpx.codes.FORBIDDEN:
            await self._check_token()
            raise ForbiddenError(
                f"{self._where(method, path)} answered 403: the token's policy does not allow "
                f"{_VERBS.get(method, method)} {what or 'this path'}"
            )
        raise self._status_error(method, path, response)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> httpx.Response:
        self.http_calls += 1
        started = time.perf_counter()
        request = self._client.build_request(method, f"{API}{path}", params=params, json=json_body)
        return await send_logged(
            self._client,
            request,
            where=self._where(method, path),
            event="stacksecrets.vault.request",
            host=self._host,
            path=f"{API}{path}",
            started=started,
        )

    async def _check_token(self) -> None:
        """After a 403: raise ``AuthenticationError`` if the token itself is refused.

        Vault answers 403 ("permission denied") both for a policy that denies a path and for
        a revoked, expired or unknown token. ``auth/token/lookup-self`` (allowed by Vault's
        ``default`` policy) tells them apart; concurrent 403s share one look-up, and a good
        answer holds for ``TOKEN_CHECK_SECONDS``.
        """
        if time.monotonic() < self._token_ok_until:
            return
        path = "/auth/token/lookup-self"
        async with self._token_lock:
            if time.monotonic() < self._token_ok_until:
                return
            if not self._token_refused:
                response = await self._send("GET", path)
                if response.is_success:
                    self._token_ok_until = time.monotonic() + TOKEN_CHECK_SECONDS
                    return
                if response.status_code not in {401, 403}:
                    raise self._status_error("GET", path, response)
                # A refused token is not accepted again later: no need to ask twice.
                self._token_refused = True
            raise AuthenticationError(
                f"the Vault server {self._host} refuses the token (GET {API}{path} answered "
                "403): it is revoked, expired or unknown, or its policies do not even allow "
                "looking itself up (Vault's default policy does); set VAULT_TOKEN to a valid "
                "token"
            )

    def _status_error(self, method: str, path: str, response: httpx.Response) -> StoreError:
        status = response.status_code
        text = f"{self._where(method, path)} answered {status}"
        if status == httpx.codes.UNAUTHORIZED:
            return AuthenticationError(f"{text}: the server wants a valid token (VAULT_TOKEN)")
        if status in _TRANSIENT_STATUSES:
            hint = {429: " (a standby node or a rate limit)", 503: " (sealed or starting)"}
            after = _retry_after(response.headers.get("Retry-After"))
            # throttled: stand-in for the stores branch's _http.py (issue 24)
            throttled = status == 429 or (status == 503 and after is not None)  # noqa: PLR2004
            return StoreUnavailableError(
                text + hint.get(status, ""), retry_after=after, throttled=throttled
            )
        if response.is_redirect:
            return StoreError(
                f"{text}: redirected to another node; point the store at the active node or "
                "a load balancer"
            )
        return StoreError(text)

    def _where(self, method: str, path: str) -> str:
        return f"Vault server {self._host}: {method} {self._prefix}{API}{path}"


_VERBS = {"LIST": "listing", "GET": "reading", "POST": "writing", "DELETE": "deleting"}


# ---------------------------------------------------------------------- helpers


async def _all(calls: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run ``calls`` concurrently; raise one ``StoreError`` (an authentication error first),
    not an exception group, when some fail."""
    pending = list(calls)
    if len(pending) == 1:
        await pending[0]
        return
    errors: list[StoreError] = []

    async def one(call: Coroutine[Any, Any, None]) -> None:
        try:
            await call
        except StoreError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as group:
        for call in pending:
            group.start_soon(one, call)
    if errors:
        errors.sort(key=lambda e: not isinstance(e, AuthenticationError))
        raise errors[0]


def _valid_name(name: str) -> bool:
    """A KV secret name: ``/``-separated parts, none empty, ``.`` or ``..``; no control
    characters."""
    return (
        bool(name)
        and name.isprintable()
        and all(part not in {"", ".", ".."} for part in name.split("/"))
    )


def _check_name(name: str) -> None:
    if not _valid_name(name):
        raise ConfigurationError(
            f"{name!r} is not a valid Vault secret name: use parts separated by '/', none "
            "empty, '.' or '..', without control characters"
        )


def _cas_mismatch(response: httpx.Response) -> bool:
    """Whether a 400 is KV v2's check-and-set refusal (the error text is Vault's own)."""
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        return False
    return isinstance(errors, list) and any(
        isinstance(e, str) and "check-and-set" in e for e in errors
    )


def _no_route(response: httpx.Response) -> bool:
    """Whether a 404 says no engine serves the path (a wrong mount), not "no such secret"."""
    try:
        errors = response.json().get("errors")
    except (ValueError, AttributeError):
        return False
    return isinstance(errors, list) and any(
        isinstance(e, str) and e.startswith("no handler for route") for e in errors
    )


def _token_file(env: Mapping[str, str]) -> str:
    """The Vault CLI's token helper file, ``~/.vault-token``, when there is one."""
    home = env.get("HOME") or str(Path.home())
    try:
        return (Path(home) / ".vault-token").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _tls(env: Mapping[str, str], address: str) -> bool | ssl.SSLContext:
    skip = env.get("VAULT_SKIP_VERIFY", "").strip().lower()
    if skip not in _TRUE | _FALSE:
        raise ConfigurationError(f"VAULT_SKIP_VERIFY must be true or false, got {skip[:20]!r}")
    if skip in _TRUE:
        if address.startswith("https://"):
            warnings.warn(
                "VAULT_SKIP_VERIFY is set: the Vault server's TLS certificate is not checked, "
                "so anyone on the path can read the token and the secrets",
                VaultTLSWarning,
                stacklevel=3,
            )
        return False
    cacert = env.get("VAULT_CACERT", "").strip()
    if not cacert:
        return True
    try:
        return ssl.create_default_context(cafile=cacert)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"VAULT_CACERT {cacert!r} is not a readable CA bundle ({type(exc).__name__})"
        ) from exc
