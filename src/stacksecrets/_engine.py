"""The engine: references in, answers out, against one store.

It offers the three operations the clients need, each planned, concurrent and cached:
``validate`` (stacks in, a report out), ``read`` (one secret, raising the public errors) and
``resolve`` (stacks in, stacks with values out: one collection, one validation, the reads it
made reused for the substitution).

For a set of stacks it collects every reference, groups them by secret name and then, by level:

- ``NONE``: no store call.
- ``SECRET_EXISTS``: the names not known from the cache are checked with the store's batched
  existence call (chunks of ``max_batch`` names, concurrently). No value is read.
- ``SECRET_AND_KEY_EXISTS``: the same existence pass where the store batches it, then one read
  per found name, concurrently; each unique name is read at most once per validation whatever
  the number of references, keys and stacks. Where the store answers existence with ids and
  change stamps (``secrets_metadata``) and the metadata cache is on, the existence pass asks
  for those, and a validation reads only the secrets whose (id, stamp) is not in the shared
  metadata cache (``_metacache``: key names, never values); every read updates the cache.
  ``resolve`` wants values, so it reads every secret (and updates the cache too).

Every store call runs under one ``CapacityLimiter`` (``max_concurrency``). Concurrent look-ups
of one name share one call (single-flight). Found secrets are cached for ``ttl`` seconds,
missing names for ``missing_ttl`` seconds; failures are never cached. Transient failures
(``StoreUnavailableError``) are retried with exponential back-off and jitter, honouring the
store's retry-after hint, up to ``retry_attempts`` and ``retry_timeout`` seconds (stamina); a
hint longer than ``retry_timeout`` ends the retries at once. Back-off waits are async sleeps, so
a deadline or a cancel scope ends them promptly.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import anyio
import attrs

from . import _retry as stamina  # stamina itself is imported at the first failed call
from ._errors import (
    AuthenticationError,
    ForbiddenError,
    SecretNotFoundError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from ._flow import Pace, Pause, Window
from ._levels import ValidationLevel
from ._logging import install_retry_hook, logger, redactor
from ._observe import Observer, Progress, current, waiting
from ._options import ClientOptions
from ._plan import References, attached_details, collect
from ._problems import (
    invalid_problems,
    key_problems,
    key_problems_from,
    problem,
    store_problem,
    unresolvable_problems,
    with_suggestions,
)
from ._references import scan, substitute
from ._report import Problem, ProblemKind, Stats, ValidationReport
from ._secret import Secret, SecretValue
from ._stack import Component, Stack, map_strings
from .stores.contract import (
    BatchReader,
    SecretStamp,
    SecretStore,
    SupportsSecretsMetadata,
    SupportsSources,
    at_once,
    cut,
)

if TYPE_CHECKING:
    from ._metacache import CachedKeys, MetadataCache

T = TypeVar("T")
A = TypeVar("A")


@attrs.define
class _Counters:
    """Store calls and cache hits of one operation (a validation, a read)."""

    store_calls: int = 0
    cache_hits: int = 0
    metadata_hits: int = 0
    #: Throttled answers (the store said slow down), and retries of any transient failure.
    throttled: int = 0
    retries: int = 0
    #: Names this operation read from the store itself (not from a cache or another's call).
    fetched: set[str] = attrs.field(factory=set)
    #: Who watches this operation's progress (``_observe``), and the names answered so far.
    observer: Observer | None = None
    total: int = 0
    settled: set[str] = attrs.field(factory=set)

    def hit(self) -> None:
        self.cache_hits += 1
        self.changed()

    def settle(self, name: str) -> None:
        """``name`` has its final answer in this operation."""
        if self.observer is not None and name not in self.settled:
            self.settled.add(name)
            self.changed()

    def changed(self) -> None:
        if self.observer is not None:
            self.observer.progress(
                Progress(
                    len(self.settled),
                    self.total,
                    self.store_calls,
                    self.cache_hits,
                    self.throttled,
                    self.retries,
                )
            )


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


def _spread(hint: float, least: float, room: float) -> float:
    """A throttled call's wait: as told (``hint``), plus up to as much again (at least
    ``least``) at random. A fleet told the same comes back spread over a whole hint, a steady
    stream the quota serves to the last token, not a burst that takes a bucketful and leaves
    the refill of the rest of the hint unused (a jitter of a tenth of it lost a tenth and more
    of the quota at 200 clients; docs/benchmarks.md). The jitter is at most ``room``, what
    the retry budget leaves after the hint: a hint that fits the budget is always waited."""
    import random  # a retry's jitter: imported at the first throttled call

    return hint + min(room, random.uniform(0, max(hint, least)))  # noqa: S311 (jitter)


def _within_budget(
    opts: ClientOptions, exc: StoreUnavailableError, wait: bool | float, spent: float
) -> tuple[bool | float, float]:
    """A retry's wait, and what the retry budget (``retry_timeout``, ``spent`` of it so far)
    leaves after it: negative, the wait cannot end in an answer within the budget; unbounded
    for a throttled call under a deadline, which the deadline bounds. A throttled call's hint
    is what must fit; its jitter (``_spread``) only takes what is left."""
    seconds = exc.retry_after if exc.throttled and exc.retry_after is not None else wait
    seconds = 0.0 if isinstance(seconds, bool) else seconds
    room = math.inf
    if opts.deadline is None or not exc.throttled:
        room = opts.retry_timeout - spent - seconds
    if exc.throttled and exc.retry_after is not None and room >= 0:
        wait = _spread(exc.retry_after, opts.retry_wait_initial, room)
    return wait, room


class Engine:
    """Plans, runs and caches look-ups against one store. Safe for concurrent use.

    Takes the client's options whole; the validation level is an argument of each validation,
    so nothing here reads it before a validation asks.
    """

    def __init__(
        self,
        store: SecretStore,
        options: ClientOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.options = options if options is not None else ClientOptions()
        self._clock = clock
        self._window: Window | None = None
        self._pause = Pause()
        rate = self.options.rate_limit
        self._pace = Pace(rate) if rate is not None else None
        self._found: dict[str, tuple[Secret, float]] = {}
        self._exists: dict[str, tuple[bool, float]] = {}
        self._flights: dict[str, _Flight] = {}
        self._metacache: MetadataCache | None = None

    @property
    def in_flight(self) -> int:
        """How many store look-ups are running now (0 when idle)."""
        return len(self._flights)

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

    def _known_names(self) -> list[str]:
        """The names this engine knows to exist now (from its existence answers)."""
        now = self._clock()
        return [
            name for name, (there, until) in list(self._exists.items()) if there and until > now
        ]

    def _remember(self, name: str, outcome: Outcome) -> None:
        now = self._clock()
        if isinstance(outcome, Secret):
            self._found[name] = (outcome, now + self.options.cache_ttl)
            self._exists[name] = (True, now + self.options.cache_ttl)
        elif isinstance(outcome, _Missing):
            self._found.pop(name, None)
            self._exists[name] = (False, now + self.options.missing_ttl)

    # -- store calls ---------------------------------------------------------------------

    @property
    def window(self) -> Window:
        """The calls this engine keeps in flight (AIMD, at most ``max_concurrency``)."""
        if self._window is None:
            self._window = Window.of(self.options.max_concurrency)
        return self._window

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        return self.window.limiter

    async def _call(
        self, counters: _Counters, call: Callable[[], Awaitable[T]], *, beyond: bool = False
    ) -> T:
        """One store call under the window (and the pace, when set), retried on transient
        failures: a throttled answer until the operation's deadline (else ``retry_timeout``),
        any other transient one up to ``retry_attempts``; never a lasting failure.

        ``beyond``: the first attempt starts without a slot of the window (``Window.beyond``
        allowed it); a retry takes a slot as any call."""
        opts = self.options
        first = anyio.current_time()
        # Where the retry budget of other transient failures counts from: with a deadline, the
        # time the store held the call back (throttled) is not spent from it; a call throttled
        # for a minute behind a fleet's quota may still retry a timeout then.
        budget_from = first
        failures = 0
        stale = 0
        ticket = 0

        def retry_on(exc: Exception) -> bool | float:
            nonlocal failures, stale, budget_from
            install_retry_hook()  # before stamina calls its hooks for this retry
            if not isinstance(exc, StoreUnavailableError):
                return False
            wait: bool | float
            if stale < _STALE_RETRIES and _stale_connection(exc):
                # A pooled keep-alive connection the peer had closed (the request never
                # reached a server that could answer it): no congestion and no attempt, retried
                # at once on another connection. Bounded: beyond _STALE_RETRIES in one call it
                # counts as any transient failure.
                stale += 1
                counters.retries += 1
                counters.changed()
                return 0.0
            if exc.throttled:
                counters.throttled += 1
                self.window.throttled(ticket)
                if exc.retry_after is not None:
                    wait = exc.retry_after  # spread below, within what is left of the budget
                    self._pause.hold(exc.retry_after)
                else:
                    wait = True
            else:
                # A timeout or reset is a congestion signal too (as a lost packet is to TCP):
                # fewer calls in flight, but counted against the attempts.
                self.window.throttled(ticket)
                failures += 1
                if failures >= opts.retry_attempts:
                    return False
                wait = _retry_hook(exc)
            now = anyio.current_time()
            # No deadline: the retry budget bounds every retry, and a wait beyond it cannot
            # end in an answer. The operation's deadline bounds throttled retries itself.
            wait, room = _within_budget(
                opts, exc, wait, now - (first if opts.deadline is None else budget_from)
            )
            if room < 0:
                return False
            if opts.deadline is not None and exc.throttled:
                budget_from = now + (0.0 if isinstance(wait, bool) else wait)
            counters.retries += 1
            counters.changed()
            return wait

        # ``async for``: the back-off must be an async sleep (cancellable, loop not blocked).
        async for attempt in stamina.retry_context(
            on=retry_on,
            attempts=None,
            timeout=None,
            wait_initial=opts.retry_wait_initial,
            wait_max=opts.retry_wait_max,
            wait_jitter=opts.retry_wait_initial,
        ):
            with attempt:
                await self._pause.wait()
                slot = contextlib.nullcontext() if beyond else self.limiter
                beyond = False
                async with slot:
                    if self._pace is not None:
                        await self._pace.wait()
                    ticket = self.window.start()
                    counters.store_calls += 1
                    counters.changed()
                    with waiting(f"the store {self.store.description}"):
                        answer = await call()
                    self.window.answered()
                    return answer
        raise AssertionError("unreachable")  # pragma: no cover

    async def read(self, name: str) -> Secret:
        """The secret ``name``, from the cache when fresh, else from the store (one call shared
        by concurrent callers). Raises ``SecretNotFoundError`` or the store's ``StoreError``."""
        outcome = await self._fetch(name, _Counters())
        if isinstance(outcome, Secret):
            return outcome
        if isinstance(outcome, _Missing):
            raise SecretNotFoundError(name, store=self.store.description)
        raise outcome

    async def _fetch(self, name: str, counters: _Counters) -> Outcome:
        """Like ``read``, with failures given back, not raised."""
        while True:
            cached = self._cached_secret(name)
            if cached is not None:
                counters.hit()
                return cached
            if self._cached_exists(name) is False:
                counters.hit()
                return _MISSING
            flight = self._flights.get(name)
            if flight is None:
                break
            await flight.done.wait()
            if flight.outcome is not None:
                counters.hit()
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
                counters.fetched.add(name)
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

    async def _fetch_batched(
        self, store: BatchReader, names: Sequence[str], counters: _Counters
    ) -> dict[str, Outcome]:
        """``_fetch`` for many names at once: ``get_secrets`` calls of at most
        ``max_read_batch`` names not already in flight (those are waited on), as few as that
        allows with the names spread evenly, all concurrently (a few beyond the window)."""
        outcomes: dict[str, Outcome] = {}
        unique = []
        for name in dict.fromkeys(names):
            if self._cached_exists(name) is False:  # known missing, as ``_fetch`` answers
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
                counters.fetched.add(name)
            outcomes[name] = flights[name].outcome = outcome
            self._remember(name, outcome)
            del self._flights[name]
            flights[name].done.set()

        async def read_chunk(chunk: list[str], beyond: bool) -> None:
            try:
                answers = await self._call(
                    counters, lambda: store.get_secrets(chunk), beyond=beyond
                )
            except StoreError as exc:
                answers = dict.fromkeys(chunk, exc)
            for name in chunk:
                answer = answers.get(name)
                if answer is None:
                    answer = StoreError(f"{self.store.description} gave no answer for {name!r}")
                land(name, _MISSING if isinstance(answer, SecretNotFoundError) else answer)

        async def join(name: str) -> None:
            outcomes[name] = await self._fetch(name, counters)

        # As few calls as the batch size allows, the names spread evenly over them; the last
        # few calls beyond the window's free slots go out with the rest (Window.beyond).
        calls = -(-len(mine) // max(1, store.max_read_batch))
        chunks = [mine[i * len(mine) // calls : (i + 1) * len(mine) // calls] for i in range(calls)]
        extra = self.window.beyond(len(chunks))
        try:
            async with anyio.create_task_group() as tg:
                for index, chunk in enumerate(chunks):
                    tg.start_soon(read_chunk, chunk, index >= len(chunks) - extra)
                for name in joined:
                    tg.start_soon(join, name)
        finally:
            for name, flight in flights.items():  # cancelled before an answer: let others retry
                if not flight.done.is_set():
                    del self._flights[name]
                    flight.done.set()
        logger.debug("stacksecrets.fetch.batched", secrets=len(mine), joined=len(joined))
        return outcomes

    async def _exists_many(
        self, names: Sequence[str], counters: _Counters, *, final: bool = True
    ) -> dict[str, bool | StoreError]:
        """Whether each name exists, from the cache or batched existence calls.

        ``final``: the answer is all this validation wants of a name (else a found name is
        read next, so only the missing and failed ones are settled for the progress)."""
        answers: dict[str, bool | StoreError] = {}
        unknown: list[str] = []
        for name in names:
            known = self._cached_exists(name)
            if known is None:
                unknown.append(name)
            else:
                answers[name] = known
                if final or known is False:
                    counters.settle(name)
                counters.hit()
        if not unknown:
            return answers

        async def ask(chunk: list[str]) -> dict[str, bool]:
            return dict.fromkeys(await self.store.secrets_exist(chunk), True)

        found = await self._existence_pass(unknown, counters, ask, final=final)
        for name, answer in found.items():
            answers[name] = answer if isinstance(answer, StoreError) else answer is not None
        return answers

    async def _existence_pass(
        self,
        names: Sequence[str],
        counters: _Counters,
        ask: Callable[[list[str]], Awaitable[Mapping[str, A]]],
        *,
        final: bool,
    ) -> dict[str, A | StoreError | None]:
        """The one batching loop of existence and stamp passes: ``ask`` answers for a chunk of
        at most ``max_batch`` names (a name it leaves out is missing), the chunks concurrently.
        Each name's answer (``None``: missing) lands in the existence cache; a failed chunk
        gives its error to each of its names.

        ``final``: the answer is all this validation wants of a name (else a found name is
        read next, so only the missing and failed ones are settled for the progress)."""
        answers: dict[str, A | StoreError | None] = {}

        async def check(chunk: list[str]) -> None:
            try:
                found = await self._call(counters, lambda: ask(chunk))
            except StoreError as exc:
                if _refused_in_part(exc) and len(chunk) > 1:
                    # A refusal may be about some names only (a Vault folder the token may
                    # not list): ask each name alone, so it affects only the names it is about.
                    await at_once(check, ([name] for name in chunk))
                    return
                answers.update(dict.fromkeys(chunk, exc))
                for name in chunk:
                    counters.settle(name)
                return
            now = self._clock()
            for name in chunk:
                answer = answers[name] = found.get(name)
                present = answer is not None
                ttl = self.options.cache_ttl if present else self.options.missing_ttl
                self._exists[name] = (present, now + ttl)
                if final or not present:
                    counters.settle(name)

        await at_once(check, cut(names, self.store.capabilities.max_batch))
        return answers

    # -- validation ----------------------------------------------------------------------

    async def validate(self, stacks: Iterable[Stack], level: ValidationLevel) -> ValidationReport:
        """Check every reference in ``stacks`` at ``level`` and report every problem."""
        stacks = list(stacks)
        refs = collect(stacks, zenml_runtime_check=self.options.zenml_runtime_check)
        report, _ = await self._validate(refs, len(stacks), level, key_names_only=True)
        return report

    async def resolve(self, stacks: Iterable[Stack]) -> list[Stack]:
        """Copies of ``stacks`` with every reference replaced by its value.

        One collection of the references, one key-level validation (raising
        ``SecretValidationError`` with the whole report if anything is wrong), and the secrets
        that validation read are the ones substituted: no second look-up.
        """
        stacks = list(stacks)
        # stacksecrets resolves these stacks itself: what ZenML's run time would leave
        # unresolved does not matter here.
        report, secrets = await self._validate(
            collect(stacks, zenml_runtime_check=False),
            len(stacks),
            ValidationLevel.SECRET_AND_KEY_EXISTS,
        )
        report.raise_for_problems()

        def leaf(value: str) -> str | SecretValue:
            found = scan(value)
            if found.is_literal:
                return value
            text = substitute(value, found, lambda ref: secrets[ref.name].values[ref.key])
            return SecretValue(text) if found.references else text

        return [
            attrs.evolve(
                stack,
                components=[
                    Component(
                        c.type,
                        c.flavor,
                        c.name,
                        map_strings(c.configuration, leaf),
                        map_strings(c.settings, leaf),
                    )
                    for c in stack.components
                ],
            )
            for stack in stacks
        ]

    async def _validate(
        self,
        refs: References,
        stack_count: int,
        level: ValidationLevel,
        *,
        key_names_only: bool = False,
    ) -> tuple[ValidationReport, dict[str, Secret]]:
        """The report, and the secrets read on the way (at the key level).

        ``key_names_only``: no value is wanted, so key names from the metadata cache will do
        (those secrets are then not in the returned secrets)."""
        started = time.perf_counter()
        observer = current()
        counters = _Counters(observer=observer)
        if observer is not None and level is not ValidationLevel.NONE:
            counters.total = len(refs.secrets)
            counters.changed()
        log = logger.bind(level=level.value, stacks=stack_count)
        log.debug(
            "stacksecrets.validate.plan",
            references=refs.count,
            unique_secrets=len(refs.secrets),
            invalid=len(refs.invalid),
        )
        problems = invalid_problems(refs)
        problems.extend(unresolvable_problems(refs))
        secrets: dict[str, Secret] = {}
        if level is not ValidationLevel.NONE and refs.secrets:
            checked = await self._check(refs, level, counters, secrets, key_names_only)
            problems.extend(with_suggestions(checked, self._known_names()))
            # zenml-run (issue 22): attached and listed secrets say what ZenML does instead.
            problems = attached_details(problems, refs, self._known_names())
            for name in refs.secrets:
                counters.settle(name)
        stats = Stats(
            stacks=stack_count,
            references=refs.count,
            unique_secrets=len(refs.secrets),
            store_calls=counters.store_calls,
            cache_hits=counters.cache_hits,
            seconds=time.perf_counter() - started,
            metadata_hits=counters.metadata_hits,
            throttled=counters.throttled,
            retries=counters.retries,
        )
        report = ValidationReport(
            level,
            problems,
            stats,
            refs.stacks,
            store=self.store.description,
            sources=_sources(self.store, refs, problems),
        )
        log.debug(
            "stacksecrets.validate.done",
            ok=report.ok,
            problems=len(report.problems),
            references=stats.references,
            unique_secrets=stats.unique_secrets,
            store_calls=stats.store_calls,
            cache_hits=stats.cache_hits,
            metadata_hits=stats.metadata_hits,
            throttled=stats.throttled,
            retries=stats.retries,
            seconds=round(stats.seconds, 6),
        )
        return report, secrets

    async def _check(
        self,
        refs: References,
        level: ValidationLevel,
        counters: _Counters,
        secrets: dict[str, Secret],
        key_names_only: bool = False,
    ) -> list[Problem]:
        names = list(refs.secrets)
        problems: list[Problem] = []
        # Names whose secret is cached need no existence call at the key level.
        unread = [name for name in names if self._cached_secret(name) is None]
        if level is ValidationLevel.SECRET_AND_KEY_EXISTS and unread and self._metadata_on():
            return await self._check_with_metadata(
                refs, names, unread, counters, secrets, key_names_only=key_names_only
            )
        batched = self.store.capabilities.batched_exists
        # A batch reader's answers name the missing secrets themselves: no existence pass.
        if isinstance(self.store, BatchReader):
            batched = False
        if level is ValidationLevel.SECRET_EXISTS or (batched and len(unread) > 1):
            wanted = names if level is ValidationLevel.SECRET_EXISTS else unread
            existence = await self._exists_many(
                wanted, counters, final=level is ValidationLevel.SECRET_EXISTS
            )
            _raise_if_unusable(existence.values())
            for name, answer in existence.items():
                if answer is False:
                    problems.append(problem(ProblemKind.MISSING_SECRET, refs, name))
                elif isinstance(answer, StoreError):
                    problems.append(store_problem(refs, name, answer))
            if level is ValidationLevel.SECRET_EXISTS:
                return problems
            names = [name for name in names if existence.get(name, True) is True]

        problems.extend(await self._read_and_check(refs, names, counters, secrets))
        return problems

    async def _read_and_check(
        self,
        refs: References,
        names: Sequence[str],
        counters: _Counters,
        secrets: dict[str, Secret],
    ) -> list[Problem]:
        """Read ``names`` (from the cache when fresh, else concurrently) and check their keys."""
        problems: list[Problem] = []
        outcomes: dict[str, Outcome] = {}
        to_read: list[str] = []
        for name in names:
            cached = self._cached_secret(name)
            if cached is None:
                to_read.append(name)
            else:  # no task needed for an answer already in hand
                outcomes[name] = cached
                counters.settle(name)
                counters.hit()

        async def read(name: str) -> None:
            outcomes[name] = await self._fetch(name, counters)
            counters.settle(name)

        if isinstance(self.store, BatchReader) and len(to_read) > 1:
            outcomes.update(await self._fetch_batched(self.store, to_read, counters))
        else:
            async with anyio.create_task_group() as tg:
                for name in to_read:
                    tg.start_soon(read, name)

        _raise_if_unusable(outcomes.values())
        for name in names:
            outcome = outcomes[name]
            if isinstance(outcome, _Missing):
                problems.append(problem(ProblemKind.MISSING_SECRET, refs, name))
            elif isinstance(outcome, StoreError):
                problems.append(store_problem(refs, name, outcome))
            else:
                secrets[name] = outcome
                problems.extend(key_problems(refs, outcome))
        return problems

    # -- the metadata cache ----------------------------------------------------------------

    def _metadata_on(self) -> bool:
        if not isinstance(self.store, SupportsSecretsMetadata):
            return False
        from ._metacache import switched_on  # only for a store with stamps

        return switched_on(option=self.options.metadata_cache)

    async def _check_with_metadata(
        self,
        refs: References,
        names: Sequence[str],
        unread: Sequence[str],
        counters: _Counters,
        secrets: dict[str, Secret],
        *,
        key_names_only: bool,
    ) -> list[Problem]:
        """The key level with stamps: one batched stamp pass for the unread names, then a read
        only for those whose (id, stamp) the metadata cache does not hold (all of them when
        values are wanted); the reads update the cache."""
        from ._metacache import CachedKeys, MetadataCache, cache_path

        store = self.store
        assert isinstance(store, SupportsSecretsMetadata)  # noqa: S101 (checked by the caller)
        stamps = await self._stamps_many(store, unread, counters)
        _raise_if_unusable(stamps.values())
        problems: list[Problem] = []
        absent: list[str] = []
        for name, answer in stamps.items():
            if answer is None:
                absent.append(name)
                problems.append(problem(ProblemKind.MISSING_SECRET, refs, name))
            elif isinstance(answer, StoreError):
                problems.append(store_problem(refs, name, answer))
        scope = store.metadata_scope
        if scope is not None and self._metacache is None:
            self._metacache = MetadataCache(cache_path(), max_age=self.options.metadata_max_age)
        cache = self._metacache if scope is not None else None
        known = await cache.load(scope) if cache is not None and scope is not None else {}

        to_read: list[str] = []
        for name in names:
            if name not in stamps:  # in the in-memory cache: read from there
                to_read.append(name)
                continue
            answer = stamps[name]
            if answer is None or isinstance(answer, StoreError):
                continue
            entry = known.get(name)
            if (
                key_names_only
                and entry is not None
                and (entry.id, entry.stamp) == (answer.id, answer.stamp)
            ):
                counters.metadata_hits += 1
                counters.settle(name)
                problems.extend(key_problems_from(refs, name, entry))
            else:
                to_read.append(name)
        problems.extend(await self._read_and_check(refs, to_read, counters, secrets))

        if cache is not None and scope is not None:
            now = cache.clock()
            fresh: dict[str, CachedKeys] = {}
            forget = list(absent)
            for name in counters.fetched & set(to_read):
                answer = stamps.get(name)
                secret = secrets.get(name)
                if not isinstance(answer, SecretStamp) or secret is None:
                    continue
                # A secret with no readable keys at all (AWS: not JSON) is not cached: an entry
                # keeps key names, not why there are none.
                if answer.settled and secret.unreadable_reason is None:
                    fresh[name] = CachedKeys(
                        answer.id, answer.stamp, secret.keys, secret.unreadable_keys, now
                    )
                else:  # too recent a change to vouch for: the next validation reads again
                    forget.append(name)
            await cache.save(scope, fresh, forget)
        return problems

    async def _stamps_many(
        self, store: SupportsSecretsMetadata, names: Sequence[str], counters: _Counters
    ) -> dict[str, SecretStamp | StoreError | None]:
        """Id and stamp of each name (``None``: missing), in batched calls."""
        return await self._existence_pass(names, counters, store.secrets_metadata, final=False)


_NOT_FOUND = frozenset({ProblemKind.MISSING_SECRET, ProblemKind.FORBIDDEN, ProblemKind.STORE_ERROR})


def _sources(store: SecretStore, refs: References, problems: Sequence[Problem]) -> dict[str, str]:
    """For a chain of stores: which store answered for each secret that was found."""
    if not isinstance(store, SupportsSources):
        return {}
    unanswered = {p.secret for p in problems if p.kind in _NOT_FOUND}
    sources = {}
    for name in sorted(refs.secrets):
        source = None if name in unanswered else store.source_of(name)
        if source is not None:
            sources[name] = source
    return sources


def _raise_if_unusable(answers: Iterable[object]) -> None:
    """A corrupt store, or one that refuses the caller's credentials, is no per-secret problem:
    the whole store is unusable, so say that once."""
    for answer in answers:
        if isinstance(answer, (StoreCorruptError, AuthenticationError)):
            raise answer


def _refused_in_part(exc: StoreError) -> bool:
    """A refusal that may concern only some names of a call (not refused credentials)."""
    return isinstance(exc, ForbiddenError) and not isinstance(exc, AuthenticationError)


#: Stale-connection retries of one call before they count as transient failures: httpx keeps
#: at most 20 idle connections per pool, each of which can have been closed by the peer.
_STALE_RETRIES = 20


def _stale_connection(exc: BaseException) -> bool:
    """``exc`` is a request that failed because a pooled connection was closed by the peer
    before any byte of an answer (httpx: "Server disconnected without sending a response"), as
    when a server's keep-alive time-out ends an idle connection while a request is on its way.
    httpx is looked up, not imported: when it is not loaded, no error can come from it."""
    httpx = sys.modules.get("httpx")
    if httpx is None:
        return False
    cause = exc.__cause__
    return isinstance(cause, httpx.RemoteProtocolError) and "without sending a response" in str(
        cause
    )


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
