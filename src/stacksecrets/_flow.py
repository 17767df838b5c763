"""How fast one engine sends to its store: calls in flight (AIMD) and calls per second.

A fleet of clients shares one store and its quota. Each client cannot see the others, only the
store's answers, so each one adapts like a TCP sender:

- ``Window``: the number of calls in flight, between 1 and ``max_concurrency``. A throttled
  answer (or another transient failure: a timeout, a reset) halves it, once per round of
  calls: answers to calls sent before the last cut do not cut again. Each answered call grows
  it by ``1 / window``, so one whole window of answers grows it by one. The limit is an anyio
  ``CapacityLimiter`` whose ``total_tokens`` follows the window (calls in flight beyond a cut
  window finish; no new one starts until below).
  A batched pass (AWS: 20 names a call) is planned as a whole: a few calls more than the
  window's free slots (at most an eighth of it) go out with the others (``Window.beyond``), so
  331 names in 17 calls at the default 16 take one round trip, not two.
- ``Pause``: a throttled answer's retry-after hint holds every new call of this engine until it
  has passed, not just the call that was told.
- ``Pace``: an optional client-side rate limit (``ClientOptions.rate_limit`` calls per second)
  for stores whose quota is known: calls start at least ``1 / rate`` seconds apart.

Only anyio primitives; the clock is anyio's, so the waits are cancellable sleeps.
"""

from __future__ import annotations

import anyio
import attrs


@attrs.define
class Window:
    """Additive-increase, multiplicative-decrease of the calls in flight."""

    ceiling: int
    limiter: anyio.CapacityLimiter
    size: float = 0.0
    #: Calls started so far, and that count at the last cut.
    started: int = 0
    cut_at: int = 0
    cuts: int = 0

    @classmethod
    def of(cls, ceiling: int) -> Window:
        return cls(ceiling, anyio.CapacityLimiter(ceiling), float(ceiling))

    def start(self) -> int:
        """A call starts; its ticket tells later whether it was sent before a cut."""
        self.started += 1
        return self.started

    def throttled(self, ticket: int) -> None:
        """The store said slow down to the call with ``ticket``."""
        if ticket <= self.cut_at:  # sent before the last cut: that cut answered it already
            return
        self.size = max(1.0, self.size / 2)
        self.cut_at = self.started
        self.cuts += 1
        self._apply()

    def answered(self) -> None:
        """A call got an answer (not a throttled one)."""
        if self.size < self.ceiling:
            self.size = min(float(self.ceiling), self.size + 1 / self.size)
            self._apply()

    def beyond(self, calls: int) -> int:
        """How many of a batched pass's ``calls`` (planned together, sent at once) start
        beyond the window: when they exceed its free slots by at most an eighth of the window
        (rounded up), the few left over ride with the first wave instead of costing a round
        trip of their own; otherwise none (the rest wait for slots as any call does). A cut
        window's slack is cut with it."""
        free = int(self.limiter.total_tokens - self.limiter.borrowed_tokens)
        over = calls - free
        return over if 0 < over <= -(-int(self.size) // 8) else 0

    def _apply(self) -> None:
        tokens = max(1, int(self.size))
        if tokens != self.limiter.total_tokens:
            self.limiter.total_tokens = tokens


@attrs.define
class Pause:
    """New calls wait until ``until`` (anyio's clock) once the store asked for a pause."""

    until: float = 0.0

    def hold(self, seconds: float) -> None:
        self.until = max(self.until, anyio.current_time() + seconds)

    async def wait(self) -> None:
        delay = self.until - anyio.current_time()
        if delay > 0:
            await anyio.sleep(delay)


@attrs.define
class Pace:
    """Calls start at least ``1 / rate`` seconds apart (a rate limit with no burst)."""

    rate: float
    next_slot: float = 0.0

    async def wait(self) -> None:
        now = anyio.current_time()
        slot = max(now, self.next_slot)
        # The slot is taken before sleeping: concurrent callers queue one interval apart.
        self.next_slot = slot + 1 / self.rate
        if slot > now:
            await anyio.sleep(slot - now)
