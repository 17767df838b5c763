"""stacksecrets._retry: stamina's retry context, with stamina imported only after a failure.

The first attempt runs without stamina; a failure is handed to stamina, which then decides,
waits and counts as if it had run the first attempt itself (the fresh-process check that a
validation with no failure imports no stamina is in test_startup.py).
"""

from __future__ import annotations

import anyio
import pytest

from stacksecrets._retry import retry_context

pytestmark = pytest.mark.anyio

FAST = {"timeout": None, "wait_initial": 0.001, "wait_max": 0.002, "wait_jitter": 0.001}


async def run(failures: int, *, attempts: int, error: type[Exception] = ValueError) -> list[int]:
    """Attempt numbers seen by a body that fails ``failures`` times, then answers."""
    seen: list[int] = []
    async for attempt in retry_context(on=ValueError, attempts=attempts, **FAST):
        with attempt:
            seen.append(len(seen) + 1)
            if len(seen) <= failures:
                raise error(f"failure {len(seen)}")
            return seen
    raise AssertionError("the loop ended without an answer")


async def test_an_answer_at_the_first_attempt_runs_once():
    assert await run(0, attempts=3) == [1]


async def test_failures_are_retried_up_to_the_attempts_in_all():
    """Two failures then an answer: three attempts, the failed first one counted by stamina."""
    assert await run(2, attempts=3) == [1, 2, 3]


async def test_the_last_failure_is_raised_when_the_attempts_are_used_up():
    with pytest.raises(ValueError, match="failure 3"):
        await run(5, attempts=3)


async def test_a_failure_stamina_is_not_told_to_retry_is_raised_at_once():
    with pytest.raises(KeyError, match="failure 1"):
        await run(5, attempts=3, error=KeyError)


async def test_the_backoff_hook_decides_and_sets_the_wait():
    """``on`` returning a float waits that long; it is asked once per failure, the first too."""
    asked: list[str] = []

    def on(exc: Exception) -> bool | float:
        asked.append(str(exc))
        return 0.001 if len(asked) < 2 else False

    calls = 0

    async def failing() -> None:
        nonlocal calls
        async for attempt in retry_context(on=on, attempts=None, **FAST):
            with attempt:
                calls += 1
                raise ValueError(f"failure {calls}")

    with pytest.raises(ValueError, match="failure 2"):
        await failing()
    assert asked == ["failure 1", "failure 2"]
    assert calls == 2


async def test_cancellation_in_the_first_attempt_is_not_retried():
    calls = 0
    with anyio.move_on_after(0.05) as scope:
        async for attempt in retry_context(on=Exception, attempts=3, **FAST):
            with attempt:
                calls += 1
                await anyio.sleep(10)
    assert scope.cancelled_caught
    assert calls == 1
