"""The stacks on a ZenML server, read as ``stacksecrets.Stack`` objects (``--zenml-stack``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import attrs

from .._errors import ConfigurationError, StoreError
from .._stack import Component, Stack
from ._batched import at_once
from ._zenml_http import ZenMLSession, chunks, json_object, name_of, oneof, uuid_of

__all__ = ["ZenMLStackSource"]

_SHOWN_STACKS = 20


class ZenMLStackSource:
    """Reads stacks and their components from a ZenML server.

    Built on a ``ZenMLStore``'s session (``store.stacks``), so it shares its connections and
    login, and is closed with the store.
    """

    def __init__(self, session: ZenMLSession) -> None:
        self._session = session

    def __repr__(self) -> str:
        return f"<ZenMLStackSource {self._session.host}>"

    async def list_stack_names(self) -> list[str]:
        """Every stack name on the server, sorted."""
        return sorted({name_of(item) for item in await self._session.list_all("/stacks", {})})

    async def get_stacks(self, names: Sequence[str] | None = None) -> list[Stack]:
        """Stacks with their components' type, flavor, name and configuration.

        ``None`` reads every stack (sorted by name); else the stacks in the order given. A
        name the server does not know raises ``ConfigurationError`` naming every such name.
        Costs one call per 50 stacks, one per 50 components, and one per 50 flavors (and
        per 50 attached secrets), however many stacks there are; the calls of each step go
        out at once, so the whole read takes three round trips.
        """
        host = self._session.host
        if names is None:
            items = await self._session.list_all("/stacks", {"hydrate": "true"})
            by_name = {name_of(item): item for item in items}
            wanted = sorted(by_name)
        else:
            wanted = list(dict.fromkeys(names))
            by_name = {}

            async def stacks(chunk: list[str]) -> None:
                for item in await self._session.list_all(
                    "/stacks", {"name": oneof(chunk), "hydrate": "true"}
                ):
                    if name_of(item) in chunk:
                        by_name[name_of(item)] = item

            await at_once(stacks, chunks(wanted))
            unknown = [name for name in wanted if name not in by_name]
            if unknown:
                known = await self.list_stack_names()
                shown = ", ".join(known[:_SHOWN_STACKS])
                if len(known) > _SHOWN_STACKS:
                    shown += ", ..."
                raise ConfigurationError(
                    f"the ZenML server {host} has no stack named "
                    f"{', '.join(repr(n) for n in unknown)}; its stacks: {shown or 'none'}"
                )

        return await self._with_components(wanted, by_name)

    async def get_stack_by_id(self, stack_id: uuid.UUID) -> Stack:
        """The stack with id ``stack_id`` (``zenml stack describe``'s id, the active stack's);
        one call for the stack and one for its components. An unknown id is a
        ``ConfigurationError``."""
        path = f"/stacks/{uuid.UUID(str(stack_id))}"
        response = await self._session.request("GET", path, params={"hydrate": "true"}, allow={404})
        if response.status_code == 404:  # noqa: PLR2004
            raise ConfigurationError(
                f"the ZenML server {self._session.host} has no stack with id {stack_id} "
                "(the active stack of ZenML's configuration: `zenml stack set NAME`)"
            )
        item = json_object(response, self._session.where("GET", path))
        name = name_of(item)
        return (await self._with_components([name], {name: item}))[0]

    async def _with_components(
        self, wanted: list[str], by_name: dict[str, dict[str, Any]]
    ) -> list[Stack]:
        host = self._session.host
        layout: dict[str, list[tuple[str, uuid.UUID]]] = {}
        for name in wanted:
            metadata = by_name[name].get("metadata")
            groups = metadata.get("components") if isinstance(metadata, dict) else None
            if not isinstance(groups, dict):
                raise StoreError(
                    f"the ZenML server {host} answered without components for stack {name!r}"
                )
            layout[name] = [
                (str(kind), uuid_of(component.get("id"), host))
                for kind, components in groups.items()
                if isinstance(components, list)
                for component in components
                if isinstance(component, dict)
            ]

        all_ids = list(dict.fromkeys(cid for parts in layout.values() for _, cid in parts))
        components: dict[uuid.UUID, Component] = {}

        async def read_components(chunk: list[str]) -> None:
            for item in await self._session.list_all(
                "/components", {"id": oneof(chunk), "hydrate": "true"}
            ):
                components[uuid_of(item.get("id"), host)] = self._component(item)

        await at_once(read_components, chunks([str(cid) for cid in all_ids]))
        missing = [cid for cid in all_ids if cid not in components]
        if missing:
            raise StoreError(
                f"the ZenML server {host} did not return components {', '.join(map(str, missing))}"
            )
        # zenml-run (issue 22): attached secrets by name, flavors' config schemas.
        stack_fields = {name: _run_fields(by_name[name].get("metadata")) for name in wanted}
        ids = [*(i for c in components.values() for i in c.secrets)]
        ids += [i for _, secrets in stack_fields.values() for i in secrets]
        names: dict[str, str] = {}
        schemas: dict[tuple[str, str], dict[str, Any]] = {}

        async def look_up(what: str) -> None:
            if what == "secrets":
                names.update(await self._secret_names(ids))
            else:
                flavors = {(c.type, c.flavor) for c in components.values()}
                schemas.update(await self.flavor_schemas(flavors))

        # The attached secrets' names and the flavors' schemas in one round trip.
        await at_once(look_up, ["secrets", "flavors"])
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
        found: dict[tuple[str, str], dict[str, Any]] = {}
        names = sorted({flavor for _, flavor in flavors})

        async def read(chunk: list[str]) -> None:
            for item in await self._session.list_all(
                "/flavors", {"name": oneof(chunk), "hydrate": "true"}
            ):
                body, metadata = item.get("body"), item.get("metadata")
                if not isinstance(body, dict) or not isinstance(metadata, dict):
                    continue
                schema = metadata.get("config_schema")
                key = (str(body.get("type", "")), name_of(item))
                if key in flavors and isinstance(schema, dict):
                    found[key] = schema

        await at_once(read, chunks(names))
        return found

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
