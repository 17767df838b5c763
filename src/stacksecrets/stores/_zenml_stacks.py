"""The stacks on a ZenML server, read as ``stacksecrets.Stack`` objects (``--zenml-stack``)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import attrs

from .._errors import ConfigurationError, StoreError
from .._logging import logger
from .._metacache import is_settled
from .._references import scan
from .._stack import Component, Stack
from .._stackcache import CachedComponent, CachedFlavor, CachedStack, Definitions
from ._batched import at_once
from ._zenml_http import (
    STAMP_RESOLUTION_SECONDS,
    STAMP_SETTLE_SECONDS,
    ZenMLSession,
    chunks,
    json_object,
    name_of,
    oneof,
    uuid_of,
)

if TYPE_CHECKING:
    from .._stackcache import StackCache

__all__ = ["ZenMLStackSource"]

_SHOWN_STACKS = 20


class ZenMLStackSource:
    """Reads stacks and their components from a ZenML server.

    Built on a ``ZenMLStore``'s session (``store.stacks``), so it shares its connections and
    login, and is closed with the store. With a definition cache (``use_cache``), a component's
    configuration and a flavor's schema are read only when their change stamps differ from the
    cached ones (see ``_stackcache``); the stacks themselves are always read live.
    """

    def __init__(
        self,
        session: ZenMLSession,
        scope: Callable[[], str | None] = lambda: None,
        prefetch: Callable[[list[str]], Awaitable[None]] | None = None,
    ) -> None:
        self._session = session
        self._scope = scope
        #: Asks the store early for the stamps of secrets the stacks will reference.
        self._prefetch = prefetch
        self._cache: StackCache | None = None

    def __repr__(self) -> str:
        return f"<ZenMLStackSource {self._session.host}>"

    def use_cache(self, cache: StackCache | None) -> None:
        """Keep component definitions and flavor schemas in ``cache`` (``None``: none)."""
        self._cache = cache

    async def list_stack_names(self) -> list[str]:
        """Every stack name on the server, sorted."""
        return sorted({name_of(item) for item in await self._session.list_all("/stacks", {})})

    async def get_stacks(self, names: Sequence[str] | None = None) -> list[Stack]:
        """Stacks with their components' type, flavor, name and configuration.

        ``None`` reads every stack (sorted by name); else the stacks in the order given. A
        name the server does not know raises ``ConfigurationError`` naming every such name.
        Costs one call per 50 stacks, then one per 50 components and one per 50 flavors
        (and per 50 attached secrets), however many stacks there are; the calls of each step
        go out at once, so the whole read takes two round trips (three with attached
        secrets). With a definition cache, components and flavors whose stamps did not
        change are not read: a warm read of unchanged stacks takes one round trip.
        """
        host = self._session.host
        known = await self._known()
        by_name: dict[str, dict[str, Any]] = {}
        wanted = [] if names is None else list(dict.fromkeys(names))

        async def stacks(chunk: list[str] | None) -> None:
            query = (
                {"hydrate": "true"} if chunk is None else {"name": oneof(chunk), "hydrate": "true"}
            )
            for item in await self._session.list_all("/stacks", query):
                if chunk is None or name_of(item) in chunk:
                    by_name[name_of(item)] = item

        parts: list[list[str] | None] = [None] if names is None else list(chunks(wanted))
        flavor_stamps = await self._with_flavor_stamps(
            known, stacks, parts, _hinted_secrets(wanted, known)
        )
        if names is None:
            wanted = sorted(by_name)
        unknown = [name for name in wanted if name not in by_name]
        if unknown:
            known_names = await self.list_stack_names()
            shown = ", ".join(known_names[:_SHOWN_STACKS])
            if len(known_names) > _SHOWN_STACKS:
                shown += ", ..."
            raise ConfigurationError(
                f"the ZenML server {host} has no stack named "
                f"{', '.join(repr(n) for n in unknown)}; its stacks: {shown or 'none'}"
            )
        return await self._with_components(wanted, by_name, known, flavor_stamps)

    async def get_stack_by_id(self, stack_id: uuid.UUID) -> Stack:
        """The stack with id ``stack_id`` (``zenml stack describe``'s id, the active stack's);
        one call for the stack, then one for its components (none when cached and
        unchanged). An unknown id is a ``ConfigurationError``."""
        path = f"/stacks/{uuid.UUID(str(stack_id))}"
        known = await self._known()
        found: list[dict[str, Any]] = []

        async def stack(_: object) -> None:
            response = await self._session.request(
                "GET", path, params={"hydrate": "true"}, allow={404}
            )
            if response.status_code == 404:  # noqa: PLR2004
                raise ConfigurationError(
                    f"the ZenML server {self._session.host} has no stack with id {stack_id} "
                    "(the active stack of ZenML's configuration: `zenml stack set NAME`)"
                )
            found.append(json_object(response, self._session.where("GET", path)))

        flavor_stamps = await self._with_flavor_stamps(known, stack, [None])
        name = name_of(found[0])
        return (await self._with_components([name], {name: found[0]}, known, flavor_stamps))[0]

    # -- the definition cache ------------------------------------------------------------------

    async def _known(self) -> Definitions:
        if self._cache is None:
            return Definitions()
        await self._session.ensure_login()  # the first call would anyway; it names the user
        scope = self._scope()
        return Definitions() if scope is None else await self._cache.load(scope)

    async def _with_flavor_stamps(
        self,
        known: Definitions,
        read: Callable[[Any], Coroutine[Any, Any, None]],
        parts: Sequence[Any],
        secrets: Sequence[str] = (),
    ) -> dict[str, tuple[str, str]]:
        """``read(part)`` for every part and, at the same time, the current (id, stamp) of the
        cached flavors ("type/flavor" -> (id, stamp)) and the store's prefetch of ``secrets``
        (those the stacks referenced when last read): one round trip."""
        stamps: dict[str, tuple[str, str]] = {}
        cached = sorted({key.split("/", 1)[1] for key in known.flavors})

        async def one(part: tuple[str, Any]) -> None:
            if part[0] == "read":
                await read(part[1])
                return
            if part[0] == "prefetch":
                if self._prefetch is not None:
                    with contextlib.suppress(StoreError):  # a guess: the validation asks again
                        await self._prefetch(list(part[1]))
                return
            for item in await self._session.list_all("/flavors", {"name": oneof(part[1])}):
                body = item.get("body")
                kind = str(body.get("type", "")) if isinstance(body, dict) else ""
                stamps[f"{kind}/{name_of(item)}"] = (str(item.get("id")), _updated(item) or "")

        await at_once(
            one,
            [
                *(("read", p) for p in parts),
                *(("flavors", c) for c in chunks(cached)),
                *([("prefetch", secrets)] if secrets and self._prefetch is not None else []),
            ],
        )
        return stamps

    async def _with_components(
        self,
        wanted: list[str],
        by_name: dict[str, dict[str, Any]],
        known: Definitions,
        flavor_stamps: Mapping[str, tuple[str, str]],
    ) -> list[Stack]:
        host = self._session.host
        layout, listed = self._layout(wanted, by_name)
        all_ids = list(dict.fromkeys(cid for parts in layout.values() for _, cid in parts))
        components = _cached_components(all_ids, listed, known)
        from_cache = len(components)
        to_read = [str(cid) for cid in all_ids if cid not in components]
        flavors = {
            (str(listed[cid].get("type", "")), str(listed[cid].get("flavor_name", "")))
            for cid in all_ids
        }
        schemas, flavors_to_read = _cached_schemas(flavors, known, flavor_stamps)
        fresh, forget = Definitions(), Definitions()
        margin = STAMP_RESOLUTION_SECONDS + STAMP_SETTLE_SECONDS

        async def read(part: tuple[str, list[str]]) -> None:
            what, chunk = part
            if what == "flavors":
                found, answered_at = await self._read_flavors(
                    {f for f in flavors_to_read if f[1] in chunk}
                )
                for (kind, flavor), (ident, stamp, schema) in found.items():
                    if schema is not None:
                        schemas[(kind, flavor)] = schema
                    if is_settled(_utc(stamp), answered_at, margin):
                        fresh.flavors[f"{kind}/{flavor}"] = CachedFlavor(
                            ident, stamp, schema, _now()
                        )
                    else:
                        forget.flavors[f"{kind}/{flavor}"] = CachedFlavor(ident, stamp, None, 0.0)
                return
            items, answered_at = await self._session.list_all_dated(
                "/components", {"id": oneof(chunk), "hydrate": "true"}
            )
            for item in items:
                cid = uuid_of(item.get("id"), host)
                components[cid] = self._component(item)
                changed = _updated(item)
                if changed and is_settled(_utc(changed), answered_at, margin):
                    c = components[cid]
                    fresh.components[str(cid)] = CachedComponent(
                        str(cid),
                        changed,
                        c.type,
                        c.flavor,
                        c.name,
                        dict(c.configuration),
                        dict(c.settings),
                        dict(c.environment),
                        tuple(c.secrets),
                        _now(),
                    )
                elif str(cid) in known.components:
                    forget.components[str(cid)] = known.components[str(cid)]

        flavor_names = sorted({flavor for _, flavor in flavors_to_read})
        # Changed components and flavors in one round trip.
        await at_once(
            read,
            [
                *(("components", chunk) for chunk in chunks(to_read)),
                *(("flavors", chunk) for chunk in chunks(flavor_names)),
            ],
        )
        missing = [cid for cid in all_ids if cid not in components]
        if missing:
            raise StoreError(
                f"the ZenML server {host} did not return components {', '.join(map(str, missing))}"
            )
        logger.debug(
            "stacksecrets.zenml.stacks_read",
            stacks=len(wanted),
            components=len(all_ids),
            components_cached=from_cache,
            flavors=len(flavors),
            flavors_cached=len(flavors) - len(flavors_to_read),
        )
        now = _now()
        for name in wanted:
            composition = tuple(str(cid) for _, cid in layout[name])
            hint = known.stacks.get(name)
            if hint is None or hint.components != composition:
                fresh.stacks[name] = CachedStack(composition, now)
        await self._save(fresh, forget)
        # zenml-run (issue 22): attached secrets by name (ZenML attaches them by id).
        stack_fields = {name: _run_fields(by_name[name].get("metadata")) for name in wanted}
        ids = [*(i for c in components.values() for i in c.secrets)]
        ids += [i for _, secrets in stack_fields.values() for i in secrets]
        names = await self._secret_names(ids) if ids else {}
        for cid, component in components.items():
            components[cid] = attrs.evolve(
                component,
                secrets=[names.get(i, i) for i in component.secrets],
                config_schema=schemas.get((component.type, component.flavor)),
            )
        return [
            Stack(
                name,
                [components[cid] for _, cid in layout[name]],
                runtime="zenml",
                environment=stack_fields[name][0],
                secrets=[names.get(i, i) for i in stack_fields[name][1]],
            )
            for name in wanted
        ]

    def _layout(
        self, wanted: list[str], by_name: dict[str, dict[str, Any]]
    ) -> tuple[dict[str, list[tuple[str, uuid.UUID]]], dict[uuid.UUID, dict[str, Any]]]:
        """Each stack's (type, component id) list, and each component's body as the stack
        listing gave it (type, flavor_name, updated; and its name)."""
        host = self._session.host
        layout: dict[str, list[tuple[str, uuid.UUID]]] = {}
        listed: dict[uuid.UUID, dict[str, Any]] = {}
        for name in wanted:
            metadata = by_name[name].get("metadata")
            groups = metadata.get("components") if isinstance(metadata, dict) else None
            if not isinstance(groups, dict):
                raise StoreError(
                    f"the ZenML server {host} answered without components for stack {name!r}"
                )
            layout[name] = []
            for kind, members in groups.items():
                for member in members if isinstance(members, list) else ():
                    if isinstance(member, dict):
                        cid = uuid_of(member.get("id"), host)
                        layout[name].append((str(kind), cid))
                        body = member.get("body")
                        listed[cid] = {
                            **(body if isinstance(body, dict) else {}),
                            "name": name_of(member),
                        }
        return layout, listed

    async def _save(self, fresh: Definitions, forget: Definitions) -> None:
        scope = self._scope() if self._cache is not None else None
        if self._cache is not None and scope is not None:
            await self._cache.save(scope, fresh, forget)

    async def _secret_names(self, ids: list[str]) -> dict[str, str]:
        """Secret id -> name, for the ids the server still knows (ZenML attaches by id)."""
        found: dict[str, str] = {}

        async def read(chunk: list[str]) -> None:
            for item in await self._session.list_all("/secrets", {"id": oneof(chunk)}):
                found[str(item.get("id"))] = name_of(item)

        await at_once(read, chunks(list(dict.fromkeys(ids))))
        return found

    async def flavor_schemas(
        self, flavors: set[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """(type, flavor) -> the flavor's config schema, as the server stores it."""
        found, _ = await self._read_flavors(flavors)
        return {key: schema for key, (_, _, schema) in found.items() if schema is not None}

    async def _read_flavors(
        self, flavors: set[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], tuple[str, str, dict[str, Any] | None]], datetime | None]:
        """(type, flavor) -> (id, stamp, config schema or ``None``) of the flavors the server
        has, and the server's time at the answer."""
        found: dict[tuple[str, str], tuple[str, str, dict[str, Any] | None]] = {}
        names = sorted({flavor for _, flavor in flavors})
        answered: list[datetime | None] = []

        async def read(chunk: list[str]) -> None:
            items, answered_at = await self._session.list_all_dated(
                "/flavors", {"name": oneof(chunk), "hydrate": "true"}
            )
            answered.append(answered_at)
            for item in items:
                body, metadata = item.get("body"), item.get("metadata")
                if not isinstance(body, dict) or not isinstance(metadata, dict):
                    continue
                schema = metadata.get("config_schema")
                key = (str(body.get("type", "")), name_of(item))
                if key in flavors:
                    found[key] = (
                        str(item.get("id")),
                        _updated(item) or "",
                        schema if isinstance(schema, dict) else None,
                    )

        await at_once(read, chunks(names))
        dates = [a for a in answered if a is not None]
        return found, (min(dates) if len(dates) == len(answered) and dates else None)

    def _component(self, item: dict[str, Any]) -> Component:
        body = item.get("body")
        metadata = item.get("metadata")
        if not isinstance(body, dict) or not isinstance(metadata, dict):
            raise StoreError(
                f"the ZenML server {self._session.host} answered a component without body"
            )
        configuration = metadata.get("configuration") or {}
        settings = metadata.get("settings") or {}  # not in ZenML 0.98's component model
        return Component(
            type=str(body.get("type", "")),
            flavor=str(body.get("flavor_name", "")),
            name=name_of(item),
            configuration=configuration if isinstance(configuration, dict) else {},
            settings=settings if isinstance(settings, dict) else {},
            environment=_run_fields(metadata)[0],
            secrets=_run_fields(metadata)[1],
        )


def _hinted_secrets(stacks: Sequence[str], known: Definitions) -> list[str]:
    """The secrets referenced by the cached components of ``stacks`` as last composed."""
    names: dict[str, None] = {}
    for stack in stacks:
        hint = known.stacks.get(stack)
        for cid in hint.components if hint is not None else ():
            entry = known.components.get(cid)
            if entry is None:
                continue
            for value in _strings([entry.configuration, entry.settings]):
                for found in scan(value).references:
                    names[found.reference.name] = None
    return list(names)


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        if "{{" in value:
            yield value
    elif isinstance(value, Mapping):
        for child in value.values():
            yield from _strings(child)
    elif isinstance(value, (list, tuple)):
        for child in value:
            yield from _strings(child)


def _cached_components(
    ids: list[uuid.UUID], listed: Mapping[uuid.UUID, Mapping[str, Any]], known: Definitions
) -> dict[uuid.UUID, Component]:
    """The components whose cached stamp is the one the stack listing gave."""
    found: dict[uuid.UUID, Component] = {}
    for cid in ids:
        entry = known.components.get(str(cid))
        stamp = listed[cid].get("updated")
        if entry is not None and isinstance(stamp, str) and stamp and entry.stamp == stamp:
            found[cid] = Component(
                type=entry.type,
                flavor=entry.flavor,
                name=entry.name,
                configuration=entry.configuration,
                settings=entry.settings,
                environment=entry.environment,
                secrets=entry.secrets,
            )
    return found


def _cached_schemas(
    flavors: set[tuple[str, str]],
    known: Definitions,
    stamps: Mapping[str, tuple[str, str]],
) -> tuple[dict[tuple[str, str], dict[str, Any]], set[tuple[str, str]]]:
    """The schemas of the flavors whose cached (id, stamp) is the server's, and the flavors
    to read."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    to_read: set[tuple[str, str]] = set()
    for kind, flavor in flavors:
        entry = known.flavors.get(f"{kind}/{flavor}")
        if entry is not None and stamps.get(f"{kind}/{flavor}") == (entry.id, entry.stamp):
            if entry.schema is not None:
                schemas[(kind, flavor)] = entry.schema
        else:
            to_read.add((kind, flavor))
    return schemas, to_read


def _updated(item: Mapping[str, Any]) -> str | None:
    """An entity's ``body.updated`` (its change stamp), as the server wrote it."""
    body = item.get("body")
    stamp = body.get("updated") if isinstance(body, dict) else None
    return stamp if isinstance(stamp, str) and stamp else None


def _utc(stamp: str | None) -> datetime | None:
    """An ISO datetime of ZenML's (naive means UTC), or ``None``."""
    if stamp is None:
        return None
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def _now() -> float:
    return time.time()


def _run_fields(metadata: object) -> tuple[dict[str, Any], list[str]]:
    """A component's or stack's ``environment`` and attached secrets' ids (ZenML 0.90+)."""
    if not isinstance(metadata, dict):
        return {}, []
    environment = metadata.get("environment")
    secrets = metadata.get("secrets")
    return (
        environment if isinstance(environment, dict) else {},
        [str(item) for item in secrets] if isinstance(secrets, list) else [],
    )
