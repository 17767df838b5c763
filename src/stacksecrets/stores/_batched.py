"""The optional batched-read side of a store (AWS Secrets Manager's ``BatchGetSecretValue``).

A store that reads many secrets in one call implements ``BatchReader`` (declared with the
other capabilities in ``_base.py``) beside the ``SecretStore`` protocol. The engine checks for
it with ``isinstance(store, BatchReader)``.

``cut`` and ``at_once`` are the batching every store and the engine share: names cut to a
call's size, the calls made concurrently. A failed part cancels the others and ``at_once``
raises one ``StoreError`` (``first_error`` picks it), never an ``ExceptionGroup``: the store
contract lets only the library's errors out.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

import anyio

from .._errors import (
    AuthenticationError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from ._base import BatchReader

__all__ = ["BatchReader", "at_once", "cut", "first_error"]

T = TypeVar("T")


def cut(items: Sequence[T], size: int | None) -> list[list[T]]:
    """``items`` in consecutive lists of at most ``size`` (one list when ``size`` is None)."""
    size = size or len(items) or 1
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


async def at_once(call: Callable[[T], Coroutine[Any, Any, None]], parts: Iterable[T]) -> None:
    """``call(part)`` for every part, concurrently; a single part runs without a task group.

    The first ``StoreError`` cancels the other parts; when more than one part failed before
    that, ``first_error`` chooses the one raised. Other exceptions (a bug) propagate as the
    task group raises them."""
    parts = list(parts)
    if len(parts) == 1:
        await call(parts[0])
        return
    if not parts:
        return
    failures: list[StoreError] = []

    async def one(part: T, scope: anyio.CancelScope) -> None:
        try:
            await call(part)
        except StoreError as exc:
            failures.append(exc)
            scope.cancel()

    async with anyio.create_task_group() as group:
        for part in parts:
            group.start_soon(one, part, group.cancel_scope)
    if failures:
        raise first_error(failures)


def first_error(errors: Sequence[StoreError]) -> StoreError:
    """The error that speaks for a call whose parts failed in different ways.

    The rule: a store that is unusable (refused credentials, corrupt data) first, then any
    other lasting failure (forbidden, a bad answer), then a transient one, since retrying the
    whole call cannot help while a lasting failure stands. Among transient failures a throttled
    one with the longest retry-after hint wins, so a retry waits as long as the store asked.
    Ties go to the earliest failure."""

    def rank(error: StoreError) -> tuple[int, float]:
        if isinstance(error, (AuthenticationError, StoreCorruptError)):
            return (0, 0.0)
        if not isinstance(error, StoreUnavailableError):
            return (1, 0.0)
        return (2 if error.throttled else 3, -(error.retry_after or 0.0))

    return min(errors, key=rank)
