"""An in-memory store (``memory://``): for unit tests of the engine and for examples."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import anyio

from .._errors import ConfigurationError, SecretExistsError, SecretNotFoundError
from .._secret import Secret
from ._base import StoreBase, StoreCapabilities


class MemoryStore(StoreBase):
    """Secrets in a dict. ``latency`` seconds are slept on every call, to model a round trip."""

    def __init__(
        self,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
        *,
        latency: float = 0.0,
    ) -> None:
        self._secrets = {name: dict(values) for name, values in (secrets or {}).items()}
        self.latency = latency

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
        await self._round_trip()
        if name in self._secrets:
            raise SecretExistsError(name)
        self._secrets[name] = dict(values)

    async def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        await self._round_trip()
        if name not in self._secrets:
            raise SecretNotFoundError(name, store=self.description)
        self._secrets[name] = apply_update(name, self._secrets[name], values, remove_keys)

    async def delete_secret(self, name: str) -> None:
        await self._round_trip()
        if self._secrets.pop(name, None) is None:
            raise SecretNotFoundError(name, store=self.description)


def apply_update(
    name: str,
    current: Mapping[str, str],
    values: Mapping[str, str],
    remove_keys: Collection[str],
) -> dict[str, str]:
    """The values of secret ``name`` after an update, or ``ConfigurationError`` for an update
    that cannot mean what it says: a key both set and removed, a key to remove that the secret
    does not have, or removing every key (a secret has at least one; delete it instead)."""
    removed = set(remove_keys)
    both = sorted(removed & set(values))
    if both:
        raise ConfigurationError(
            f"secret {name!r}: the key(s) {', '.join(map(repr, both))} are both set and removed"
        )
    absent = sorted(removed - set(current))
    if absent:
        raise ConfigurationError(
            f"secret {name!r} has no key(s) {', '.join(map(repr, absent))} to remove"
        )
    updated = {key: value for key, value in current.items() if key not in removed}
    updated.update(values)
    if not updated:
        raise ConfigurationError(
            f"removing every key would leave secret {name!r} empty; delete the secret instead"
        )
    return updated
