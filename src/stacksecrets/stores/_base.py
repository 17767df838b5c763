"""The ``SecretStore`` protocol every store implements, and a base class with the plumbing."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from types import TracebackType
from typing import Protocol, runtime_checkable

import attrs
from typing_extensions import Self

from .._errors import ClosedError, ForbiddenError
from .._secret import Secret


@attrs.frozen
class StoreCapabilities:
    """What a store can do; the engine plans its calls with this."""

    #: ``secrets_exist`` answers for many names with few calls (no value is read).
    batched_exists: bool = False
    #: How many names one existence call may carry (``None``: no limit).
    max_batch: int | None = None
    #: create, update and delete work.
    writable: bool = False


@runtime_checkable
class SecretStore(Protocol):
    """An async secret store.

    Failures are ours, never a library's: ``SecretNotFoundError`` (a ``KeyError``),
    ``ForbiddenError``, ``StoreUnavailableError`` for transient failures (with an optional
    ``retry_after`` in seconds), ``StoreCorruptError``, or another ``StoreError``.
    """

    @property
    def capabilities(self) -> StoreCapabilities: ...

    @property
    def description(self) -> str:
        """Where the store is, safe to log and show: no password, token or key."""
        ...

    async def get_secret(self, name: str) -> Secret:
        """The secret with exactly this name, with its values."""
        ...

    async def secrets_exist(self, names: Sequence[str]) -> frozenset[str]:
        """Which of ``names`` exist, by exact name, without reading any value."""
        ...

    async def list_secrets(self) -> list[str]:
        """Every secret name, sorted."""
        ...

    async def create_secret(self, name: str, values: Mapping[str, str]) -> None: ...

    async def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        """Set ``values`` (added or replaced) and remove ``remove_keys``."""
        ...

    async def delete_secret(self, name: str) -> None: ...

    async def aclose(self) -> None:
        """Release connections and files. Idempotent."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class StoreBase:
    """Context management, the closed check and refused writes, for store implementations."""

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
        raise ForbiddenError(f"the store {self.description} is read-only")

    async def secrets_exist(self, names: Sequence[str]) -> frozenset[str]:
        """Default: one name at a time through ``list_secrets``."""
        existing = set(await self.list_secrets())
        return frozenset(name for name in names if name in existing)

    async def list_secrets(self) -> list[str]:
        self._refuse_write()
        raise AssertionError  # pragma: no cover

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
