"""The clients: ``AsyncClient`` (the async API), ``Client`` (its blocking twin for step code).

``AsyncClient`` is a thin front over a store, the engine (``_engine.Engine``) and a deadline.

``Client`` drives ``AsyncClient`` through one anyio blocking portal running on one daemon
thread for the whole process: no event loop is started per call, and the client works from
plain scripts, from many threads, and from code already running inside an event loop (the
portal's loop is a different thread, so it never nests). After ``os.fork()`` the child starts
its own portal thread on first use; clients on store URLs rebuild their engine there.

``Client()`` with no store, or with a store URL, shares one ``AsyncClient`` (and so one cache)
per URL and options across the process, as ZenML's ``Client()`` is shared: step code can call
``Client().get_secret(name)`` as often as it likes.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import os
import threading
from collections.abc import Callable, Collection, Coroutine, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import anyio
import anyio.to_thread
import attrs
from typing_extensions import Self, Unpack

from ._engine import Engine
from ._errors import ClosedError, StoreError, StoreUnavailableError
from ._levels import ValidationLevel
from ._logging import logger
from ._options import ClientOptions, OptionOverrides
from ._references import is_secret_reference
from ._report import ValidationReport
from ._secret import Secret
from ._stack import Stack
from ._zenml.types import class_schemas, settings_class_schemas, zenml_importable
from .stores import SecretStore, open_store, store_url

if TYPE_CHECKING:
    from anyio.from_thread import BlockingPortal

T = TypeVar("T")

#: A store object, a store URL, several URLs (a chain, looked up in order), or ``None``.
StoreSpec: TypeAlias = "SecretStore | str | Sequence[str] | None"


class AsyncClient:
    """The async API: validate stacks, resolve them, read and write secrets.

    ``store`` is a ``SecretStore`` (which the caller keeps and closes), a store URL, or a list
    of URLs (a chain: each secret from the first store that has it, writes to the first), which
    the client opens and closes; ``None`` means the store found as ZenML finds its server:
    ``STACKSECRETS_STORE``, else ``ZENML_STORE_URL``, else ZenML's configuration after
    ``zenml login``, else the local default (see ``docs/zenml-users.md``).
    ``level`` is the default validation level; ``None`` reads ``STACKSECRETS_VALIDATION_LEVEL``
    (then ``ZENML_SECRET_VALIDATION_LEVEL``) when a validation asks for it, not before. Options
    come as an ``options`` object, as keyword arguments (``max_concurrency=4``), or both (the
    keywords win).
    """

    def __init__(
        self,
        store: StoreSpec = None,
        *,
        level: ValidationLevel | str | None = None,
        options: ClientOptions | None = None,
        **overrides: Unpack[OptionOverrides],
    ) -> None:
        self.options = (options or ClientOptions()).with_overrides(overrides)
        # Checked now (a typo is an error at once); read from the environment only later.
        self._level = None if level is None else _level(level)
        if isinstance(store, SecretStore):
            self.store: SecretStore = store
            self._owns_store = False
        else:
            self.store = open_store(store)
            self._owns_store = True
        self._engine = Engine(self.store, self.options)
        self._closed = False

    def __repr__(self) -> str:
        level = self._level or "from environment"
        return f"<AsyncClient store={self.store.description} level={level}>"

    @property
    def level(self) -> ValidationLevel:
        """The default validation level (read from the environment if none was given)."""
        return _level(self._level)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def in_flight(self) -> int:
        """How many store look-ups are running now: 0 once every operation has ended."""
        return self._engine.in_flight

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
        """``call`` under the one deadline of this operation."""
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
        chosen = _level(self._level if level is None else level)
        stacks = list(stacks)

        async def validate() -> ValidationReport:
            # At NONE nothing is asked of the store, flavor schemas included.
            typed = stacks
            if chosen is not ValidationLevel.NONE:
                typed = await _with_flavor_schemas(self.store, stacks)
            report = await self._engine.validate(typed, chosen)
            note = _types_unknown_note(typed)
            return attrs.evolve(report, notes=(*report.notes, note)) if note else report

        report = await self._run("validation", validate)
        return attrs.evolve(report, store=self.store.description)

    async def resolve_stack(self, stack: Stack) -> Stack:
        """A copy of ``stack`` with every reference replaced by its value.

        Leaves that held a reference become ``SecretValue`` objects (masked in reprs and logs;
        ``get_secret_value()`` gives the string). Raises ``SecretValidationError`` with the
        full report if any reference cannot be resolved.
        """
        (resolved,) = await self.resolve_stacks([stack])
        return resolved

    async def resolve_stacks(self, stacks: Iterable[Stack]) -> list[Stack]:
        """``resolve_stack`` for many stacks in one planned pass, under one deadline."""
        stacks = list(stacks)
        return await self._run("resolution", lambda: self._engine.resolve(stacks))

    # -- secrets -------------------------------------------------------------------------

    async def get_secret(self, name: str) -> Secret:
        """The secret ``name`` (from the cache when fresh). ``SecretNotFoundError`` if absent."""
        return await self._run(f"reading secret {name!r}", lambda: self._engine.read(name))

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
            self._engine.invalidate(name)
        logger.debug("stacksecrets.secret.write", action=action, secret=name)

    def invalidate(self, name: str) -> None:
        """Forget the cached answer for ``name``."""
        self._engine.invalidate(name)

    def clear_cache(self) -> None:
        self._engine.clear()


def _level(level: ValidationLevel | str | None) -> ValidationLevel:
    if level is None:
        return ValidationLevel.from_env()
    if isinstance(level, ValidationLevel):
        return level
    return ValidationLevel.parse(level)


async def validate_stack(
    stack: Stack,
    *,
    store: StoreSpec = None,
    level: ValidationLevel | str | None = None,
    options: ClientOptions | None = None,
    **overrides: Unpack[OptionOverrides],
) -> ValidationReport:
    """One-off validation: open the store, check ``stack``, close the store."""
    return await validate_stacks([stack], store=store, level=level, options=options, **overrides)


async def validate_stacks(
    stacks: Iterable[Stack],
    *,
    store: StoreSpec = None,
    level: ValidationLevel | str | None = None,
    options: ClientOptions | None = None,
    **overrides: Unpack[OptionOverrides],
) -> ValidationReport:
    """One-off validation of many stacks in one pass."""
    async with AsyncClient(store, level=level, options=options, **overrides) as client:
        return await client.validate_stacks(stacks)


# -- the blocking side ---------------------------------------------------------------------

#: How long an interrupted blocking call waits for its cancelled operation to end.
_CANCEL_WAIT = 5.0


class _PortalThread:
    """One daemon thread running an event loop with a blocking portal, for the process.

    A forked child has no such thread (only the forking thread survives ``fork``): the child
    starts its own on first use, and the parent's shared clients, bound to the parent's loop
    and connections, are forgotten there (never closed: they are the parent's).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._portal: BlockingPortal | None = None
        self._shared: dict[tuple[object, ...], AsyncClient] = {}
        #: Bumped in a forked child: objects of an older generation belong to the parent.
        self.generation = 0

    def after_fork_in_child(self) -> None:
        self._lock = threading.RLock()
        self._portal = None
        self._shared = {}
        self.generation += 1

    def portal(self) -> BlockingPortal:
        with self._lock:
            if self._portal is None:
                self._portal = self._start()
            return self._portal

    def _start(self) -> BlockingPortal:
        from anyio.from_thread import BlockingPortal  # the sync Client's alone

        ready = threading.Event()
        box: list[BlockingPortal | BaseException] = []

        async def main() -> None:
            try:
                async with BlockingPortal() as portal:
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

    def call(self, func: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """``await func(*args)`` on the portal's loop, from a thread outside it.

        If the waiting thread is interrupted (Ctrl-C's ``KeyboardInterrupt``, or any other
        exception raised into it), the operation is cancelled and given a moment to end before
        the interruption goes on: nothing keeps making requests behind the caller's back.
        """
        portal = self.portal()
        ended = threading.Event()

        async def run() -> T:
            try:
                return await func(*args)
            finally:
                ended.set()

        future: concurrent.futures.Future[T] = portal.start_task_soon(run)
        try:
            return future.result()
        except BaseException:
            if not future.done():
                future.cancel()
                ended.wait(_CANCEL_WAIT)
            raise

    def shared_client(
        self, key: tuple[object, ...], make: Callable[[], AsyncClient]
    ) -> AsyncClient:
        with self._lock:
            client = self._shared.get(key)
            if client is None or client.closed:
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
os.register_at_fork(after_in_child=_RUNTIME.after_fork_in_child)


class Client:
    """The blocking twin of ``AsyncClient``, for step code and scripts.

    Takes the same arguments. Clients on the same store URL and options share one engine (and
    its cache) in the process; a client around a ``SecretStore`` object has its own.

    >>> Client().get_secret("mlflow_secret").secret_values["username"]  # doctest: +SKIP
    """

    def __init__(
        self,
        store: StoreSpec = None,
        *,
        level: ValidationLevel | str | None = None,
        options: ClientOptions | None = None,
        **overrides: Unpack[OptionOverrides],
    ) -> None:
        self._store = store
        self._level = None if level is None else _level(level)
        self._options = (options or ClientOptions()).with_overrides(overrides)
        self._closed = False
        self._generation = -1
        self._client = self._connect()

    @classmethod
    def close_shared(cls) -> None:
        """Close the engines that clients on store URLs share (done at exit anyway).

        For tests, and for programs that change ``STACKSECRETS_STORE`` or the files behind a
        store while running: the next ``Client()`` starts afresh.
        """
        _RUNTIME.close_shared()

    def _connect(self) -> AsyncClient:
        """This client's engine, built anew in a forked child (the parent's is unusable)."""
        if self._generation == _RUNTIME.generation:
            return self._client
        if self._generation != -1 and isinstance(self._store, SecretStore):
            raise ClosedError(
                "this stacksecrets Client was built around a store object before os.fork(); "
                "build a new one in the child process"
            )
        store, level, options = self._store, self._level, self._options
        if isinstance(store, SecretStore):
            client = _RUNTIME.call(_build_client, store, level, options)
        else:
            urls = (
                store_url(store)
                if store is None or isinstance(store, str)
                else tuple(store_url(url) for url in store)
            )
            key = (urls, level, options)
            client = _RUNTIME.shared_client(
                key, lambda: _RUNTIME.call(_build_client, store, level, options)
            )
        self._client = client
        self._generation = _RUNTIME.generation
        return client

    def __repr__(self) -> str:
        level = self._level or "from environment"
        return f"<Client store={self._client.store.description} level={level}>"

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
        if isinstance(self._store, SecretStore) and self._generation == _RUNTIME.generation:
            _RUNTIME.call(self._client.aclose)

    def _call(self, func: Callable[[AsyncClient], Coroutine[Any, Any, T]]) -> T:
        if self._closed:
            raise ClosedError("this stacksecrets client is closed")
        client = self._connect()
        return _RUNTIME.call(func, client)

    @property
    def async_client(self) -> AsyncClient:
        """The ``AsyncClient`` this client drives (on the portal's event loop)."""
        return self._connect()

    def validate_stack(
        self, stack: Stack, *, level: ValidationLevel | str | None = None
    ) -> ValidationReport:
        return self._call(lambda c: c.validate_stack(stack, level=level))

    def validate_stacks(
        self, stacks: Iterable[Stack], *, level: ValidationLevel | str | None = None
    ) -> ValidationReport:
        stacks = list(stacks)
        return self._call(lambda c: c.validate_stacks(stacks, level=level))

    def resolve_stack(self, stack: Stack) -> Stack:
        return self._call(lambda c: c.resolve_stack(stack))

    def resolve_stacks(self, stacks: Iterable[Stack]) -> list[Stack]:
        stacks = list(stacks)
        return self._call(lambda c: c.resolve_stacks(stacks))

    def get_secret(self, name: str) -> Secret:
        return self._call(lambda c: c.get_secret(name))

    def list_secrets(self) -> list[str]:
        return self._call(lambda c: c.list_secrets())

    def create_secret(self, name: str, values: Mapping[str, str]) -> None:
        self._call(lambda c: c.create_secret(name, values))

    def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        self._call(lambda c: c.update_secret(name, values, remove_keys=remove_keys))

    def delete_secret(self, name: str) -> None:
        self._call(lambda c: c.delete_secret(name))

    def invalidate(self, name: str) -> None:
        """Forget the cached answer for ``name``."""
        self._call(lambda c: _on_loop(c.invalidate, name))

    def clear_cache(self) -> None:
        self._call(lambda c: _on_loop(c.clear_cache))


async def _build_client(
    store: StoreSpec, level: ValidationLevel | None, options: ClientOptions
) -> AsyncClient:
    # Built on the portal's loop so that everything the client creates lives there.
    return AsyncClient(store, level=level, options=options)


async def _on_loop(func: Callable[..., None], *args: object) -> None:
    # The engine's caches are touched from its event loop only.
    func(*args)


async def _with_flavor_schemas(store: SecretStore, stacks: list[Stack]) -> list[Stack]:
    """zenml-run (issue 22): stacks that ZenML runs, with each component's flavor config
    schema: from ZenML's own config class when ZenML is importable here (the pipeline hook,
    ``stacksecrets validate`` in ZenML's environment), else from the ZenML server the store is
    (the attributes' types for the run-time check); unchanged when neither knows them."""
    wanted = {
        (c.type, c.flavor)
        for s in stacks
        if s.runtime == "zenml" and s.kind == "stack"
        for c in s.components
        if c.config_schema is None and c.flavor
    }
    schemas: dict[tuple[str, str], Any] = {}
    settings_keys = {
        str(key)
        for s in stacks
        if s.runtime == "zenml"
        for c in s.components
        for key in c.settings
        if "." in str(key)
    }
    settings: dict[str, Any] = {}
    if (wanted or settings_keys) and zenml_importable():
        schemas.update(await anyio.to_thread.run_sync(class_schemas, wanted))
        settings = await anyio.to_thread.run_sync(settings_class_schemas, settings_keys)
        if settings:
            stacks = [
                attrs.evolve(
                    s,
                    components=[
                        attrs.evolve(
                            c,
                            settings_schemas={k: settings[k] for k in c.settings if k in settings},
                        )
                        if any(k in settings for k in c.settings)
                        else c
                        for c in s.components
                    ],
                )
                if s.runtime == "zenml"
                else s
                for s in stacks
            ]
    source = getattr(store, "stacks", None)
    fetch = getattr(source, "flavor_schemas", None)
    rest = wanted - set(schemas)
    if fetch is not None and rest:
        try:
            schemas.update({k: v for k, v in (await fetch(rest)).items() if v is not None})
        except StoreError as error:  # the types are a bonus: the validation goes on without
            logger.info("stacksecrets.zenml.flavor_schemas_unavailable", error=type(error).__name__)
    if not schemas:
        _types_unknown(stacks)
        return stacks
    typed = [
        attrs.evolve(
            s,
            components=[
                attrs.evolve(c, config_schema=schemas.get((c.type, c.flavor)))
                if c.config_schema is None
                else c
                for c in s.components
            ],
        )
        if s.runtime == "zenml"
        else s
        for s in stacks
    ]
    _types_unknown(typed)
    return typed


def _types_unknown_note(stacks: list[Stack]) -> str:
    """The report's note, once: components of stacks that ZenML runs with a whole-value
    reference in an attribute whose type is not known (no flavor config class importable,
    no server schema): those references were not checked by type. Empty when there is none."""
    untyped = sorted(
        {
            f"{c.type}/{c.flavor}"
            for s in stacks
            if s.runtime == "zenml" and s.kind == "stack"
            for c in s.components
            if c.config_schema is None
            and any(isinstance(v, str) and is_secret_reference(v) for v in c.configuration.values())
        }
    )
    if not untyped:
        return ""
    shown = ", ".join(untyped[:10]) + (", ..." if len(untyped) > 10 else "")  # noqa: PLR2004
    return (
        f"attribute types unknown for {_plural(len(untyped), 'component')} ({shown}): their "
        "references were not checked against the type ZenML gives the attribute (no flavor "
        "config class importable here and no ZenML server's flavor schema)"
    )


def _plural(number: int, noun: str) -> str:
    return f"{number} {noun if number == 1 else noun + 's'}"


def _types_unknown(stacks: list[Stack]) -> None:
    """Say once, not per attribute, that the types of some components are not known (no
    ZenML server at hand, or a flavor it does not know): their references are not guessed."""
    unknown = sorted(
        {
            f"{c.type}/{c.flavor}"
            for s in stacks
            if s.runtime == "zenml" and s.kind == "stack"
            for c in s.components
            if c.config_schema is None and c.configuration
        }
    )
    if unknown:
        logger.info(
            "stacksecrets.zenml.types_unknown",
            flavors=unknown[:20],
            count=len(unknown),
            hint="attribute types come from a ZenML server's flavor schemas "
            "(--store zenml+...); without them references are not checked by type",
        )
