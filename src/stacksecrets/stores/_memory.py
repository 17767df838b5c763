"""An in-memory store (``memory://``): for unit tests of the engine and for examples."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

import anyio

from .._errors import SecretExistsError, SecretNotFoundError
from .._secret import Secret
from ._base import StoreBase, StoreCapabilities, check_write, merge_update

if TYPE_CHECKING:
    from ._urls import StoreURL


class MemoryStore(StoreBase):
    """Secrets in a dict. ``latency`` seconds are slept on every call, to model a round trip."""

    def __init__(
        self,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
        *,
        latency: float = 0.0,
    ) -> None:
        self._secrets = {
            name: check_write(name, values)[0] for name, values in (secrets or {}).items()
        }
        self.latency = latency

    @classmethod
    def from_url(
        cls,
        url: StoreURL | str,  # noqa: ARG003 - memory:// holds nothing to read
        /,
        *,
        environ: Mapping[str, str] | None = None,  # noqa: ARG003
    ) -> MemoryStore:
        """``memory://``: a new empty store (the opener every scheme has)."""
        return cls()

    @property
    def capabilities(self) -> StoreCapabilities:
        return StoreCapabilities(batched_exists=True, writable=True)

    @property
    def description(self) -> str:
        return "memory://"

    async def _round_trip(self) -> None:
        self._check_open()
        if self.latency:
            await anyio.sleep(self.latency)
        else:
            await anyio.lowlevel.checkpoint()

    async def get_secret(self, name: str) -> Secret:
        await self._round_trip()
        try:
            return Secret(name, self._secrets[name])
        except KeyError:
            raise SecretNotFoundError(name, store=self.description) from None

    async def secrets_exist(self, names: Sequence[str]) -> frozenset[str]:
        await self._round_trip()
        return frozenset(name for name in names if name in self._secrets)

    async def list_secrets(self) -> list[str]:
        await self._round_trip()
        return sorted(self._secrets)

    async def create_secret(self, name: str, values: Mapping[str, str]) -> None:
        self._check_open()
        new, _ = check_write(name, values)
        await self._round_trip()
        if name in self._secrets:
            raise SecretExistsError(name)
        self._secrets[name] = new

    async def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        self._check_open()
        new, removed = check_write(name, values, remove_keys)
        await self._round_trip()
        if name not in self._secrets:
            raise SecretNotFoundError(name, store=self.description)
        self._secrets[name] = merge_update(self._secrets[name], new, removed)

    async def delete_secret(self, name: str) -> None:
        await self._round_trip()
        if self._secrets.pop(name, None) is None:
            raise SecretNotFoundError(name, store=self.description)
