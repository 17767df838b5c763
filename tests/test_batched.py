"""The batching every store and the engine share (``cut``, ``at_once``): a failed part is the
library's error, chosen by one rule, never an ``ExceptionGroup``."""

from __future__ import annotations

import anyio
import pytest

from stacksecrets import (
    AuthenticationError,
    ForbiddenError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from stacksecrets.stores._batched import at_once, cut, first_error


def test_cut_in_order():
    """Consecutive parts of at most the size; one part without a size."""
    assert cut([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert cut([1, 2, 3], None) == [[1, 2, 3]]
    assert cut([], 10) == []


@pytest.mark.anyio
async def test_two_failing_parts_raise_one_store_error():
    """Two parts fail together (both fail before either is cancelled): one StoreError comes
    out, the lasting one, not the transient one and not a group."""
    both_started = anyio.Event()
    started = 0

    async def part(n: int) -> None:
        nonlocal started
        started += 1
        if started == 2:
            both_started.set()
        with anyio.CancelScope(shield=True):  # the first failure must not cancel the second
            await both_started.wait()
        if n == 0:
            raise StoreUnavailableError("busy", throttled=True, retry_after=1)
        raise ForbiddenError("no")

    with pytest.raises(ForbiddenError, match="no"):
        await at_once(part, [0, 1])


@pytest.mark.anyio
async def test_a_failed_part_cancels_the_others():
    """The first failure ends the call: the parts still waiting do not finish."""
    finished: list[int] = []

    async def part(n: int) -> None:
        if n == 0:
            raise StoreError("bad answer")
        await anyio.sleep_forever()
        finished.append(n)  # pragma: no cover

    with pytest.raises(StoreError, match="bad answer"):
        await at_once(part, range(4))
    assert finished == []


@pytest.mark.anyio
async def test_other_exceptions_are_not_hidden():
    """A bug (not a store error) propagates as the task group raised it."""

    async def part(n: int) -> None:
        if n == 1:
            raise ZeroDivisionError

    with pytest.raises(Exception) as raised:
        await at_once(part, [0, 1])
    assert type(raised.value).__name__ == "ExceptionGroup"
    assert [type(e) for e in raised.value.exceptions] == [ZeroDivisionError]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        ([StoreUnavailableError("t"), ForbiddenError("f")], 1),
        ([ForbiddenError("f"), AuthenticationError("a")], 1),
        ([StoreError("s"), StoreCorruptError("c")], 1),
        ([StoreUnavailableError("t"), StoreError("s"), ForbiddenError("f")], 1),
        ([StoreUnavailableError("t"), StoreUnavailableError("slow", throttled=True)], 1),
        (
            [
                StoreUnavailableError("a", throttled=True, retry_after=1),
                StoreUnavailableError("b", throttled=True, retry_after=3),
            ],
            1,
        ),
        ([StoreUnavailableError("a"), StoreUnavailableError("b")], 0),
    ],
)
def test_first_error_rule(errors: list[StoreError], expected: int):
    """Unusable store, then lasting failures, then throttling (longest hint), then other
    transient failures; ties to the earliest."""
    assert first_error(errors) is errors[expected]
