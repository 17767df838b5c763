"""The store contract, in one place: the ``SecretStore`` protocol every store implements, what
a store can do beyond it, the write rules they share, and a base class with the plumbing.

Capabilities, all declared here:

- ``StoreCapabilities`` (the ``capabilities`` property): batched existence, its batch size,
  writable.
- ``BatchReader``: many secrets read per call (AWS's ``BatchGetSecretValue``).
- ``SupportsSecretsMetadata``: ids and change stamps from the list answers
  (``SecretStamp``), which the metadata cache uses to read only what changed.
- ``SupportsSources``: a store made of stores (``ChainStore``) says which one answered.
- ``SupportsDeletedState``: a store that can say which names it holds only as deleted.

Each optional one is a ``runtime_checkable`` protocol: the engine asks ``isinstance``.
``docs/stores.md`` is the contract in prose; the conformance suite
(``tests/store_conformance.py``) holds every shipped store to it."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from types import TracebackType
from typing import Protocol, runtime_checkable

import attrs
from typing_extensions import Self

from .._describe import attrs_repr, kind_of
from .._errors import ClosedError, ConfigurationError, ForbiddenError, StoreError
from .._secret import Secret


@attrs.frozen(repr=False)
class StoreCapabilities:
    """What a store can do; the engine plans its calls with this, the CLI refuses early."""

    __repr__ = attrs_repr

    #: ``secrets_exist`` answers for many names in few calls (else the engine asks it one
    #: name at a time, concurrently).
    batched_exists: bool = False
    #: The most names one existence call carries (``None``: no limit). The engine never sends
    #: more in one call; a store given more must still answer correctly.
    max_batch: int | None = None
    #: create, update and delete can work for some caller. ``False``: every write raises
    #: ``ForbiddenError`` without contacting anything, so a client can refuse before any work.
    #: ``True`` promises nothing about this caller's rights: the store may still answer a
    #: write with ``ForbiddenError``.
    writable: bool = False


@runtime_checkable
class SecretStore(Protocol):
    """An async secret store. ``docs/stores.md`` is the full contract; in short:

    - **Exact names.** Every method compares names exactly (case, spaces and all), never by
      prefix or by a folded case, whatever the backend's own search does.
    - **Errors are ours**, never a library's: ``SecretNotFoundError`` (a ``KeyError``) for a
      missing name, ``SecretExistsError`` for a create of a taken name, ``ForbiddenError``
      (``AuthenticationError`` when the credentials are refused), ``StoreUnavailableError``
      for transient failures (with ``retry_after`` in seconds when the backend says),
      ``StoreCorruptError`` for data that cannot be read, ``ConfigurationError`` for a name,
      key or value the rules refuse (``check_write``), ``ClosedError`` after ``aclose``, and
      ``StoreError`` for the rest. Library errors are chained with ``raise ... from``.
    - **Nothing secret shows**: no value, password, token or key in a message, ``repr``,
      ``description`` or log event. Names, keys, hosts and paths may show.
    - **Concurrency**: any number of calls may run at once from tasks of one event loop.

    Optional capabilities (declared in this module, detected with ``isinstance``):
    ``BatchReader`` (many reads per call), ``SupportsSecretsMetadata`` (a store whose list
    answers carry an id and a change stamp per secret offers ``async secrets_metadata(names)
    -> dict[name, SecretStamp]``, same calls and cost as ``secrets_exist``, no value read, and
    a ``metadata_scope`` property: the key-level validation then reads only secrets whose stamp
    changed, ``docs/engine.md``) and ``SupportsSources`` (a chain says which store answered).
    """

    @property
    def capabilities(self) -> StoreCapabilities:
        """What the store can do (see ``StoreCapabilities``); constant for the store's life."""
        ...

    @property
    def description(self) -> str:
        """Where the store is (a URL without credentials), safe to log and show."""
        ...

    async def get_secret(self, name: str) -> Secret:
        """The secret named exactly ``name``, with every value this caller may read.

        Keys whose values the caller may not read go in ``Secret.unreadable_keys``. No such
        secret: ``SecretNotFoundError``.
        """
        ...

    async def secrets_exist(self, names: Sequence[str]) -> frozenset[str]:
        """Which of ``names`` exist, by exact name, without reading any value.

        Duplicates are allowed; no names costs nothing and answers ``frozenset()``.
        """
        ...

    async def list_secrets(self) -> list[str]:
        """Every secret name this caller can see, each once, sorted by ``str`` order.

        Reads no value.
        """
        ...

    async def create_secret(self, name: str, values: Mapping[str, str]) -> None:
        """A new secret ``name`` holding exactly ``values`` (which may be empty).

        The name is taken: ``SecretExistsError``, and the existing secret is left as it was.
        """
        ...

    async def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        """Set ``values`` (keys added or replaced), then remove ``remove_keys``; other keys stay.

        Removing a key the secret does not have is not an error; a key both set and removed is
        refused (``ConfigurationError``). No such secret: ``SecretNotFoundError``, and nothing
        is created.
        """
        ...

    async def delete_secret(self, name: str) -> None:
        """Delete the secret named exactly ``name``. No such secret: ``SecretNotFoundError``."""
        ...

    async def aclose(self) -> None:
        """Release connections and files. Idempotent; afterwards every call raises
        ``ClosedError``."""
        ...

    async def __aenter__(self) -> Self:
        """The store itself; ``ClosedError`` if it was closed."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """``aclose()``."""
        ...


@runtime_checkable
class BatchReader(Protocol):
    """A store that reads many secrets per call.

    The engine then reads a key-level validation's names in chunks of ``max_read_batch``, one
    call per chunk, without a separate existence pass: the batch answer says which are missing.
    """

    @property
    def max_read_batch(self) -> int:
        """How many names one ``get_secrets`` call may carry."""
        ...

    async def get_secrets(self, names: Sequence[str]) -> Mapping[str, Secret | StoreError]:
        """Each name's secret, or its own error (``SecretNotFoundError`` when missing,
        ``ForbiddenError``, ...). A failure of the whole call is raised instead."""
        ...


@attrs.frozen(repr=False)
class SecretStamp:
    """What a store's list answer says of one secret: no value, no key name.

    ``settled``: the store vouches that a read started after this answer sees the secret as
    of ``stamp`` or later, with every change stamped ``stamp`` complete (see
    ``stacksecrets._metacache``).
    """

    __repr__ = attrs_repr

    id: str
    stamp: str
    settled: bool = False


@runtime_checkable
class SupportsSecretsMetadata(Protocol):
    """The optional store hook the metadata cache needs (see ``SecretStore``)."""

    @property
    def metadata_scope(self) -> str | None:
        """Who asks where, safe to store: the store and the user (``None``: unknown yet)."""
        ...

    async def secrets_metadata(self, names: Sequence[str]) -> dict[str, SecretStamp]:
        """Id and stamp of each of ``names`` that exists (absent: missing), read no value."""
        ...


@runtime_checkable
class SupportsDeletedState(Protocol):
    """A store whose existence call counts names it holds only in a deleted state (Vault's
    soft-deleted latest version: the metadata stays, so ``LIST`` shows the name, while a read
    finds nothing). A chain asks it, so both levels answer from the same store."""

    async def deleted_secrets(self, names: Sequence[str]) -> frozenset[str]:
        """Which of ``names`` the store holds only in a deleted state (one call per name)."""
        ...


@runtime_checkable
class SupportsSources(Protocol):
    """A store made of stores that says which one answered for a name (the report shows it)."""

    def source_of(self, name: str) -> str | None:
        """The description of the store that last answered for ``name``, if any."""
        ...


def _check_text(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate: no store that speaks UTF-8 (ZenML, Vault, AWS) can hold it.
        raise ConfigurationError(f"{what} is not valid Unicode text (a lone surrogate)") from None


def check_name(name: str) -> None:
    """``ConfigurationError`` unless ``name`` is a non-empty string of valid Unicode."""
    if not isinstance(name, str):
        raise ConfigurationError(f"a secret name must be a string, found {kind_of(name)}")
    if not name:
        raise ConfigurationError("a secret name must be a non-empty string")
    _check_text(name, f"the secret name {name!r}")


def check_name_length(name: str, limit: int, backend: str) -> None:
    """A name longer than ``backend`` stores is refused before any request, naming the limit."""
    if len(name) > limit:
        raise ConfigurationError(
            f"the secret name is {len(name)} characters long; {backend} stores names of at "
            f"most {limit}"
        )


def check_write(
    name: str, values: Mapping[str, str], remove_keys: Collection[str] = ()
) -> tuple[dict[str, str], tuple[str, ...]]:
    """The rules every store applies to a create or update, before it changes anything.

    A name is a non-empty string; keys are non-empty strings; values are strings (empty is
    fine); all of them valid Unicode (no lone surrogate, so every UTF-8 store can hold them).
    ``remove_keys`` is a collection of keys (not one string), none of them also set.
    Returns copies of ``values`` and ``remove_keys``; anything else raises
    ``ConfigurationError`` naming the secret and the key, never a value.
    """
    check_name(name)
    if not isinstance(values, Mapping):
        raise ConfigurationError(
            f"the values of secret {name!r} must be a mapping of keys to strings, "
            f"found {kind_of(values)}"
        )
    copied = dict(values)
    for key, value in copied.items():
        if not isinstance(key, str) or not key:
            found = "an empty string" if isinstance(key, str) else kind_of(key)
            raise ConfigurationError(
                f"a key of secret {name!r} must be a non-empty string, found {found}"
            )
        _check_text(key, f"the key {key!r} of secret {name!r}")
        if not isinstance(value, str):
            raise ConfigurationError(
                f"the value of key {key!r} of secret {name!r} must be a string, "
                f"found {kind_of(value)}"
            )
        _check_text(value, f"the value of key {key!r} of secret {name!r}")
    if isinstance(remove_keys, (str, bytes)):
        raise ConfigurationError(
            f"remove_keys for secret {name!r} must be a collection of keys, not one string"
        )
    removed = tuple(remove_keys)
    both = sorted(set(removed) & copied.keys())
    if both:
        raise ConfigurationError(
            f"the key {both[0]!r} of secret {name!r} is both set and removed in one update"
        )
    return copied, removed


class StoreBase:
    """Plumbing for store implementations: context management, the closed check, a
    ``secrets_exist`` built on ``list_secrets``, and writes refused for read-only stores.

    A subclass implements ``get_secret`` and ``list_secrets``, and the writes when it declares
    ``writable``; it calls ``_check_open()`` first in each method.
    """

    _closed: bool = False

    @property
    def capabilities(self) -> StoreCapabilities:
        return StoreCapabilities()

    @property
    def description(self) -> str:
        return type(self).__name__

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"the store {self.description} is closed")

    def _refuse_write(self) -> None:
        self._check_open()
        raise ForbiddenError(f"the store {self.description} is read-only")

    async def get_secret(self, name: str) -> Secret:
        raise NotImplementedError(f"{type(self).__name__} must implement get_secret")

    async def list_secrets(self) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} must implement list_secrets")

    async def secrets_exist(self, names: Sequence[str]) -> frozenset[str]:
        """Default: one ``list_secrets`` call, compared by exact name."""
        self._check_open()
        if not names:
            return frozenset()
        existing = set(await self.list_secrets())
        return frozenset(name for name in names if name in existing)

    async def create_secret(self, name: str, values: Mapping[str, str]) -> None:
        self._refuse_write()

    async def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        self._refuse_write()

    async def delete_secret(self, name: str) -> None:
        self._refuse_write()

    async def aclose(self) -> None:
        self._closed = True

    async def __aenter__(self) -> Self:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"

    def __reduce__(self) -> tuple[object, ...]:
        # A store holds credentials (a token, a Fernet key) or values it has read: pickling
        # would write them out in the clear. Open a store in each process instead.
        raise TypeError(
            f"{type(self).__name__} cannot be pickled: it may hold credentials or secret "
            "values; open the store again in the other process"
        )


def merge_update(
    current: Mapping[str, str], values: Mapping[str, str], removed: Collection[str]
) -> dict[str, str]:
    """The values after an update by the store contract: ``removed`` keys go (absent ones are
    no error), then ``values`` are set."""
    merged = {key: value for key, value in current.items() if key not in set(removed)}
    merged.update(values)
    return merged
