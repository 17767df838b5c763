"""Types ZenML gives what a reference may stand in: from ZenML's own classes when ZenML is
importable (where a pipeline runs), else from what the server stores (a flavor's config
schema), else unknown (and the report says so once).

A secret's value is a string. ZenML 0.98 resolves a whole-value reference when the attribute
is read (``StackComponentConfig.__custom_getattribute__``), after pydantic validated the
configuration with the reference text in it; settings are built from the text too
(``SettingsResolver._convert_settings``). So a reference works only where the attribute's
type takes a string unchanged: ``str``, ``Optional[str]``, ``SecretStr``, a union holding
one of them. ``int``, ``float``, ``bool``, ``Literal``, ``Enum``, ``dict``, ``list`` refuse
the text; a validator may refuse or change it; an attribute the class does not have is
dropped.

Nothing here imports ZenML at module import time.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

__all__ = [
    "check_types",
    "class_schemas",
    "schema_refusal",
    "settings_class_schemas",
    "zenml_importable",
]

Fail = Callable[[str, object, object], NoReturn]


def zenml_importable() -> bool:
    """Whether ZenML can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec("zenml") is not None
    except (ImportError, ValueError):
        return False


def check_types(data: Mapping[str, Any], fail: Fail) -> None:
    """Field types of a run configuration through ZenML's own ``PipelineRunConfiguration``,
    when ZenML is importable (else nothing is checked here). ``fail(message, container,
    key)`` raises; messages name the field and what ZenML expects, never the value."""
    if not zenml_importable():
        return
    try:
        from zenml.config.pipeline_run_configuration import (  # type: ignore[import-not-found]
            PipelineRunConfiguration,
        )
    except Exception:  # noqa: BLE001 - a broken ZenML install: the check is skipped
        return
    fields = {
        key: value
        for key, value in data.items()
        if key in PipelineRunConfiguration.model_fields and value is not None
    }
    try:
        PipelineRunConfiguration.model_validate(fields)
    except ValueError as error:  # pydantic's ValidationError (pydantic comes with ZenML)
        errors = getattr(error, "errors", None)
        if not callable(errors):
            raise
        first = errors(include_input=False, include_url=False)[0]
        loc = [str(part) for part in first.get("loc", ())]
        where = ".".join(loc) or "top level"
        message = str(first.get("msg", "invalid"))
        fail(
            f"{where[:200]}: {message[:200]} (ZenML's PipelineRunConfiguration refuses it)",
            data,
            loc[0] if loc else None,
        )


#: Marks a property of a schema built from a config class whose field has a pydantic
#: validator (a schema from the server cannot show one).
VALIDATED = "x-stacksecrets-validated"

#: (component type, flavor) -> the schemas built from ZenML's config class and from the
#: flavor's settings class (None where the class could not be had); filled once per process
#: (ZenML's flavor registry imports every flavor module, a few seconds).
_Schema = Mapping[str, Any] | None
_CLASS_SCHEMAS: dict[tuple[str, str], tuple[_Schema, _Schema]] | None = None


def _registry() -> dict[tuple[str, str], tuple[_Schema, _Schema]]:
    global _CLASS_SCHEMAS  # noqa: PLW0603 - a per-process cache
    if _CLASS_SCHEMAS is None:
        _CLASS_SCHEMAS = _registry_schemas()
    return _CLASS_SCHEMAS


def class_schemas(
    wanted: set[tuple[str, str]],
) -> dict[tuple[str, str], Mapping[str, Any]]:
    """JSON schemas of the config classes of the ``(component type, flavor)`` pairs wanted,
    from ZenML's flavor registry when ZenML is importable here (built-in and integration
    flavors; the integrations' packages need not be installed), each field with a validator
    marked. Pairs not found are left out; nothing ever raises (a broken ZenML, a flavor that
    does not import: no schema, the caller falls back to the server's)."""
    if not wanted or not zenml_importable():
        return {}
    found = _registry()
    out: dict[tuple[str, str], Mapping[str, Any]] = {}
    for key in wanted:
        schema = found.get(key, (None, None))[0]
        if schema is not None:
            out[key] = schema
    return out


def settings_class_schemas(keys: set[str]) -> dict[str, Mapping[str, Any]]:
    """JSON schemas of flavors' settings classes for settings keys ``"TYPE.FLAVOR"`` (as in
    ``settings: {orchestrator.kubernetes: {...}}``), from ZenML's flavor registry when ZenML
    is importable here: the settings class a flavor's config class is built on. Keys not
    found are left out; nothing ever raises."""
    if not keys or not zenml_importable():
        return {}
    found = _registry()
    out: dict[str, Mapping[str, Any]] = {}
    for key in keys:
        kind, _, flavor = key.partition(".")
        schema = found.get((kind, flavor), (None, None))[1]
        if flavor and schema is not None:
            out[key] = schema
    return out


def _registry_schemas() -> dict[tuple[str, str], tuple[_Schema, _Schema]]:
    found: dict[tuple[str, str], tuple[_Schema, _Schema]] = {}
    try:
        from zenml.config.base_settings import (  # type: ignore[import-not-found]
            BaseSettings,
        )
        from zenml.stack.flavor_registry import (  # type: ignore[import-not-found]
            FlavorRegistry,
        )
        from zenml.stack.stack_component import (  # type: ignore[import-not-found]
            StackComponentConfig,
        )

        registry = FlavorRegistry()
        flavors = [*registry.builtin_flavors, *registry.integration_flavors]
    except Exception:  # noqa: BLE001 - a broken ZenML install: no class types
        return found
    for flavor_class in flavors:
        try:
            flavor = flavor_class()
            kind = getattr(flavor.type, "value", flavor.type)
            config_class = flavor.config_class
            settings_class = next(
                (
                    base
                    for base in config_class.__mro__[1:]
                    if issubclass(base, BaseSettings)
                    and not issubclass(base, StackComponentConfig)
                    and base is not BaseSettings
                ),
                None,
            )
            found[(str(kind), str(flavor.name))] = (
                _class_schema(config_class),
                None if settings_class is None else _class_schema(settings_class),
            )
        except Exception:  # noqa: BLE001, S112 - one flavor that does not import is skipped
            continue
    return found


def _class_schema(config_class: Any) -> Mapping[str, Any] | None:
    try:
        schema: dict[str, Any] = dict(config_class.model_json_schema())
    except Exception:  # noqa: BLE001 - a type pydantic cannot show: the server's schema, else unknown
        return None
    properties = dict(schema.get("properties") or {})
    decorators = getattr(config_class, "__pydantic_decorators__", None)
    validators = getattr(decorators, "field_validators", {}) or {}
    validated: set[str] = set()
    for decorator in validators.values():
        fields = getattr(getattr(decorator, "info", None), "fields", ()) or ()
        validated.update(properties if "*" in fields else fields)
    for name in validated & set(properties):
        properties[name] = {**properties[name], VALIDATED: True}
    schema["properties"] = properties
    return schema


#: JSON schema ``format`` values of string types that take any text (a secret's value).
_FREE_FORMATS = frozenset({"password", "path"})
_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


def schema_refusal(schema: Mapping[str, Any], attr: str, reference: str) -> str | None:
    """Why a whole-value ``reference`` in attribute ``attr`` of a flavor's configuration would
    not work, read from the flavor's config schema (JSON schema, as a ZenML server stores
    it); ``None`` when the attribute's type takes a string. The reason names the attribute
    and its type, never a value other than the reference."""
    title = str(schema.get("title") or "the flavor's configuration")
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return None
    if attr not in properties:
        return (
            f"{reference!r} is in {attr!r}, which {title} does not have: ZenML drops the "
            "attribute, so the reference is never read"
        )
    refused = _refused_by(_resolve(schema, properties[attr]), schema, reference)
    if refused is None:
        node = properties[attr]
        if isinstance(node, Mapping) and node.get(VALIDATED):
            return (
                f"{reference!r} is in {title}.{attr}, which a validator of {title} checks "
                "before ZenML resolves the reference: it may refuse or change the "
                "reference's text"
            )
        return None
    return (
        f"{reference!r} is in {title}.{attr}, which takes {refused}, not a secret's text: "
        "ZenML refuses the reference when it builds the component's configuration"
    )


def _resolve(root: Mapping[str, Any], node: Any) -> Any:
    seen = 0
    while isinstance(node, Mapping) and "$ref" in node and seen < 20:  # noqa: PLR2004
        seen += 1
        ref = str(node["$ref"])
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target.get(part) if isinstance(target, Mapping) else None
        node = target
    return node


def _refused_by(node: Any, root: Mapping[str, Any], text: str) -> str | None:
    """What the type takes when it does not take ``text``; ``None`` when it does."""
    if not isinstance(node, Mapping):
        return None  # unknown: not guessed
    branches = node.get("anyOf") or node.get("oneOf")
    if isinstance(branches, list):
        takes = [_refused_by(_resolve(root, b), root, text) for b in branches]
        if any(t is None for t in takes):
            return None
        return " or ".join(dict.fromkeys(t for t in takes if t))
    if "const" in node:
        return f"only {node['const']!r}"
    if isinstance(node.get("enum"), list):
        values = node["enum"]
        if text in values:
            return None
        shown = ", ".join(repr(v) for v in values[:6]) + (", ..." if len(values) > 6 else "")  # noqa: PLR2004
        return f"one of {shown}"
    kind = node.get("type")
    if isinstance(kind, list):
        if "string" in kind:
            kind = "string"
        else:
            return " or ".join(_TYPE_WORDS.get(str(k), str(k)) for k in kind)
    if kind is None:
        return None  # Any
    if kind != "string":
        return _TYPE_WORDS.get(str(kind), str(kind))
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        import re

        try:
            if re.search(pattern, text) is None:
                return f"a string matching {pattern!r}"
        except re.error:
            return None
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt not in _FREE_FORMATS:
        return f"a string of format {fmt!r}"
    return None
