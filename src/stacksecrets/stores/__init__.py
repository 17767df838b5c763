"""Secret stores: the protocol, and the stores stacksecrets ships.

A store is chosen by URL:

- ``file:///path/to/secrets.json``: the embedded default, a local file (``FileStore``).
- ``memory://``: an empty in-memory store, for tests and examples (``MemoryStore``).
- ``zenml+http://host:port`` / ``zenml+https://...``: a ZenML server (``ZenMLStore``).
- ``aws-sm://?region=REGION&prefix=PREFIX``: AWS Secrets Manager (``AwsSecretsManagerStore``,
  the ``aws`` extra; see ``docs/aws.md``).

With no URL, ``STACKSECRETS_STORE`` is used, else the default local file under the user's
data directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from .._errors import ConfigurationError
from ._base import SecretStore, StoreBase, StoreCapabilities
from ._batched import BatchReader
from ._file import FileStore
from ._memory import MemoryStore

if TYPE_CHECKING:
    from ._aws import AwsSecretsManagerStore
    from ._zenml import ZenMLStore


def __getattr__(name: str) -> Any:
    # httpx takes a quarter of a second to import: only pay for it when a ZenML store is used.
    if name == "ZenMLStore":
        from ._zenml import ZenMLStore

        return ZenMLStore
    # botocore too, and it is an optional extra.
    if name == "AwsSecretsManagerStore":
        from ._aws import AwsSecretsManagerStore

        return AwsSecretsManagerStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


STORE_VARIABLE = "STACKSECRETS_STORE"

__all__ = [
    "STORE_VARIABLE",
    "AwsSecretsManagerStore",
    "BatchReader",
    "FileStore",
    "MemoryStore",
    "SecretStore",
    "StoreBase",
    "StoreCapabilities",
    "ZenMLStore",
    "default_store_path",
    "open_store",
    "store_url",
]


def default_store_path() -> Path:
    """Where the default local store lives: ``<user data dir>/stacksecrets/secrets.json``."""
    return Path(platformdirs.user_data_dir("stacksecrets", appauthor=False)) / "secrets.json"


def store_url(url: str | None = None, *, environ: Mapping[str, str] | None = None) -> str:
    """The store URL in force: ``url``, else ``STACKSECRETS_STORE``, else the default file."""
    env = os.environ if environ is None else environ
    if url is None or not url.strip():
        url = env.get(STORE_VARIABLE, "").strip() or None
    if url is None:
        return default_store_path().as_uri()
    return url.strip()


def open_store(url: str | None = None, *, environ: Mapping[str, str] | None = None) -> SecretStore:
    """The store for ``url`` (see the module docs). The caller closes it."""
    env = os.environ if environ is None else environ
    resolved = store_url(url, environ=env)
    scheme, sep, _ = resolved.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ConfigurationError(
            f"store URL {_safe(resolved)!r} has no scheme; use file:///path/secrets.json, "
            "memory://, or zenml+https://host"
        )
    if scheme == "memory":
        return MemoryStore()
    if scheme == "file":
        return FileStore.from_url(resolved)
    if scheme in {"zenml", "zenml+http", "zenml+https"}:
        from ._zenml import ZenMLStore

        return ZenMLStore.from_url(resolved, environ=env)
    if scheme == "aws-sm":
        from ._aws import AwsSecretsManagerStore

        return AwsSecretsManagerStore.from_url(resolved)
    raise ConfigurationError(
        f"store URL scheme {scheme!r} is not supported; use file://, memory://, zenml+http://, "
        "zenml+https:// or aws-sm://"
    )


def _safe(url: str) -> str:
    """``url`` without anything after the scheme's authority that could be a credential."""
    scheme, sep, rest = url.partition("://")
    if not sep:  # no scheme, but perhaps still user:password@host?query: keep only the host
        return url.rsplit("@", 1)[-1].split("?", 1)[0][:40]
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1].split("?", 1)[0]
    return f"{scheme}://{host}"
