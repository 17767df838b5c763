"""ZenML's local database as a secret store (``zenml+local://``), through ZenML's own client.

Without a server (never logged in, or after ``zenml logout --local``), ZenML keeps its secrets
in its local database (``config.yaml``: ``store.type: sql``, a SQLite file under ZenML's
configuration folder), or in the database ``ZENML_STORE_URL`` names. Only ZenML's own Python
code reads it (its secrets may even live in another secrets backend the database configures),
so this store calls ZenML's client in this process: ``zenml`` must be importable here, and the
store says so, and what to do, when it is not. ZenML's calls block: they run on a worker thread
(``anyio.to_thread``), one at a time (SQLite serializes writers anyway).

Where ZenML's client is loose, this store is exact, as the server store (``_zenml.py``) is:
``equals:`` and ``oneof:`` name filters, the answer compared name by name again here (ZenML's
``Client.get_secret`` matches a substring of the name or a prefix of the id), and a public
secret before a private one of the same name, the order of ZenML's run time
(``Client.get_secret_by_name_and_private_status``).

ZenML's client reads the process environment (``ZENML_CONFIG_PATH``, ``ZENML_STORE_URL``), not
the ``environ`` mapping a store opener is given.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from .._errors import (
    ConfigurationError,
    ForbiddenError,
    SecretExistsError,
    SecretNotFoundError,
    StoreError,
    StoreUnavailableError,
)
from .._secret import Secret
from ._base import StoreBase, StoreCapabilities, check_name_length, check_write
from ._discovery import zenml_config_dir
from ._urls import StoreURL

__all__ = ["ZenMLLocalStore"]

#: Names per ``oneof:`` filter: well under SQLite's limit of bound parameters.
MAX_NAMES_PER_QUERY = 500
#: ZenML's ``STR_FIELD_MAX_LENGTH``: the longest secret name it stores.
MAX_NAME_LENGTH = 255
#: The largest page ZenML's filters accept.
PAGE_SIZE = 10_000

_T = TypeVar("_T")


def zenml_importable() -> bool:
    """Whether ``import zenml`` can work in this interpreter (nothing is imported)."""
    return importlib.util.find_spec("zenml") is not None


def not_importable_message(environ: Mapping[str, str]) -> str:
    """Why ``zenml+local://`` cannot be used here, and what to do instead."""
    database = environ.get("ZENML_STORE_URL", "").strip()
    where = (
        "ZENML_STORE_URL names a database"
        if database
        else f"ZenML's configuration {zenml_config_dir(environ) / 'config.yaml'} has no server"
    )
    return (
        f"ZenML keeps its secrets in its local database ({where}), which only ZenML's own "
        f"Python code can read, and zenml cannot be imported by this Python "
        f"({sys.executable}). Install stacksecrets into ZenML's environment (docs/install.md), "
        "or start a local ZenML server with `zenml login --local`, or choose another store "
        "with --store / STACKSECRETS_STORE"
    )


class ZenMLLocalStore(StoreBase):
    """The secrets ZenML's client sees in this process when it has no server (see the module
    docs). ZenML is imported, and its client started, at the first call."""

    def __init__(self) -> None:
        if not zenml_importable():
            raise ConfigurationError(not_importable_message(os.environ))
        self._limiter = anyio.CapacityLimiter(1)
        self._zen_store: Any = None

    @classmethod
    def from_url(cls, url: StoreURL, /, *, environ: Mapping[str, str]) -> ZenMLLocalStore:
        """``zenml+local://``: nothing after ``://``; ZenML's configuration names the database."""
        if url.path:
            raise ConfigurationError(
                "the ZenML local store URL is just zenml+local://: the database is the one "
                "ZenML's configuration (ZENML_CONFIG_PATH, ZENML_STORE_URL) names"
            )
        if not zenml_importable():
            raise ConfigurationError(not_importable_message(environ))
        return cls()

    @property
    def capabilities(self) -> StoreCapabilities:
        return StoreCapabilities(batched_exists=True, max_batch=MAX_NAMES_PER_QUERY, writable=True)

    @property
    def description(self) -> str:
        return "zenml+local://"

    # ------------------------------------------------------------------ ZenML's client

    async def _call(self, work: Callable[[Any], _T]) -> _T:
        """``work(zen_store)`` on a worker thread, one call at a time; ZenML's and the
        database's errors as ours."""
        self._check_open()
        return await anyio.to_thread.run_sync(self._run, work, limiter=self._limiter)

    def _run(self, work: Callable[[Any], _T]) -> _T:
        if self._zen_store is None:
            self._zen_store = _open_zen_store()
        try:
            return work(self._zen_store)
        except StoreError:
            raise
        except Exception as exc:
            raise _ours(exc) from exc

    # ------------------------------------------------------------------ secrets

    async def secrets_exist(self, names: Sequence[str]) -> frozenset[str]:
        self._check_open()
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return frozenset()

        def existing(zen_store: Any) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(wanted), MAX_NAMES_PER_QUERY):
                chunk = wanted[start : start + MAX_NAMES_PER_QUERY]
                found.update(item.name for item in _list_all(zen_store, _oneof(chunk)))
            return found

        found = await self._call(existing)
        # SQL may fold case (MySQL); the contract does not.
        return frozenset(name for name in wanted if name in found)

    async def get_secret(self, name: str) -> Secret:
        self._check_open()

        def read(zen_store: Any) -> Secret:
            response = zen_store.get_secret(_find_id(zen_store, name), hydrate=True)
            values: dict[str, str] = {}
            unreadable: set[str] = set()
            for key, value in (response.values or {}).items():
                if value is None:
                    unreadable.add(str(key))
                else:
                    values[str(key)] = value.get_secret_value()
            return Secret(name, values, unreadable_keys=unreadable)

        return await self._call(read)

    async def list_secrets(self) -> list[str]:
        self._check_open()
        return await self._call(lambda zen_store: sorted({i.name for i in _list_all(zen_store)}))

    async def create_secret(self, name: str, values: Mapping[str, str]) -> None:
        self._check_open()
        new, _ = check_write(name, values)
        check_name_length(name, MAX_NAME_LENGTH, "ZenML")

        def create(zen_store: Any) -> None:
            secret_request = _module("zenml.models").SecretRequest
            if any(
                item.name == name and not item.private for item in _list_all(zen_store, _eq(name))
            ):
                raise SecretExistsError(name)
            try:
                zen_store.create_secret(secret_request(name=name, values=new, private=False))
            except Exception as exc:
                if type(exc).__name__ == "EntityExistsError":
                    raise SecretExistsError(name) from exc
                raise

        await self._call(create)

    async def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        self._check_open()
        new, removed = check_write(name, values, remove_keys)

        def update(zen_store: Any) -> None:
            secret_str = _module("pydantic").SecretStr
            secret_id = _find_id(zen_store, name)
            # ZenML's patch: keys given are set, a key with None is removed, others stay.
            patch: dict[str, Any] = {key: secret_str(value) for key, value in new.items()}
            patch.update(dict.fromkeys(removed))
            zen_store.update_secret(secret_id, _module("zenml.models").SecretUpdate(values=patch))

        await self._call(update)

    async def delete_secret(self, name: str) -> None:
        self._check_open()
        await self._call(lambda zen_store: zen_store.delete_secret(_find_id(zen_store, name)))


def _open_zen_store() -> Any:
    """ZenML's store of this process's client, which must be a database, not a server."""
    try:
        client = _module("zenml.client").Client
        sql_zen_store = _module("zenml.zen_stores.sql_zen_store").SqlZenStore
    except ImportError as exc:
        raise ConfigurationError(
            f"zenml cannot be imported by this Python ({sys.executable}): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    zen_store = client().zen_store
    if not isinstance(zen_store, sql_zen_store):
        url = getattr(getattr(zen_store, "config", None), "url", "") or "a server"
        server = str(url).split("@")[-1]
        raise ConfigurationError(
            f"zenml+local:// reads ZenML's local database, but ZenML is connected to {server}: "
            "use zenml+https://HOST (or no --store: it is found from ZenML's configuration)"
        )
    return zen_store


def _module(name: str) -> Any:
    """A module of ZenML's (or of its pydantic), imported when first used; typed ``Any``:
    stacksecrets does not depend on zenml."""
    return importlib.import_module(name)


def _eq(name: str) -> dict[str, str]:
    return {"name": f"equals:{name}"}


def _oneof(names: Sequence[str]) -> dict[str, str]:
    # ZenML reads the list after oneof: with json.loads; names with commas or quotes are safe.
    return {"name": "oneof:" + json.dumps(list(names))}


def _list_all(zen_store: Any, filters: Mapping[str, str] | None = None) -> list[Any]:
    """Every secret (without values) the filters match, page after page."""
    secret_filter = _module("zenml.models").SecretFilter
    items: list[Any] = []
    page = 1
    while True:
        answer = zen_store.list_secrets(
            secret_filter(page=page, size=PAGE_SIZE, **(filters or {})), hydrate=False
        )
        items.extend(answer.items)
        if page >= answer.total_pages:
            return items
        page += 1


def _find_id(zen_store: Any, name: str) -> uuid.UUID:
    """The id of the secret ZenML's run time uses: exact name, public before private."""
    exact = [item for item in _list_all(zen_store, _eq(name)) if item.name == name]
    if not exact:
        raise SecretNotFoundError(name, store="zenml+local://")
    exact.sort(key=lambda item: bool(item.private))
    return uuid.UUID(str(exact[0].id))


def _ours(exc: Exception) -> StoreError | ConfigurationError:
    """A ZenML, pydantic or database error as one of ours; only its type is shown (a
    validation error of pydantic quotes the input, which may be a value)."""
    kind = type(exc).__name__
    module = type(exc).__module__
    where = "ZenML's local database"
    if kind == "ValidationError":
        return ConfigurationError(f"{where} refuses the secret: ZenML's model does not accept it")
    if kind in {"AuthorizationException", "IllegalOperationError"}:
        return ForbiddenError(f"{where} refuses this operation ({kind})")
    if kind in {"KeyError", "EntityExistsError"}:
        return StoreError(f"{where} answered {kind}")
    if module.startswith("sqlalchemy") and kind in {"OperationalError", "TimeoutError"}:
        return StoreUnavailableError(f"{where} is busy or unreachable ({kind})")
    return StoreError(f"{where} failed: {module}.{kind}")
