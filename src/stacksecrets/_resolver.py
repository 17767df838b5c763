"""The async engine: planned, concurrent, cached look-ups against one store.

For a set of stacks it collects every reference, groups them by secret name and then, by level:

- ``NONE``: no store call.
- ``SECRET_EXISTS``: the names not known from the cache are checked with the store's batched
  existence call (chunks of ``max_batch`` names, concurrently). No value is read.
- ``SECRET_AND_KEY_EXISTS``: the same existence pass where the store batches it, then one read
  per found name, concurrently; each unique name is read at most once per validation whatever
  the number of references, keys and stacks.

Every store call runs under one ``CapacityLimiter`` (``max_concurrency``). Concurrent look-ups
of one name share one call (single-flight). Found secrets are cached for ``ttl`` seconds,
missing names for ``missing_ttl`` seconds; failures are never cached. Transient failures
(``StoreUnavailableError``) are retried with exponential back-off and jitter, honouring the
store's retry-after hint, up to ``retry_attempts`` and ``retry_timeout`` seconds (stamina); a
hint longer than ``retry_timeout`` ends the retries at once. Back-off waits are async sleeps, so
a deadline or a cancel scope ends them promptly.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

import anyio
import attrs
import stamina

from ._errors import (
    AuthenticationError,
    ForbiddenError,
    SecretNotFoundError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from ._levels import ValidationLevel
from ._logging import logger, redactor
from ._plan import References, collect
from ._report import Problem, ProblemKind, Stats, ValidationReport
from ._secret import Secret
from ._stack import Stack, Usage
from .stores import BatchReader, SecretStore

T = TypeVar("T")


@attrs.define
class _Counters:
    """Store calls and cache hits of one operation (a validation, a read)."""

    store_calls: int = 0
    cache_hits: int = 0


@attrs.frozen
class _Missing:
    """The store said this name does not exist."""


_MISSING = _Missing()
#: What a look-up ended with: the secret, "missing", or the failure.
Outcome = Secret | _Missing | StoreError


@attrs.define
class _Flight:
    """One look-up in progress that others may wait on."""

    done: anyio.Event = attrs.field(factory=anyio.Event)
    outcome: Outcome | None = None


class Resolver:
    """Plans, runs and caches look-ups against one store. Safe for concurrent use."""

    def __init__(
        self,
        store: SecretStore,
        *,
        max_concurrency: int = 16,
        ttl: float = 300.0,
        missing_ttl: float = 5.0,
        retry_attempts: int = 5,
        retry_timeout: float = 30.0,
        retry_wait_initial: float = 0.1,
        retry_wait_max: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.store = store
        self.max_concurrency = max_concurrency
        self.ttl = ttl
        self.missing_ttl = missing_ttl
        self.retry_attempts = retry_attempts
        self.retry_timeout = retry_timeout
        self.retry_wait_initial = retry_wait_initial
        self.retry_wait_max = retry_wait_max
        self._clock = clock
        self._limiter: anyio.CapacityLimiter | None = None
        self._found: dict[str, tuple[Secret, float]] = {}
        self._exists: dict[str, tuple[bool, float]] = {}
        self._flights: dict[str, _Flight] = {}

    # -- cache ---------------------------------------------------------------------------

    def invalidate(self, name: str) -> None:
        """Forget what is known of ``name``."""
        self._found.pop(name, None)
        self._exists.pop(name, None)

    def clear(self) -> None:
        """Forget everything cached."""
        self._found.clear()
        self._exists.clear()

    def _cached_secret(self, name: str) -> Secret | None:
        entry = self._found.get(name)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._found[name]
            return None
        return entry[0]

    def _cached_exists(self, name: str) -> bool | None:
        if self._cached_secret(name) is not None:
            return True
        entry = self._exists.get(name)
        if entry is None:
            return None
        if entry[1] <= self._clock():
            del self._exists[name]
            return None
        return entry[0]

    def _remember(self, name: str, outcome: Outcome) -> None:
        now = self._clock()
        if isinstance(outcome, Secret):
            self._found[name] = (outcome, now + self.ttl)
            self._exists[name] = (True, now + self.ttl)
        elif isinstance(outcome, _Missing):
            self._found.pop(name, None)
            self._exists[name] = (False, now + self.missing_ttl)

    # -- store calls ---------------------------------------------------------------------

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.max_concurrency)
        return self._limiter

    async def _call(self, counters: _Counters, call: Callable[[], Awaitable[T]]) -> T:
        """One store call under the limiter, retried on transient failures."""
        # ``async for``: the back-off must be an async sleep (cancellable, loop not blocked).
        async for attempt in stamina.retry_context(
            on=self._retry_on,
            attempts=self.retry_attempts,
            timeout=self.retry_timeout,
            wait_initial=self.retry_wait_initial,
            wait_max=self.retry_wait_max,
            wait_jitter=self.retry_wait_initial,
        ):
            with attempt:
                async with self.limiter:
                    counters.store_calls += 1
                    return await call()
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_on(self, exc: Exception) -> bool | float:
        wait = _retry_hook(exc)
        # A retry-after beyond the whole retry budget cannot end in an answer: give up now.
        if not isinstance(wait, bool) and wait > self.retry_timeout:
            return False
        return wait

    async def fetch(self, name: str, counters: _Counters | None = None) -> Outcome:
        """The secret ``name`` from the cache or the store (one call shared by concurrent
        callers). Failures come back as the ``StoreError``, not raised."""
        counters = counters if counters is not None else _Counters()
        while True:
            cached = self._cached_secret(name)
            if cached is not None:
                counters.cache_hits += 1
                return cached
            if self._cached_exists(name) is False:
                counters.cache_hits += 1
                return _MISSING
            flight = self._flights.get(name)
            if flight is None:
                break
            await flight.done.wait()
            if flight.outcome is not None:
                counters.cache_hits += 1
                return flight.outcome
            # The leader was cancelled before it had an answer: try again.

        flight = self._flights[name] = _Flight()
        started = time.perf_counter()
        try:
            try:
                secret = await self._call(counters, lambda: self.store.get_secret(name))
            except SecretNotFoundError:
                flight.outcome = _MISSING
            except StoreError as exc:
                flight.outcome = exc
            else:
                redactor.add_secret(secret)
                flight.outcome = secret
            self._remember(name, flight.outcome)
        finally:
            del self._flights[name]
            flight.done.set()
        logger.debug(
            "stacksecrets.fetch.done",
            secret=name,
            outcome=_outcome_name(flight.outcome),
            seconds=round(time.perf_counter() - started, 6),
        )
        return flight.outcome

    async def exists(
        self, names: Sequence[str], counters: _Counters
    ) -> dict[str, bool | StoreError]:
        """Whether each name exists, from the cache or batched existence calls."""
        answers: dict[str, bool | StoreError] = {}
        unknown: list[str] = []
        for name in names:
            known = self._cached_exists(name)
            if known is None:
                unknown.append(name)
            else:
                counters.cache_hits += 1
                answers[name] = known
        if not unknown:
            return answers
        size = self.store.capabilities.max_batch or len(unknown)

        async def check(chunk: list[str]) -> None:
            try:
                found = await self._call(counters, lambda: self.store.secrets_exist(chunk))
            except StoreError as exc:
                answers.update(dict.fromkeys(chunk, exc))
                return
            now = self._clock()
            for name in chunk:
                present = name in found
                answers[name] = present
                ttl = self.ttl if present else self.missing_ttl
                self._exists[name] = (present, now + ttl)

        async with anyio.create_task_group() as tg:
            for start in range(0, len(unknown), size):
                tg.start_soon(check, unknown[start : start + size])
        return answers

    # -- batched reads (stores with ``get_secrets``: AWS Secrets Manager) ---------------------

    async def _fetch_batched(
        self, store: BatchReader, names: Sequence[str], counters: _Counters
    ) -> dict[str, Outcome]:
        """``fetch`` for many names at once: one ``get_secrets`` call per ``max_read_batch``
        names not already in flight (those are waited on), all chunks concurrently."""
        outcomes: dict[str, Outcome] = {}
        unique = []
        for name in dict.fromkeys(names):
            if self._cached_exists(name) is False:  # known missing, as ``fetch`` answers
                counters.cache_hits += 1
                outcomes[name] = _MISSING
            else:
                unique.append(name)
        mine = [name for name in unique if name not in self._flights]
        joined = [name for name in unique if name in self._flights]
        flights = {name: _Flight() for name in mine}
        self._flights.update(flights)

        def land(name: str, outcome: Outcome) -> None:
            if isinstance(outcome, Secret):
                redactor.add_secret(outcome)
            outcomes[name] = flights[name].outcome = outcome
            self._remember(name, outcome)
            del self._flights[name]
            flights[name].done.set()

        async def read_chunk(chunk: list[str]) -> None:
            try:
                answers = await self._call(counters, lambda: store.get_secrets(chunk))
            except StoreError as exc:
                answers = dict.fromkeys(chunk, exc)
            for name in chunk:
                answer = answers.get(name)
                if answer is None:
                    answer = StoreError(f"{self.store.description} gave no answer for {name!r}")
                land(name, _MISSING if isinstance(answer, SecretNotFoundError) else answer)

        async def join(name: str) -> None:
            outcomes[name] = await self.fetch(name, counters)

        size = max(1, store.max_read_batch)
        try:
            async with anyio.create_task_group() as tg:
                for start in range(0, len(mine), size):
                    tg.start_soon(read_chunk, mine[start : start + size])
                for name in joined:
                    tg.start_soon(join, name)
        finally:
            for name, flight in flights.items():  # cancelled before an answer: let others retry
                if not flight.done.is_set():
                    del self._flights[name]
                    flight.done.set()
        logger.debug("stacksecrets.fetch.batched", secrets=len(mine), joined=len(joined))
        return outcomes

    # -- validation ----------------------------------------------------------------------

    async def validate(self, stacks: Iterable[Stack], level: ValidationLevel) -> ValidationReport:
        """Check every reference in ``stacks`` at ``level`` and report every problem."""
        started = time.perf_counter()
        stacks = list(stacks)
        refs = collect(stacks)
        counters = _Counters()
        log = logger.bind(level=level.value, stacks=len(stacks))
        log.debug(
            "stacksecrets.validate.plan",
            references=refs.count,
            unique_secrets=len(refs.secrets),
            invalid=len(refs.invalid),
        )
        problems = _invalid_problems(refs)
        if level is not ValidationLevel.NONE and refs.secrets:
            problems.extend(await self._check(refs, level, counters))
        stats = Stats(
            stacks=len(stacks),
            references=refs.count,
            unique_secrets=len(refs.secrets),
            store_calls=counters.store_calls,
            cache_hits=counters.cache_hits,
            seconds=time.perf_counter() - started,
        )
        report = ValidationReport(level, problems, stats, refs.stacks)
        log.debug(
            "stacksecrets.validate.done",
            ok=report.ok,
            problems=len(report.problems),
            references=stats.references,
            unique_secrets=stats.unique_secrets,
            store_calls=stats.store_calls,
            cache_hits=stats.cache_hits,
            seconds=round(stats.seconds, 6),
        )
        return report

    async def _check(
        self, refs: References, level: ValidationLevel, counters: _Counters
    ) -> list[Problem]:
        names = list(refs.secrets)
        problems: list[Problem] = []
        # Names whose secret is cached need no existence call at the key level.
        unread = [name for name in names if self._cached_secret(name) is None]
        batched = self.store.capabilities.batched_exists
        # A batch reader's answers name the missing secrets themselves: no existence pass.
        batch_reader = self.store if isinstance(self.store, BatchReader) else None
        if level is ValidationLevel.SECRET_EXISTS or (
            batched and len(unread) > 1 and batch_reader is None
        ):
            wanted = names if level is ValidationLevel.SECRET_EXISTS else unread
            existence = await self.exists(wanted, counters)
            _raise_if_unusable(existence.values())
            for name, answer in existence.items():
                if answer is False:
                    problems.append(_problem(ProblemKind.MISSING_SECRET, refs, name))
                elif isinstance(answer, StoreError):
                    problems.append(_store_problem(refs, name, answer))
            if level is ValidationLevel.SECRET_EXISTS:
                return problems
            names = [name for name in names if existence.get(name, True) is True]

        outcomes: dict[str, Outcome] = {}
        to_read: list[str] = []
        for name in names:
            cached = self._cached_secret(name)
            if cached is None:
                to_read.append(name)
            else:  # no task needed for an answer already in hand
                counters.cache_hits += 1
                outcomes[name] = cached

        async def read(name: str) -> None:
            outcomes[name] = await self.fetch(name, counters)

        if batch_reader is not None and len(to_read) > 1:
            outcomes.update(await self._fetch_batched(batch_reader, to_read, counters))
        else:
            async with anyio.create_task_group() as tg:
                for name in to_read:
                    tg.start_soon(read, name)

        _raise_if_unusable(outcomes.values())
        for name in names:
            outcome = outcomes[name]
            if isinstance(outcome, _Missing):
                problems.append(_problem(ProblemKind.MISSING_SECRET, refs, name))
            elif isinstance(outcome, StoreError):
                problems.append(_store_problem(refs, name, outcome))
            else:
                problems.extend(_key_problems(refs, outcome))
        return problems


def _raise_if_unusable(answers: Iterable[object]) -> None:
    """A corrupt store, or one that refuses the caller's credentials, is no per-secret problem:
    the whole store is unusable, so say that once."""
    for answer in answers:
        if isinstance(answer, (StoreCorruptError, AuthenticationError)):
            raise answer


def _retry_hook(exc: Exception) -> bool | float:
    if isinstance(exc, StoreUnavailableError):
        return exc.retry_after if exc.retry_after is not None else True
    return False


def _outcome_name(outcome: Outcome | None) -> str:
    if isinstance(outcome, Secret):
        return "found"
    if isinstance(outcome, _Missing):
        return "missing"
    return "error" if outcome is not None else "cancelled"


def _problem(kind: ProblemKind, refs: References, name: str, detail: str = "") -> Problem:
    return Problem(kind, name, None, refs.usages_of(name), detail)


def _store_problem(refs: References, name: str, error: StoreError) -> Problem:
    kind = ProblemKind.FORBIDDEN if isinstance(error, ForbiddenError) else ProblemKind.STORE_ERROR
    return _problem(kind, refs, name, str(error))


def _key_problems(refs: References, secret: Secret) -> list[Problem]:
    problems = []
    for key, usages in refs.secrets[secret.name].items():
        if key in secret.values:
            continue
        if key in secret.unreadable_keys:
            kind = ProblemKind.VALUE_NOT_READABLE
            detail = "the key exists but this caller may not read its value"
        elif secret.unreadable_reason is not None:
            kind = ProblemKind.VALUE_NOT_READABLE
            detail = f"the secret has no readable keys: {secret.unreadable_reason}"
        else:
            kind = ProblemKind.MISSING_KEY
            detail = "available keys: " + _key_list(secret.keys)
        problems.append(Problem(kind, secret.name, key, usages, detail))
    return problems


def _key_list(keys: frozenset[str], shown: int = 10) -> str:
    names = sorted(keys)
    text = ", ".join(repr(key) for key in names[:shown]) or "none"
    return text if len(names) <= shown else f"{text} and {len(names) - shown} more"


def _invalid_problems(refs: References) -> list[Problem]:
    grouped: dict[tuple[str, str], list[Usage]] = {}
    for item in refs.invalid:
        grouped.setdefault((item.text, item.reason), []).append(item.usage)
    return [
        Problem(
            ProblemKind.INVALID_REFERENCE,
            None,
            None,
            tuple(usages),
            f"{text!r}: {reason}",
        )
        for (text, reason), usages in grouped.items()
    ]
