"""A chain of stores looked up in order (``ChainStore``; several ``--store`` options).

- **Reads**: a secret is answered by the first store that has it, whole: the chain never merges
  the keys of one name across stores (a key missing in the store that answered is missing).
- **Existence**: each store's own batched existence call, in order, for the names not found
  yet: at most one call per store for any number of names, none once every name is found.
- **Errors stop the look-up.** A store that fails for a name (``ForbiddenError``,
  ``StoreUnavailableError``, any ``StoreError`` other than not found) is not skipped: the chain
  raises that error, because a later store's answer could be the wrong secret (the earlier one
  may hold the name, and shadow the later one, once it answers again). For ``secrets_exist``
  the error stands for every name of that call still unanswered. One exception: a store that
  refuses to *read* a name (``ForbiddenError``, not an authentication error) is asked whether
  it holds it at all (its existence call, which a list-only caller may make); when it answers
  that it does not, the look-up goes on to the next store.
- **Writes** go to the first store only (``writable`` is the first store's); an update or
  delete of a name that only a later store holds is not found in the first.
- ``list_secrets`` is the union of every store's names.
- **Deleted is absent at both levels.** A store that holds a name only in a deleted state
  (Vault's soft-deleted latest version, which its existence call still counts:
  ``SupportsDeletedState``) is looked past at the existence level as at a read, so both levels
  answer from the same store; ``source_of`` then says that the earlier store holds the name
  as deleted, and the report shows it.

The chain owns its stores: closing it closes every one. ``source_of(name)`` says which store
answered for a name last (its description, without credentials), for the report.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from .._errors import (
    AuthenticationError,
    ConfigurationError,
    ForbiddenError,
    SecretNotFoundError,
    StoreError,
)
from .._secret import Secret
from ._base import (
    SecretStore,
    StoreBase,
    StoreCapabilities,
    SupportsDeletedState,
    SupportsSources,
)

__all__ = ["ChainStore", "SupportsDeletedState", "SupportsSources"]


class ChainStore(StoreBase):
    """Several stores, looked up in order; writes go to the first. Closing it closes them."""

    def __init__(self, stores: Sequence[SecretStore]) -> None:
        stores = list(stores)
        if not stores:
            raise ConfigurationError("a chain of stores needs at least one store")
        for store in stores:
            if not isinstance(store, SecretStore):
                raise ConfigurationError(
                    f"a chain of stores holds stores, found {type(store).__name__}"
                )
        self.stores: tuple[SecretStore, ...] = tuple(stores)
        self._sources: dict[str, str] = {}
        #: name -> the descriptions of earlier stores that hold it only as deleted.
        self._deleted_in: dict[str, list[str]] = {}

    @property
    def capabilities(self) -> StoreCapabilities:
        every = [store.capabilities for store in self.stores]
        batches = [c.max_batch for c in every if c.max_batch is not None]
        return StoreCapabilities(
            batched_exists=all(c.batched_exists for c in every),
            max_batch=min(batches) if batches else None,
            writable=every[0].writable,
        )

    @property
    def description(self) -> str:
        return "chain(" + ", ".join(store.description for store in self.stores) + ")"

    def source_of(self, name: str) -> str | None:
        """The description of the store that last answered that ``name`` exists (or ``None``),
        and the earlier stores that hold it only as deleted, if any."""
        source = self._sources.get(name)
        deleted = self._deleted_in.get(name)
        if source is None or not deleted:
            return source
        return f"{source} ({', '.join(deleted)} holds it only as deleted)"

    async def get_secret(self, name: str) -> Secret:
        self._check_open()
        deleted: list[str] = []
        for index, store in enumerate(self.stores):
            try:
                secret = await store.get_secret(name)
            except SecretNotFoundError:
                if index + 1 < len(self.stores) and name in await _deleted(store, [name]):
                    deleted.append(store.description)
                continue
            except ForbiddenError as refused:
                if isinstance(refused, AuthenticationError) or not await _says_absent(store, name):
                    raise
                continue
            self._sources[name] = store.description
            self._note_deleted(name, deleted)
            return secret
        self._sources.pop(name, None)
        raise SecretNotFoundError(name, store=self.description)

    def _note_deleted(self, name: str, deleted: list[str]) -> None:
        if deleted:
            self._deleted_in[name] = deleted
        else:
            self._deleted_in.pop(name, None)

    async def secrets_exist(self, names: Sequence[str]) -> frozenset[str]:
        self._check_open()
        wanted = list(dict.fromkeys(names))
        found: set[str] = set()
        deleted: dict[str, list[str]] = {}
        for index, store in enumerate(self.stores):
            if not wanted:
                break
            here = set(await store.secrets_exist(wanted)).intersection(wanted)
            if here and index + 1 < len(self.stores):
                # Held only as deleted here: absent, as a read would find it.
                for name in await _deleted(store, sorted(here)):
                    here.discard(name)
                    deleted.setdefault(name, []).append(store.description)
            for name in here:
                self._sources[name] = store.description
                self._note_deleted(name, deleted.get(name, []))
            found.update(here)
            wanted = [name for name in wanted if name not in here]
        for name in wanted:
            self._sources.pop(name, None)
            self._deleted_in.pop(name, None)
        return frozenset(found)

    async def list_secrets(self) -> list[str]:
        self._check_open()
        names: set[str] = set()
        for store in self.stores:
            names.update(await store.list_secrets())
        return sorted(names)

    async def create_secret(self, name: str, values: Mapping[str, str]) -> None:
        self._check_open()
        await self.stores[0].create_secret(name, values)

    async def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        self._check_open()
        await self.stores[0].update_secret(name, values, remove_keys=remove_keys)

    async def delete_secret(self, name: str) -> None:
        self._check_open()
        await self.stores[0].delete_secret(name)
        self._sources.pop(name, None)
        self._deleted_in.pop(name, None)

    async def aclose(self) -> None:
        """Close every store of the chain (each even if another fails); idempotent."""
        if self._closed:
            return
        self._closed = True
        failure: BaseException | None = None
        for store in self.stores:
            try:
                await store.aclose()
            except Exception as exc:  # noqa: BLE001 - close the others first
                failure = failure or exc
        if failure is not None:
            raise failure


async def _says_absent(store: SecretStore, name: str) -> bool:
    """Whether ``store``, which refused to read ``name``, says by its existence call (which a
    list-only caller may make) that it does not hold it. Any failure there: not known."""
    try:
        return name not in await store.secrets_exist([name])
    except StoreError:
        return False


async def _deleted(store: SecretStore, names: list[str]) -> frozenset[str]:
    """Which of ``names`` ``store`` holds only in a deleted state (none for a store that
    cannot say)."""
    if not isinstance(store, SupportsDeletedState):
        return frozenset()
    try:
        return await store.deleted_secrets(names)
    except ForbiddenError as refused:
        if isinstance(refused, AuthenticationError):
            raise
        # A caller who may list but not read metadata: it cannot tell, as before.
        return frozenset()
