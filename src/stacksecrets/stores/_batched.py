"""The optional batched-read side of a store (AWS Secrets Manager's ``BatchGetSecretValue``).

A store that reads many secrets in one call implements ``BatchReader`` (declared with the
other capabilities in ``_base.py``) beside the ``SecretStore`` protocol. The engine checks for
it with ``isinstance(store, BatchReader)``.

``cut`` and ``at_once`` are the batching every store and the engine share: names cut to a
call's size, the calls made concurrently.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

import anyio

from ._base import BatchReader

__all__ = ["BatchReader", "at_once", "cut"]

T = TypeVar("T")


def cut(items: Sequence[T], size: int | None) -> list[list[T]]:
    """``items`` in consecutive lists of at most ``size`` (one list when ``size`` is None)."""
    size = size or len(items) or 1
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


async def at_once(call: Callable[[T], Coroutine[Any, Any, None]], parts: Iterable[T]) -> None:
    """``call(part)`` for every part, concurrently; a single part runs without a task group."""
    parts = list(parts)
    if len(parts) == 1:
        await call(parts[0])
    elif parts:
        async with anyio.create_task_group() as group:
            for part in parts:
                group.start_soon(call, part)
