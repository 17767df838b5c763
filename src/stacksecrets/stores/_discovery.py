"""Which store to use when none is given, found the way ZenML finds its server.

In this order (the first that applies wins):

1. ``STACKSECRETS_STORE`` (and, before it, an explicit URL or ``--store``).
2. ``ZENML_STORE_URL`` holding an ``http(s)://`` server: what ZenML gives a step on a remote
   orchestrator (with ``ZENML_STORE_API_TOKEN``), or a CI job sets (with ``ZENML_STORE_API_KEY``,
   or ``ZENML_STORE_USERNAME`` and ``ZENML_STORE_PASSWORD``). A ``ZENML_STORE_URL`` that is not
   a server (``sqlite://``, a database) stops the search at the local file store: ZenML then
   uses no server either.
3. ZenML's configuration when it is connected to a server (``zenml login``): ``config.yaml`` in
   ``$ZENML_CONFIG_PATH``, else in ZenML's folder of the user's configuration, with
   ``store.type: rest``; the login (API key, password, or API token) is read from
   ``credentials.yaml`` beside it. A server with no login there (``zenml login --local``
   answers ``NO_AUTH``) is used without one.
4. The local file store.

Nothing here reads a value into a message or a log: sources are named by variable or path.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .._errors import ConfigurationError

__all__ = [
    "Discovery",
    "SavedLogin",
    "active_stack_id",
    "discover",
    "saved_login",
    "zenml_config_dir",
]

STORE_VARIABLE = "STACKSECRETS_STORE"


@attrs.frozen
class Discovery:
    """The store URL found (no credentials in it) and where it came from, to show."""

    url: str | None
    source: str


@attrs.frozen
class SavedLogin:
    """A login ``zenml login`` kept for one server (never shown)."""

    api_key: str | None = attrs.field(default=None, repr=False)
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    token: str | None = attrs.field(default=None, repr=False)


def zenml_config_dir(environ: Mapping[str, str]) -> Path:
    """ZenML's configuration folder: ``$ZENML_CONFIG_PATH``, else click's app dir for zenml."""
    configured = environ.get("ZENML_CONFIG_PATH", "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    import click

    return Path(click.get_app_dir("zenml"))


def _read_yaml(path: Path) -> dict[str, Any] | None:
    """A YAML mapping, ``None`` when the file does not exist; a broken one is an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read ZenML's configuration {path}: {exc}") from None
    import yaml  # start-up: only when ZenML's configuration is read

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigurationError(f"ZenML's configuration {path} is not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(f"ZenML's configuration {path} is not a YAML mapping")
    return data


def _config(environ: Mapping[str, str]) -> tuple[Path, dict[str, Any]] | None:
    path = zenml_config_dir(environ) / "config.yaml"
    data = _read_yaml(path)
    return None if data is None else (path, data)


def _config_server(environ: Mapping[str, str]) -> tuple[Path, str] | None:
    """(config.yaml, server URL) when ZenML's configuration is connected to a server."""
    found = _config(environ)
    if found is None:
        return None
    path, data = found
    store = data.get("store")
    if not isinstance(store, dict) or str(store.get("type", "")).lower() != "rest":
        return None
    url = store.get("url")
    if not isinstance(url, str) or not url.strip().lower().startswith(("http://", "https://")):
        raise ConfigurationError(f"ZenML's configuration {path}: store.url is not an http(s) URL")
    return path, url.strip()


def discover(environ: Mapping[str, str]) -> Discovery:
    """The store to use with none given (see the module docs); ``url=None``: the local file."""
    explicit = environ.get(STORE_VARIABLE, "").strip()
    if explicit:
        return Discovery(explicit, STORE_VARIABLE)
    zenml_url = environ.get("ZENML_STORE_URL", "").strip()
    if zenml_url:
        if zenml_url.lower().startswith(("http://", "https://")):
            return Discovery("zenml+" + zenml_url, "ZENML_STORE_URL")
        return Discovery(None, "the local file store (ZENML_STORE_URL names no ZenML server)")
    server = _config_server(environ)
    if server is not None:
        return Discovery("zenml+" + server[1], f"ZenML's configuration {server[0]}")
    return Discovery(None, "the local file store (no ZenML server configured)")


def same_server(a: str, b: str) -> bool:
    return a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()


def saved_login(server: str, environ: Mapping[str, str]) -> SavedLogin | None:
    """The login ZenML's configuration holds for ``server`` (``http(s)://...``): from
    ``credentials.yaml``; an empty one when ZenML is connected to that server without a login
    kept (a ``NO_AUTH`` local server); ``None`` when ZenML knows nothing of it."""
    config_dir = zenml_config_dir(environ)
    credentials = _read_yaml(config_dir / "credentials.yaml") or {}
    for url, entry in credentials.items():
        if isinstance(url, str) and same_server(url, server) and isinstance(entry, dict):
            token = entry.get("api_token")
            access = token.get("access_token") if isinstance(token, dict) else None
            login = SavedLogin(
                api_key=_text(entry.get("api_key")),
                username=_text(entry.get("username")),
                password=_text(entry.get("password")),
                token=_text(access),
            )
            if login != SavedLogin():
                return login
    connected = _config_server(environ)
    if connected is not None and same_server(connected[1], server):
        return SavedLogin()
    return None


def active_stack_id(environ: Mapping[str, str]) -> tuple[uuid.UUID, str]:
    """The stack ZenML would run now, and where its id came from: ``ZENML_ACTIVE_STACK_ID``,
    else ``active_stack_id`` in ZenML's ``config.yaml``."""
    text = environ.get("ZENML_ACTIVE_STACK_ID", "").strip()
    source = "ZENML_ACTIVE_STACK_ID"
    if not text:
        found = _config(environ)
        if found is None:
            raise ConfigurationError(
                "no active ZenML stack: ZENML_ACTIVE_STACK_ID is not set and there is no "
                f"ZenML configuration at {zenml_config_dir(environ) / 'config.yaml'} "
                "(run `zenml login` and `zenml stack set NAME`)"
            )
        path, data = found
        text = str(data.get("active_stack_id") or "")
        source = f"ZenML's configuration {path}"
        if not text:
            raise ConfigurationError(f"{source} has no active_stack_id (zenml stack set NAME)")
    try:
        return uuid.UUID(text), source
    except ValueError:
        raise ConfigurationError(f"{source}: the active stack id is not a UUID") from None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
