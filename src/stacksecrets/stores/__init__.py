"""Secret stores, for those who use them: ``open_store``, the stores stacksecrets ships, and
their URLs (``StoreURL``, ``parse_store_url``).

Writing a store? ``stacksecrets.stores.contract`` holds what an author needs in one import:
the ``SecretStore`` protocol, ``StoreBase``, the capabilities, the write rules, the opener shape
and the errors to raise (``docs/stores.md``). The protocol names are importable from here too.

A store is chosen by URL:

- ``file:///path/to/secrets.json``: the embedded default, a local file (``FileStore``).
- ``memory://``: an empty in-memory store, for tests and examples (``MemoryStore``).
- ``zenml+http://host:port`` / ``zenml+https://...``: a ZenML server (``ZenMLStore``); its
  stacks are read by ``ZenMLStackSource``.
- ``vault+https://host:8200/MOUNT`` / ``vault:///MOUNT`` (``VAULT_ADDR``): a KV version 2 engine
  of Vault or OpenBao (``VaultStore``).
- ``aws-sm://?region=REGION&prefix=PREFIX``: AWS Secrets Manager (``AwsSecretsManagerStore``,
  the ``aws`` extra; see ``docs/aws.md``).
- ``env://`` / ``env://?prefix=MYAPP_``: read-only secrets from environment variables,
  ``STACKSECRETS_SECRET_<NAME>__<KEY>=value`` (``EnvStore``).
- any other scheme: a third-party store registered under the ``stacksecrets.stores`` entry
  points.

Several URLs (a list) make a chain (``ChainStore``): each secret is answered by the first store
that has it, writes go to the first.

With no URL, the store is found as ZenML finds its server (``stores._discovery``):
``STACKSECRETS_STORE``, else ``ZENML_STORE_URL`` (a step's environment), else ZenML's
configuration when it is logged in to a server (``zenml login``), else the default local file
under the user's data directory. ``parse_store_url`` reads a URL as every store does
(``StoreURL`` never shows its credentials); the scheme table is ``stores._urls.SCHEMES``, each
scheme pointing at its store's ``from_url(url, /, *, environ)``, the one opener shape.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError
from .._logging import logger
from . import _urls
from ._base import SecretStore, StoreBase, StoreCapabilities, check_write
from ._batched import BatchReader
from ._urls import StoreURL, parse_store_url

if TYPE_CHECKING:
    from ._aws import AwsSecretsManagerStore
    from ._chain import ChainStore
    from ._env import EnvStore
    from ._file import FileStore
    from ._memory import MemoryStore
    from ._vault import VaultStore
    from ._zenml import ZenMLStore
    from ._zenml_stacks import ZenMLStackSource

#: Where each store class lives, imported on first use: a command pays only for the store it
#: opens (httpx takes a quarter of a second to import, botocore more, and it is an optional
#: extra).
_SOURCES = {
    "AwsSecretsManagerStore": "._aws",
    "ChainStore": "._chain",
    "EnvStore": "._env",
    "FileStore": "._file",
    "MemoryStore": "._memory",
    "VaultStore": "._vault",
    "ZenMLStackSource": "._zenml_stacks",
    "ZenMLStore": "._zenml",
}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


#: The environment variable naming the store URL used when none is given.
STORE_VARIABLE = "STACKSECRETS_STORE"

__all__ = [
    "STORE_VARIABLE",
    "AwsSecretsManagerStore",
    "BatchReader",
    "ChainStore",
    "EnvStore",
    "FileStore",
    "MemoryStore",
    "SecretStore",
    "StoreBase",
    "StoreCapabilities",
    "StoreURL",
    "VaultStore",
    "ZenMLStackSource",
    "ZenMLStore",
    "check_write",
    "default_store_path",
    "open_store",
    "parse_store_url",
    "store_url",
]


def default_store_path() -> Path:
    """Where the default local store lives: ``<user data dir>/stacksecrets/secrets.json``."""
    import platformdirs  # on first use: start-up pays only for what a command uses

    return Path(platformdirs.user_data_dir("stacksecrets", appauthor=False)) / "secrets.json"


def store_url(url: str | None = None, *, environ: Mapping[str, str] | None = None) -> str:
    """The store URL in force: ``url``, else the one found (see the module docs)."""
    env = os.environ if environ is None else environ
    if not isinstance(url, str) and url is not None:
        raise ConfigurationError(f"a store URL is a string, found {type(url).__name__}")
    if url is not None and url.strip():
        return url.strip()
    from . import _discovery

    found = _discovery.discover(env).url
    return default_store_path().as_uri() if found is None else found


def open_store(
    url: str | Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> SecretStore:
    """The store for ``url``, else the one found (see the module docs); for several URLs, a
    ``ChainStore`` of them in that order. The caller closes it."""
    env = os.environ if environ is None else environ
    if url is not None and not isinstance(url, str):
        urls = list(url)
        if len(urls) > 1:
            for one in urls:
                if not isinstance(one, str) or not one.strip():
                    raise ConfigurationError(
                        "every store of a chain is given by a non-empty URL "
                        "(for store objects, use ChainStore([store, ...]))"
                    )
            from ._chain import ChainStore

            # Stores connect on first use: one that fails to open leaves nothing open.
            return ChainStore([_urls.open_url(one.strip(), environ=env) for one in urls])
        url = urls[0] if urls else None
        if url is not None and not isinstance(url, str):
            raise ConfigurationError(
                f"a store URL is a string, found {type(url).__name__} "
                "(for store objects, use ChainStore([store, ...]))"
            )
    if url is not None and url.strip():
        return _urls.open_url(url.strip(), environ=env)
    from . import _discovery
    from ._file import FileStore

    found = _discovery.discover(env)
    if found.url is not None:
        logger.info("stacksecrets.store", store=_urls.redact(found.url), found_by=found.source)
        return _urls.open_url(found.url, environ=env)
    # The default store is empty until its first write; a store file the user named must
    # exist for reads (a typo is not an empty store).
    default = default_store_path().as_uri()
    logger.info("stacksecrets.store", store=default, found_by=found.source)
    return FileStore.from_url(default, environ=env, missing_ok=True)
