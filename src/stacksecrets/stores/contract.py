"""What a store author needs: the contract every store keeps, in one import.

``stacksecrets.stores`` is for those who *use* stores (``open_store``, the store classes,
``StoreURL``); this module is for those who *write* one (``docs/stores.md``, "Writing a
store"):

- the protocol and its plumbing: ``SecretStore``, ``StoreBase``, ``StoreCapabilities``;
- the optional capabilities, each detected with ``isinstance``: ``BatchReader`` (many reads
  per call), ``SupportsSecretsMetadata`` with ``SecretStamp`` (ids and change stamps for the
  metadata cache), ``SupportsSources`` (a store of stores says which answered),
  ``SupportsDeletedState`` (names held only as deleted, which a chain looks past);
- the shared write rules: ``check_write`` (and ``check_name``, ``merge_update``);
- the opener every scheme has, ``StoreOpener``: ``(url: StoreURL, /, *, environ) ->
  SecretStore``, registered under the ``stacksecrets.stores`` entry points;
- the errors a store raises, and nothing else (``StoreUnavailableError(throttled=True,
  retry_after=...)`` when the backend said slow down);
- the batching helpers the shipped stores share: ``cut`` and ``at_once``.

The conformance expectations are ``tests/store_conformance.py`` (every shipped store runs it).
"""

from __future__ import annotations

from .._errors import (
    AuthenticationError,
    ClosedError,
    ConfigurationError,
    ForbiddenError,
    SecretExistsError,
    SecretNotFoundError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from .._secret import Secret
from ._base import (
    BatchReader,
    SecretStamp,
    SecretStore,
    StoreBase,
    StoreCapabilities,
    SupportsDeletedState,
    SupportsSecretsMetadata,
    SupportsSources,
    check_name,
    check_write,
    merge_update,
)
from ._batched import at_once, cut
from ._urls import StoreOpener, StoreURL, parse_store_url

__all__ = [
    "AuthenticationError",
    "BatchReader",
    "ClosedError",
    "ConfigurationError",
    "ForbiddenError",
    "Secret",
    "SecretExistsError",
    "SecretNotFoundError",
    "SecretStamp",
    "SecretStore",
    "StoreBase",
    "StoreCapabilities",
    "StoreCorruptError",
    "StoreError",
    "StoreOpener",
    "StoreURL",
    "StoreUnavailableError",
    "SupportsDeletedState",
    "SupportsSecretsMetadata",
    "SupportsSources",
    "at_once",
    "check_name",
    "check_write",
    "cut",
    "merge_update",
    "parse_store_url",
]
