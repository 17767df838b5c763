"""Where ZenML's run time would not resolve a reference that stacksecrets reads.

ZenML 0.98 resolves references in exactly one place: reading an attribute of a stack
component's configuration (``StackComponentConfig.__custom_getattribute__`` in
``zenml/stack/stack_component.py``) or of a settings object
(``SecretReferenceMixin.__custom_getattribute__`` in ``zenml/config/secret_reference_mixin.py``).
Both return the attribute's value unchanged unless ``secret_utils.is_secret_reference`` says
the *whole* value is one reference (``\\{\\{\\s*\\S+?\\.\\S+\\s*\\}\\}`` with ``fullmatch``,
``zenml/utils/secret_utils.py``). So, for a stack that ZenML runs:

- a reference inside a longer string (``https://{{a.b}}@host``) stays literal text;
- several references in one value are never resolved one by one: ``{{a.b}} {{c.d}}`` stays
  literal, and ``{{a.b}}{{c.d}}`` is read as ONE reference to secret ``a``, key ``b}}{{c.d``
  (``parse_secret_reference`` splits on the first ``.``), which fails at run time;
- a reference below a top-level attribute (in a mapping or a list: ``environment.TOKEN``,
  ``hosts[2]``) stays literal: only the attribute itself is read through the resolving
  ``__getattribute__``, its contents never are;
- an escaped ``\\{{`` keeps its backslash: ZenML has no escape;
- for the general settings (``docker``, ``resources``, ``deployment``), an attribute whose
  type does not accept a string refuses a reference: ``SettingsResolver._convert_settings``
  (``zenml/config/settings_resolver.py``) builds the settings class and pydantic rejects the
  text, and the pipeline fails to compile; an attribute the class does not have is dropped
  ("Ignoring invalid setting attributes", ``Compiler._filter_and_validate_settings``).

Not covered without ZenML's classes: component attributes and flavor settings that refuse
references (``ClearTextField`` or pydantic validators, checked in
``SecretReferenceMixin.__init__`` and ``StackComponentConfig.__init__``). They need the
flavor's config class; ZenML raises for them when the component or settings are built.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeGuard

from .._references import is_secret_reference, scan
from .._stack import Component, Stack, Usage, _child_path, _walk
from .types import schema_refusal

#: The attributes of ZenML 0.98's general settings, by settings key: those that accept a
#: string (so a whole-value reference resolves), and all of them. Generated from the
#: installed ZenML and compared with it by ``tests/test_zenml_runtime.py``.
GENERAL_SETTINGS: Mapping[str, tuple[str, frozenset[str], frozenset[str]]] = {
    "docker": (
        "DockerSettings",
        frozenset(
            {
                "build_context_root",
                "dockerfile",
                "dockerignore",
                "image_tag",
                "local_project_install_command",
                "parent_image",
                "pyproject_path",
                "python_package_installer_cache_mount",
                "requirements",
                "target_repository",
                "user",
            }
        ),
        frozenset(
            {
                "allow_download_from_artifact_store",
                "allow_download_from_code_repository",
                "allow_including_files_in_images",
                "apt_packages",
                "build_config",
                "build_options",
                "copy_files",
                "copy_global_config",
                "disable_automatic_requirements_detection",
                "environment",
                "install_deployment_requirements",
                "install_stack_requirements",
                "parent_image_build_config",
                "prevent_build_reuse",
                "pyproject_export_command",
                "python_package_installer",
                "python_package_installer_args",
                "replicate_local_python_environment",
                "required_hub_plugins",
                "required_integrations",
                "runtime_environment",
                "skip_build",
                "source_files",
            }
        ),
    ),
    "resources": (
        "ResourceSettings",
        frozenset({"gpu_class", "resources"}),
        frozenset(
            {
                "allocation_wait_timeout_seconds",
                "autoscaling_metric",
                "autoscaling_target",
                "cpu_count",
                "gpu_count",
                "initialization_lease_seconds",
                "max_concurrency",
                "max_replicas",
                "memory",
                "min_replicas",
                "reclaim_tolerance",
            }
        ),
    ),
    "deployment": (
        "DeploymentSettings",
        frozenset(
            {
                "api_url_path",
                "app_description",
                "app_title",
                "app_version",
                "dashboard_files_path",
                "deployment_app_runner_flavor",
                "deployment_service_class",
                "docs_url_path",
                "health_url_path",
                "info_url_path",
                "invoke_url_path",
                "metrics_url_path",
                "redoc_url_path",
                "root_url_path",
                "shutdown_hook",
                "startup_hook",
                "submit_url_path",
                "uvicorn_host",
            }
        ),
        frozenset(
            {
                "app_extensions",
                "app_kwargs",
                "async_execution_thread_pool_size",
                "cors",
                "custom_endpoints",
                "custom_middlewares",
                "deployment_app_runner_kwargs",
                "deployment_service_kwargs",
                "include_default_endpoints",
                "include_default_middleware",
                "log_level",
                "secure_headers",
                "shutdown_hook_kwargs",
                "startup_hook_kwargs",
                "thread_pool_size",
                "uvicorn_kwargs",
                "uvicorn_port",
                "uvicorn_reload",
                "uvicorn_workers",
            }
        ),
    ),
}

#: Attributes of the general settings typed ``Optional[str]`` with a pattern the reference's
#: text does not match (``ResourceSettings.memory``: a number and a unit).
_PATTERNED = {"memory": "a number and a unit such as '4GB'"}

_NESTED = (
    "{refs} is nested inside {attr!r} ({shape}): ZenML resolves only a reference that is the "
    "whole value of a top-level attribute, and leaves this one as literal text"
)


#: Why ZenML leaves references in these fields as text, by field.
_NEVER_RESOLVED = {
    "environment": (
        "is in 'environment': ZenML sets environment variables to the text as written and "
        "resolves no reference there (attach the secret with 'secrets' instead)"
    ),
    "parameters": (
        "is in 'parameters': ZenML passes parameters to the pipeline as written and resolves "
        "no reference there"
    ),
    "extra": "is in 'extra': ZenML keeps it as written and resolves no reference there",
}
_KEY = (
    "is in a mapping key: ZenML resolves only a value that is exactly one reference, never a "
    "key, and leaves it as literal text"
)


def unresolvable(stack: Stack) -> Iterator[tuple[Usage, str]]:
    """Every place in ``stack`` where ZenML's run time would not resolve a reference, with
    the reason. Reasons name the references, never the text around them."""
    for path, reason in _never_resolved("environment", stack.environment):
        yield Usage(stack.name, "stack", "", path, stack.kind), reason
    for component in stack.components:
        for path, reason in _component_places(component):
            yield Usage(stack.name, component.type, component.name, path, stack.kind), reason


def attached(stack: Stack) -> Iterator[tuple[Usage, str]]:
    """Every secret attached to ``stack`` or its components, or listed in a run
    configuration's or step's ``secrets``, with the place: ZenML sets its values as
    environment variables."""
    for i, name in enumerate(stack.secrets):
        yield Usage(stack.name, "stack", "", f"secrets[{i}]", stack.kind), str(name).strip()
    for component in stack.components:
        for i, name in enumerate(component.secrets):
            usage = Usage(stack.name, component.type, component.name, f"secrets[{i}]", stack.kind)
            yield usage, str(name).strip()


def _never_resolved(field: str, value: object) -> Iterator[tuple[str, str]]:
    why = _NEVER_RESOLVED[field]
    for path, leaf in _walk(value, field):
        if scan(leaf).references:
            yield path, f"{_shown(leaf)} {why}"
    yield from _keys(value, field)


def _keys(value: object, path: str) -> Iterator[tuple[str, str]]:
    """Mapping keys holding a reference, anywhere in ``value`` (``path`` is its place)."""
    pending: list[tuple[str, object]] = [(path, value)]
    seen: set[int] = set()
    while pending:
        here, item = pending.pop()
        if isinstance(item, (Mapping, list, tuple)):
            if id(item) in seen:
                continue
            seen.add(id(item))
            if isinstance(item, Mapping):
                for key, child in item.items():
                    where = _child_path(here, key)
                    if isinstance(key, str) and scan(key).references:
                        yield where, f"{_shown(key)} {_KEY}"
                    pending.append((where, child))
            else:
                pending.extend((f"{here}[{i}]", child) for i, child in enumerate(item))


def _component_places(component: Component) -> Iterator[tuple[str, str]]:
    yield from _never_resolved("environment", component.environment)
    for field in ("parameters", "extra"):
        if field in component.fields:
            yield from _never_resolved(field, component.fields[field])
    yield from _keys(component.configuration, "configuration")
    yield from _keys(component.settings, "settings")
    for attr, value in component.configuration.items():
        here = _child_path("configuration", attr)
        if component.config_schema is not None and _whole_reference(value):
            refused = schema_refusal(component.config_schema, str(attr), value)
            if refused is not None:
                yield here, refused
            continue
        yield from _attribute(here, attr, value, None)
    for key, settings in component.settings.items():
        here = _child_path("settings", key)
        if isinstance(settings, str):
            if scan(settings).references:
                yield (
                    here,
                    (
                        f"{_shown(settings)} is the whole settings entry {key!r}, which must be a "
                        "mapping of attributes: ZenML cannot read it"
                    ),
                )
            continue
        if not isinstance(settings, Mapping):
            yield from _nested(here, str(key), settings)
            continue
        known = GENERAL_SETTINGS.get(str(key))
        typed = component.settings_schemas.get(str(key))
        for attr, value in settings.items():
            if typed is not None and _whole_reference(value):
                refused = schema_refusal(typed, str(attr), value)
                if refused is not None:
                    yield _child_path(here, attr), refused
                continue
            yield from _attribute(_child_path(here, attr), str(attr), value, known)


def _attribute(
    path: str,
    attr: str,
    value: object,
    known: tuple[str, frozenset[str], frozenset[str]] | None,
) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        reason = value_reason(value)
        if reason is None and known is not None and is_secret_reference(value):
            reason = _refused(value, attr, known)
        if reason is not None:
            yield path, reason
    else:
        yield from _nested(path, attr, value)


def _nested(path: str, attr: str, value: object) -> Iterator[tuple[str, str]]:
    shape = "a mapping" if isinstance(value, Mapping) else "a list"
    for leaf_path, leaf in _walk(value, path):
        found = scan(leaf)
        if found.references:
            refs = _shown(leaf)
            yield leaf_path, _NESTED.format(refs=refs, attr=attr, shape=shape)
        elif found.escaped:
            yield leaf_path, _ESCAPED


_ESCAPED = "ZenML has no escape: the value keeps '\\{{' with its backslash"


def value_reason(value: str) -> str | None:
    """Why ZenML's run time would not resolve the references in a top-level string value as
    stacksecrets reads them; ``None`` when it would (or there is no reference)."""
    found = scan(value)
    refs = found.references
    if found.malformed:
        return None  # reported as an invalid reference already
    if not refs:
        return _ESCAPED if found.escaped else None
    if found.whole:
        return None
    shown = _shown(value)
    if is_secret_reference(value):
        # ZenML's regex matches the whole value but stacksecrets reads several references.
        # ZenML's secret name lies inside the first reference; its key runs to the end, so it
        # is shown only when nothing but references is in between (text could be a password).
        name, _, key = value[2:-2].partition(".")
        only_refs = sum(occ.end - occ.start for occ in refs) == len(value)
        shown_key = repr(key.strip()) if only_refs else "the rest of the value"
        return (
            f"{shown} are several references in one value: ZenML reads it as one reference "
            f"to secret {name.strip()!r}, key {shown_key}, and fails at run time"
        )
    if len(refs) > 1:
        return (
            f"{shown} are several references in one value: ZenML resolves only a value that "
            "is exactly one reference, and leaves this one as literal text"
        )
    return (
        f"{shown} is embedded in a longer string: ZenML resolves only a value that is exactly "
        "one reference, and leaves this one as literal text"
    )


def _refused(
    value: str, attr: str, known: tuple[str, frozenset[str], frozenset[str]]
) -> str | None:
    class_name, strings, others = known
    if attr in strings:
        return None
    if attr in _PATTERNED:
        return (
            f"{_shown(value)} is in {class_name}.{attr}, a string with a pattern "
            f"({_PATTERNED[attr]}): ZenML checks the reference's text against it and "
            "refuses it, so the pipeline does not compile"
        )
    if attr in others:
        return (
            f"{_shown(value)} is in {class_name}.{attr}, which does not accept a string: "
            "ZenML fails to build the settings and the pipeline does not compile"
        )
    return (
        f"{_shown(value)} is in {attr!r}, which {class_name} does not have: ZenML ignores "
        "the attribute (with a warning), so the reference is never read"
    )


def _shown(value: str) -> str:
    return ", ".join(f"'{occ.reference}'" for occ in scan(value).references)


def _whole_reference(value: object) -> TypeGuard[str]:
    """A whole-value reference ZenML resolves: one a typed attribute's schema can judge."""
    return isinstance(value, str) and is_secret_reference(value) and value_reason(value) is None
