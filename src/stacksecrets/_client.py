"""The clients: ``AsyncClient`` (the async API), ``Client`` (its blocking twin for step code).

``Client`` drives ``AsyncClient`` through one anyio blocking portal running on one daemon
thread for the whole process: no event loop is started per call, and the client works from
plain scripts, from many threads, and from code already running inside an event loop (the
portal's loop is a different thread, so it never nests).

``Client()`` with no store, or with a store URL, shares one ``AsyncClient`` (and so one cache)
per URL and options across the process, as ZenML's ``Client()`` is shared: step code can call
``Client().get_secret(name)`` as often as it likes.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable, Collection, Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar, cast

import anyio
import anyio.from_thread
import attrs
from typing_extensions import Self

from ._errors import ClosedError, SecretNotFoundError, StoreUnavailableError
from ._levels import ValidationLevel
from ._logging import logger
from ._plan import collect
from ._references import scan, substitute
from ._report import ValidationReport
from ._resolver import Resolver, _Counters, _Missing
from ._secret import Secret, SecretValue
from ._stack import Component, Stack
from .stores import SecretStore, open_store, store_url

T = TypeVar("T")


@attrs.frozen
class ClientOptions:
    """How a client talks to its store. Every field has a sensible default."""

    #: At most this many store calls in flight at once.
    max_concurrency: int = 16
    #: Seconds a found secret stays cached.
    cache_ttl: float = 300.0
    #: Seconds a missing secret stays known as missing.
    missing_ttl: float = 5.0
    #: Attempts per store call on transient failures.
    retry_attempts: int = 5
    #: Seconds one store call may spend retrying.
    retry_timeout: float = 30.0
    #: First back-off in seconds (doubling, with as much jitter, up to ``retry_wait_max``).
    retry_wait_initial: float = 0.1
    retry_wait_max: float = 5.0
    #: Seconds one client operation (a validation, a read) may take in all; None: no limit.
    deadline: float | None = None


class AsyncClient:
    """The async API: validate stacks, resolve them, read and write secrets.

    ``store`` is a ``SecretStore`` (which the caller keeps and closes) or a store URL (which the
    client opens and closes); ``None`` means ``STACKSECRETS_STORE``, else the local default.
    """

    def __init__(
        self,
        store: SecretStore | str | None = None,
        *,
        level: ValidationLevel | str | None = None,
        options: ClientOptions | None = None,
        **option_overrides: Any,
    ) -> None:
        self.options = attrs.evolve(options or ClientOptions(), **option_overrides)
        if isinstance(store, SecretStore):
            self.store: SecretStore = store
            self._owns_store = False
        else:
            self.store = open_store(store)
            self._owns_store = True
        self.level = _level(level)
        self.resolver = Resolver(
            self.store,
            max_concurrency=self.options.max_concurrency,
            ttl=self.options.cache_ttl,
            missing_ttl=self.options.missing_ttl,
            retry_attempts=self.options.retry_attempts,
            retry_timeout=self.options.retry_timeout,
            retry_wait_initial=self.options.retry_wait_initial,
            retry_wait_max=self.options.retry_wait_max,
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"<AsyncClient store={self.store.description} level={self.level}>"

    async def __aenter__(self) -> Self:
        self._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the store if this client opened it. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_store:
            await self.store.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("this stacksecrets client is closed")

    async def _run(self, what: str, call: Callable[[], Coroutine[Any, Any, T]]) -> T:
        self._check_open()
        deadline = self.options.deadline
        if deadline is None:
            return await call()
        try:
            with anyio.fail_after(deadline):
                return await call()
        except TimeoutError:
            raise StoreUnavailableError(
                f"{what} against {self.store.description} did not finish within {deadline:g} s"
            ) from None

    # -- validation ----------------------------------------------------------------------

    async def validate_stack(
        self, stack: Stack, *, level: ValidationLevel | str | None = None
    ) -> ValidationReport:
        """Check every reference in ``stack``; the report lists every problem."""
        return await self.validate_stacks([stack], level=level)

    async def validate_stacks(
        self, stacks: Iterable[Stack], *, level: ValidationLevel | str | None = None
    ) -> ValidationReport:
        """Check many stacks in one planned pass: a secret shared by stacks is read once."""
        chosen = self.level if level is None else _level(level)
        stacks = list(stacks)
        return await self._run("validation", lambda: self.resolver.validate(stacks, chosen))

    async def resolve_stack(self, stack: Stack) -> Stack:
        """A copy of ``stack`` with every reference replaced by its value.

        Leaves that held a reference become ``SecretValue`` objects (masked in reprs and logs;
        ``get_secret_value()`` gives the string). Raises ``SecretValidationError`` with the
        full report if any reference cannot be resolved.
        """
        report = await self.validate_stack(stack, level=ValidationLevel.SECRET_AND_KEY_EXISTS)
        report.raise_for_problems()
        refs = collect([stack])
        secrets: dict[str, Secret] = {}
        for name in refs.secrets:
            secrets[name] = await self.get_secret(name)

        def leaf(value: str) -> str | SecretValue:
            found = scan(value)
            if found.is_literal:
                return value
            text = substitute(value, found, lambda ref: secrets[ref.name].values[ref.key])
            return SecretValue(text) if found.references else text

        return Stack(
            stack.name,
            [
                Component(
                    c.type,
                    c.flavor,
                    c.name,
                    _map_leaves(c.configuration, leaf),
                    _map_leaves(c.settings, leaf),
                )
                for c in stack.components
            ],
        )

    # -- secrets -------------------------------------------------------------------------

    async def get_secret(self, name: str) -> Secret:
        """The secret ``name`` (from the cache when fresh). ``SecretNotFoundError`` if absent."""

        async def read() -> Secret:
            outcome = await self.resolver.fetch(name, _Counters())
            if isinstance(outcome, Secret):
                return outcome
            if isinstance(outcome, _Missing):
                raise SecretNotFoundError(name, store=self.store.description)
            raise outcome

        return await self._run(f"reading secret {name!r}", read)

    async def list_secrets(self) -> list[str]:
        """Every secret name in the store, sorted."""
        return await self._run("listing secrets", self.store.list_secrets)

    async def create_secret(self, name: str, values: Mapping[str, str]) -> None:
        await self._write(name, "create", lambda: self.store.create_secret(name, values))

    async def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        await self._write(
            name,
            "update",
            lambda: self.store.update_secret(name, values, remove_keys=remove_keys),
        )

    async def delete_secret(self, name: str) -> None:
        await self._write(name, "delete", lambda: self.store.delete_secret(name))

    async def _write(
        self, name: str, action: str, call: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        try:
            await self._run(f"{action} of secret {name!r}", call)
        finally:
            self.resolver.invalidate(name)
        logger.debug("stacksecrets.secret.write", action=action, secret=name)

    def invalidate(self, name: str) -> None:
        """Forget the cached answer for ``name``."""
        self.resolver.invalidate(name)

    def clear_cache(self) -> None:
        self.resolver.clear()


def _level(level: ValidationLevel | str | None) -> ValidationLevel:
    if level is None:
        return ValidationLevel.from_env()
    if isinstance(level, ValidationLevel):
        return level
    return ValidationLevel.parse(level)


def _map_leaves(value: Any, leaf: Callable[[str], Any]) -> Any:
    if isinstance(value, str):
        return leaf(value)
    if isinstance(value, Mapping):
        return {k: _map_leaves(v, leaf) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map_leaves(v, leaf) for v in value)
    return value


async def validate_stack(
    stack: Stack,
    *,
    store: SecretStore | str | None = None,
    level: ValidationLevel | str | None = None,
    **options: Any,
) -> ValidationReport:
    """One-off validation: open the store, check ``stack``, close the store."""
    async with AsyncClient(store, level=level, **options) as client:
        return await client.validate_stack(stack)


async def validate_stacks(
    stacks: Iterable[Stack],
    *,
    store: SecretStore | str | None = None,
    level: ValidationLevel | str | None = None,
    **options: Any,
) -> ValidationReport:
    """One-off validation of many stacks in one pass."""
    async with AsyncClient(store, level=level, **options) as client:
        return await client.validate_stacks(stacks)


# -- the blocking side ---------------------------------------------------------------------


class _PortalThread:
    """One daemon thread running an event loop with a blocking portal, for the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._shared: dict[tuple[object, ...], AsyncClient] = {}

    def portal(self) -> anyio.from_thread.BlockingPortal:
        with self._lock:
            if self._portal is None:
                self._portal = self._start()
            return self._portal

    def _start(self) -> anyio.from_thread.BlockingPortal:
        ready = threading.Event()
        box: list[anyio.from_thread.BlockingPortal | BaseException] = []

        async def main() -> None:
            try:
                async with anyio.from_thread.BlockingPortal() as portal:
                    box.append(portal)
                    ready.set()
                    await portal.sleep_until_stopped()
            except BaseException as exc:  # pragma: no cover - startup failure
                box.append(exc)
                ready.set()
                raise

        thread = threading.Thread(
            target=anyio.run, args=(main,), name="stacksecrets-portal", daemon=True
        )
        thread.start()
        ready.wait()
        result = box[0]
        if isinstance(result, BaseException):  # pragma: no cover
            raise result
        return result

    def shared_client(
        self, key: tuple[object, ...], make: Callable[[], AsyncClient]
    ) -> AsyncClient:
        with self._lock:
            client = self._shared.get(key)
            if client is None or client._closed:  # noqa: SLF001
                client = self._shared[key] = make()
            return client

    def close_shared(self) -> None:
        with self._lock:
            portal, clients = self._portal, list(self._shared.values())
            self._shared.clear()
        if portal is None:
            return
        for client in clients:
            try:
                portal.call(client.aclose)
            except Exception:  # noqa: BLE001 - closing at exit must not raise
                logger.debug("stacksecrets.client.close_failed", store=client.store.description)


_RUNTIME = _PortalThread()
atexit.register(_RUNTIME.close_shared)


class Client:
    """The blocking twin of ``AsyncClient``, for step code and scripts.

    >>> Client().get_secret("mlflow_secret").secret_values["username"]  # doctest: +SKIP
    """

    def __init__(
        self,
        store: SecretStore | str | None = None,
        *,
        level: ValidationLevel | str | None = None,
        options: ClientOptions | None = None,
        **option_overrides: Any,
    ) -> None:
        self._portal = _RUNTIME.portal()
        opts = attrs.evolve(options or ClientOptions(), **option_overrides)
        chosen = _level(level)

        def make() -> AsyncClient:
            return self._portal.call(_build_client, store, chosen, opts)

        if isinstance(store, SecretStore):
            self._client = make()
            self._owned = True
        else:
            key = (store_url(store), chosen, opts)
            self._client = _RUNTIME.shared_client(key, make)
            self._owned = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<Client store={self._client.store.description} level={self._client.level}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop using this client. A client around a store object closes its engine; clients
        on URLs share the process-wide engine, which is closed at exit. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owned:
            self._portal.call(self._client.aclose)

    def _call(self, func: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        if self._closed:
            raise ClosedError("this stacksecrets client is closed")
        return cast("T", self._portal.call(func, *args))

    @property
    def async_client(self) -> AsyncClient:
        """The ``AsyncClient`` this client drives (on the portal's event loop)."""
        return self._client

    def validate_stack(
        self, stack: Stack, *, level: ValidationLevel | str | None = None
    ) -> ValidationReport:
        return self._call(_kw(self._client.validate_stack, level=level), stack)

    def validate_stacks(
        self, stacks: Iterable[Stack], *, level: ValidationLevel | str | None = None
    ) -> ValidationReport:
        return self._call(_kw(self._client.validate_stacks, level=level), list(stacks))

    def resolve_stack(self, stack: Stack) -> Stack:
        return self._call(self._client.resolve_stack, stack)

    def get_secret(self, name: str) -> Secret:
        return self._call(self._client.get_secret, name)

    def list_secrets(self) -> list[str]:
        return self._call(self._client.list_secrets)

    def create_secret(self, name: str, values: Mapping[str, str]) -> None:
        self._call(self._client.create_secret, name, values)

    def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        self._call(_kw(self._client.update_secret, remove_keys=remove_keys), name, values)

    def delete_secret(self, name: str) -> None:
        self._call(self._client.delete_secret, name)

    def invalidate(self, name: str) -> None:
        self._portal.call(self._client.invalidate, name)

    def clear_cache(self) -> None:
        self._portal.call(self._client.clear_cache)


async def _build_client(
    store: SecretStore | str | None, level: ValidationLevel, options: ClientOptions
) -> AsyncClient:
    # Built on the portal's loop so that everything the client creates lives there.
    return AsyncClient(store, level=level, options=options)


def _kw(
    func: Callable[..., Coroutine[Any, Any, T]], **kwargs: Any
) -> Callable[..., Coroutine[Any, Any, T]]:
    async def call(*args: Any) -> T:
        return await func(*args, **kwargs)

    return call
