"""stamina's ``retry_context``, imported at the first failure.

Most runs make no retry, and importing stamina (with tenacity) is a good part of a short
command's start-up. ``retry_context(**kwargs)`` takes stamina's arguments and is used the same
way (``async for attempt in retry_context(...): with attempt: ...``). The first attempt runs
without stamina; when it raises, stamina is imported and its retry context takes over: its first
attempt re-raises that failure, so stamina asks ``on``, logs, waits and counts exactly as if it
had run the first attempt itself (the timeout counts from the failure, not from the first try).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any


class _FirstAttempt:
    """The first attempt: keeps an ``Exception`` it raises for stamina; lets others through."""

    failure: Exception | None = None

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if isinstance(exc, Exception):
            self.failure = exc
            return True
        return False


class retry_context:  # noqa: N801 (stamina's name, used in its place)
    """stamina's ``retry_context(**kwargs)``, with stamina imported only if an attempt fails."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._first: _FirstAttempt | None = None
        self._rest: Any = None

    def __aiter__(self) -> retry_context:
        return self

    async def __anext__(self) -> Any:
        if self._first is None:
            self._first = _FirstAttempt()
            return self._first
        if self._rest is None:
            failure = self._first.failure
            if failure is None:  # the first attempt ended without an error and without leaving
                raise StopAsyncIteration
            import stamina

            self._rest = stamina.retry_context(**self._kwargs).__aiter__()
            replay = await self._rest.__anext__()
            with replay:
                raise failure
        return await self._rest.__anext__()
