"""Stacks and their components, and the walk over every string leaf in them.

ZenML only looks at top-level configuration values; stacksecrets walks nested mappings and
lists in both ``configuration`` and ``settings``, so a reference in
``settings.docker.environment.TOKEN`` or ``configuration.hosts[2]`` is found too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs

from ._describe import attrs_repr

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen(repr=False)
class Component:
    """One stack component: its type, flavor, name, configuration and settings."""

    __repr__ = attrs_repr

    type: str
    flavor: str
    name: str
    configuration: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    settings: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    #: ZenML's ``environment`` of a component, pipeline or step: set as environment variables
    #: as written (ZenML resolves no reference in it).
    environment: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    #: Secrets attached (a component's ``--secret``) or listed (``secrets:`` of a run
    #: configuration or step), by name or id: ZenML sets their values as environment variables.
    secrets: tuple[str, ...] = attrs.field(default=(), converter=_names)
    #: Other fields ZenML hands over as written (a run configuration's ``parameters`` and
    #: ``extra``), by field name.
    fields: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    #: The flavor's configuration schema (JSON schema) as a ZenML server stores it, when the
    #: stack was read from one: the attributes' types for the ZenML run-time check.
    config_schema: Mapping[str, Any] | None = attrs.field(default=None, eq=False, repr=False)
    #: Schemas of flavors' settings classes by settings key (``"orchestrator.kubernetes"``),
    #: when ZenML is importable: the settings attributes' types for the same check.
    settings_schemas: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, eq=False, repr=False
    )

    def string_leaves(self) -> Iterator[tuple[str, str]]:
        """Every string value in configuration, settings, environment and other fields,
        with its attribute path."""
        yield from _walk(self.configuration, "configuration")
        yield from _walk(self.settings, "settings")
        if self.environment:
            yield from _walk(self.environment, "environment")
        for name, value in self.fields.items():
            yield from _walk(value, str(name))


def _components(value: Sequence[Component]) -> tuple[Component, ...]:
    return tuple(value)


#: Who resolves a stack's references when it runs: stacksecrets (or the application), or
#: ZenML's own run time, which resolves fewer of them (see ``docs/zenml-users.md``).
RUNTIMES = ("native", "zenml")
#: What a ``Stack`` was read from: a stack, a ZenML run configuration file, or a ZenML
#: pipeline object; for the last two the "components" are the pipeline and its steps.
KINDS = ("stack", "run config", "pipeline")


@attrs.frozen(repr=False)
class Stack:
    """A named set of components.

    ``runtime`` says who resolves the references when the stack runs: ``"native"``
    (stacksecrets, the default) or ``"zenml"`` (a stack read from a ZenML server or a
    ``zenml stack export`` file, or a run configuration), for which validation also reports
    every reference ZenML's run time would not resolve. ``kind`` is ``"stack"``, or
    ``"run config"`` for a ZenML run configuration and ``"pipeline"`` for a ZenML pipeline
    object (``stacksecrets.zenml.settings_sources``), whose components are ``pipeline`` and
    ``step``.
    """

    __repr__ = attrs_repr

    name: str
    components: tuple[Component, ...] = attrs.field(factory=tuple, converter=_components)
    runtime: str = attrs.field(default="native", validator=attrs.validators.in_(RUNTIMES))
    kind: str = attrs.field(default="stack", validator=attrs.validators.in_(KINDS))
    #: The stack's own ``environment`` and attached ``secrets`` (ZenML 0.90 and later).
    environment: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    secrets: tuple[str, ...] = attrs.field(default=(), converter=_names)

    @components.validator
    def _unique_names(self, _attribute: object, value: tuple[Component, ...]) -> None:
        seen: set[tuple[str, str]] = set()
        for component in value:
            ident = (component.type, component.name)
            if ident in seen:
                raise ValueError(
                    f"stack {self.name!r} has two {component.type} components named "
                    f"{component.name!r}"
                )
            seen.add(ident)


@attrs.frozen(order=True, repr=False)
class Usage:
    """One place a reference is used: stack, component and attribute path.

    ``source`` is the kind of the stack (``"stack"`` or ``"run config"``): a run
    configuration reads ``run config 'run.yaml', step 'trainer', settings.docker.x``.
    """

    __repr__ = attrs_repr

    stack: str
    component_type: str
    component_name: str
    attribute: str
    source: str = "stack"

    def __str__(self) -> str:
        # A type from a hostile file must not forge report lines or send terminal escapes.
        kind = self.component_type
        kind = kind if kind.isprintable() else repr(kind)
        if kind == "stack" and not self.component_name:  # the stack's own fields
            return f"{self.source} {self.stack!r}, {self.attribute}"
        if self.source == "run config" and kind == "pipeline":
            return f"run config {self.stack!r}, pipeline, {self.attribute}"
        if self.source == "pipeline":
            step = "" if kind == "pipeline" else f"step {self.component_name!r}, "
            return f"pipeline {self.stack!r}, {step}{self.attribute}"
        return f"{self.source} {self.stack!r}, {kind} {self.component_name!r}, {self.attribute}"

    def sort_key(self) -> tuple[str, str, str, str]:
        """A plain tuple to sort by: much faster than attrs' generated comparisons."""
        return (self.stack, self.component_type, self.component_name, self.attribute)

    def to_dict(self) -> dict[str, str]:
        return {
            "stack": self.stack,
            "component_type": self.component_type,
            "component_name": self.component_name,
            "attribute": self.attribute,
            "source": self.source,
        }


def _child_path(path: str, key: object) -> str:
    return path + _key_suffix(str(key))


@functools.lru_cache(maxsize=4096)
def _key_suffix(text: str) -> str:
    return f".{text}" if _IDENTIFIER.fullmatch(text) else f"[{text!r}]"


def _walk(value: object, path: str) -> Iterator[tuple[str, str]]:
    # An explicit stack instead of recursion: deeply nested input must not hit the
    # recursion limit.
    pending: list[tuple[str, object]] = [(path, value)]
    # Containers being walked, by id: a container inside itself (YAML anchors can build one)
    # is skipped there, as its leaves are walked once already.
    inside: set[int] = set()
    while pending:
        here, item = pending.pop()
        if isinstance(item, str):
            yield here, item
        elif isinstance(item, _Leave):
            inside.discard(item.ident)
        elif isinstance(item, (Mapping, list, tuple)):
            ident = id(item)
            if ident in inside:
                continue
            inside.add(ident)
            pending.append((here, _Leave(ident)))
            if isinstance(item, Mapping):
                children = [(_child_path(here, k), v) for k, v in item.items()]
            else:
                children = [(f"{here}[{i}]", v) for i, v in enumerate(item)]
            pending.extend(reversed(children))
        # Other values (numbers, booleans, None) cannot hold references.


class _Leave:
    """Marks, in the walk's pending list, the end of a container's children."""

    __slots__ = ("ident",)

    def __init__(self, ident: int) -> None:
        self.ident = ident


def map_strings(value: Any, func: Callable[[str], Any]) -> Any:
    """A copy of ``value`` with every string leaf replaced by ``func(leaf)``.

    Mappings become dicts, lists and tuples keep their type, other values are kept. Iterative,
    like ``_walk``, so deeply nested input does not hit the recursion limit; a container inside
    itself (YAML anchors can build one) becomes the same shape of copy.
    """
    copies: dict[int, Any] = {}

    def begin(item: Any) -> tuple[Any, _Copy | None]:
        if isinstance(item, str):
            return func(item), None
        if isinstance(item, (Mapping, list, tuple)):
            done = copies.get(id(item))
            if done is not None:
                return done, None
            copy = _Copy(item)
            copies[id(item)] = copy.out
            return copy.out, copy
        return item, None

    result, first = begin(value)
    pending = [first] if first is not None else []
    while pending:
        copy = pending[-1]
        entry = next(copy.entries, None)
        if entry is None:
            pending.pop()
            finished = copy.finish()
            copies[id(copy.source)] = finished
            if pending:
                pending[-1].put(copy.slot, finished)
            else:
                result = finished
            continue
        slot, child = entry
        mapped, nested = begin(child)
        if nested is None:
            copy.put(slot, mapped)
        else:
            nested.slot = slot
            pending.append(nested)
    return result


class _Copy:
    """A container being copied by ``map_strings``: its source, its copy, what is left."""

    __slots__ = ("entries", "out", "slot", "source")

    def __init__(self, source: Mapping[Any, Any] | list[Any] | tuple[Any, ...]) -> None:
        self.source = source
        self.slot: object = None
        self.out: dict[Any, Any] | list[Any]
        if isinstance(source, Mapping):
            self.out = {}
            self.entries: Iterator[tuple[object, Any]] = iter(source.items())
        else:
            self.out = []
            self.entries = iter(enumerate(source))

    def put(self, slot: object, value: Any) -> None:
        if isinstance(self.out, dict):
            self.out[slot] = value
        else:
            self.out.append(value)

    def finish(self) -> Any:
        if isinstance(self.source, tuple):
            return tuple(self.out)
        if isinstance(self.source, list) and type(self.source) is not list:
            return type(self.source)(self.out)
        return self.out
