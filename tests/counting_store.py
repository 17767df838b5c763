"""A store wrapper for unit tests of the engine: counts calls, tracks concurrency, injects faults.

It wraps the in-memory store. It is the evidence for the engine's call-count contracts only;
the stores themselves are tested against real files and a real ZenML server.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence

import anyio

from stacksecrets import Secret, StoreUnavailableError
from stacksecrets.stores import MemoryStore, StoreBase, StoreCapabilities


class CountingStore(StoreBase):
    """Counts every call by method, and the most calls in flight at once."""

    def __init__(
        self,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
        *,
        latency: float = 0.0,
        max_batch: int | None = None,
        batched_exists: bool = True,
        unreadable: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        self.inner = MemoryStore(secrets, latency=latency)
        self.calls: Counter[str] = Counter()
        self.read_names: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._max_batch = max_batch
        self._batched = batched_exists
        self.unreadable = {k: frozenset(v) for k, v in (unreadable or {}).items()}
        #: Called before each call with the method name; may raise or sleep.
        self.fault: Callable[[str, str], None] | None = None
        self.async_fault: Callable[[str], Awaitable[None]] | None = None

    @property
    def capabilities(self) -> StoreCapabilities:
        return StoreCapabilities(
            batched_exists=self._batched, max_batch=self._max_batch, writable=True
        )

    @property
    def description(self) -> str:
        return "counting://"

    async def _enter(self, method: str, subject: str = "") -> None:
        self._check_open()
        self.calls[method] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.fault is not None:
            try:
                self.fault(method, subject)
            except BaseException:
                self.in_flight -= 1
                raise
        if self.async_fault is not None:
            try:
                await self.async_fault(method)
            except BaseException:
                self.in_flight -= 1
                raise

    async def get_secret(self, name: str) -> Secret:
        await self._enter("get_secret", name)
        try:
            self.read_names.append(name)
            secret = await self.inner.get_secret(name)
        finally:
            self.in_flight -= 1
        hidden = self.unreadable.get(name, frozenset())
        if hidden:
            values = {k: v for k, v in secret.values.items() if k not in hidden}
            return Secret(name, values, unreadable_keys=hidden & secret.keys)
        return secret

    async def secrets_exist(self, names: Sequence[str]) -> frozenset[str]:
        await self._enter("secrets_exist", ",".join(names))
        try:
            if self._max_batch is not None:
                assert len(names) <= self._max_batch
            return await self.inner.secrets_exist(names)
        finally:
            self.in_flight -= 1

    async def list_secrets(self) -> list[str]:
        await self._enter("list_secrets")
        try:
            return await self.inner.list_secrets()
        finally:
            self.in_flight -= 1

    async def create_secret(self, name: str, values: Mapping[str, str]) -> None:
        await self._enter("create_secret", name)
        try:
            await self.inner.create_secret(name, values)
        finally:
            self.in_flight -= 1

    async def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        await self._enter("update_secret", name)
        try:
            await self.inner.update_secret(name, values, remove_keys=remove_keys)
        finally:
            self.in_flight -= 1

    async def delete_secret(self, name: str) -> None:
        await self._enter("delete_secret", name)
        try:
            await self.inner.delete_secret(name)
        finally:
            self.in_flight -= 1


def fail_times(count: int, *, retry_after: float | None = None) -> Callable[[str, str], None]:
    """A fault that makes the first ``count`` calls fail transiently."""
    remaining = [count]

    def fault(method: str, subject: str) -> None:
        if remaining[0] > 0:
            remaining[0] -= 1
            raise StoreUnavailableError("injected transient failure", retry_after=retry_after)

    return fault


async def hang(method: str) -> None:
    """A fault that never answers."""
    await anyio.sleep_forever()
