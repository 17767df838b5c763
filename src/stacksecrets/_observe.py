"""Watching a long operation: its progress and what it waits for, for whoever shows them.

The library shows nothing itself. An application (the CLI, on a terminal) sets an observer for
the duration of an operation with ``observing(observer)``; the engine then reports its progress
(secrets checked of the total, store calls, cache hits) and the places that can wait report
their waits (a store call in flight, a file lock held by another process, a retry's back-off).

The observer lives in a context variable, so it follows the operation into the tasks it starts
(anyio task groups copy the context) and into worker threads (``anyio.to_thread`` does too), and
concurrent operations each see their own. With no observer set, every call here is one context
variable look-up. An observer's methods are called from the event loop's thread; they must be
quick and must not raise. Texts carry names, paths, hosts and counts: never a value.
"""

from __future__ import annotations

import contextvars
import itertools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple, Protocol

# Named tuples, not attrs classes: built at every start-up, where an attrs class costs half a
# millisecond.


class Progress(NamedTuple):
    """How far a validation is: unique secrets answered of the total, and the cost so far."""

    checked: int
    total: int
    store_calls: int
    cache_hits: int
    #: Throttled answers so far (the store said slow down), and retries of transient failures.
    throttled: int = 0
    retries: int = 0


class Wait(NamedTuple):
    """Something an operation waits for: ``what`` (names and hosts only), since when
    (``time.monotonic()``), and until when when that is known (a retry's back-off)."""

    what: str
    since: float
    until: float | None = None
    #: Distinguishes waits with the same text (two calls to one store).
    ident: int = 0


class Observer(Protocol):
    def progress(self, progress: Progress) -> None: ...

    def wait_started(self, wait: Wait) -> None: ...

    def wait_ended(self, wait: Wait) -> None: ...


_observer: contextvars.ContextVar[Observer | None] = contextvars.ContextVar(
    "stacksecrets_observer", default=None
)
_idents = itertools.count(1)


@contextmanager
def observing(observer: Observer) -> Iterator[Observer]:
    """``observer`` watches what runs inside the block (in this context and those it starts)."""
    token = _observer.set(observer)
    try:
        yield observer
    finally:
        _observer.reset(token)


def current() -> Observer | None:
    """The observer watching the running code, if any."""
    return _observer.get()


@contextmanager
def waiting(what: str) -> Iterator[None]:
    """Tell the observer (if any) that the block waits for ``what`` until it ends."""
    observer = _observer.get()
    if observer is None:
        yield
        return
    wait = Wait(what, time.monotonic(), ident=next(_idents))
    observer.wait_started(wait)
    try:
        yield
    finally:
        observer.wait_ended(wait)


def timed_wait(what: str, seconds: float) -> None:
    """Tell the observer (if any) of a wait of known length that ends on its own (a back-off):
    it is not ended by a call, the observer drops it once ``until`` has passed."""
    observer = _observer.get()
    if observer is not None:
        now = time.monotonic()
        observer.wait_started(Wait(what, now, now + seconds, ident=next(_idents)))
