"""stacksecrets in ZenML: the settings a pipeline carries, and validation inside pipeline runs.

ZenML is not a dependency of stacksecrets: importing this module imports nothing from ZenML.
``settings_sources`` reads the objects it is given; the hook and ``validate_active_stack``
need ZenML installed (they run where the pipeline runs).

    from stacksecrets import Client
    from stacksecrets.zenml import settings_sources

    report = Client().validate_stacks(settings_sources(my_pipeline))
    report.raise_for_problems()

In a pipeline run: ``@pipeline(on_init=validate_active_stack_hook)`` with
``ZENML_SECRET_VALIDATION_LEVEL=NONE`` (ZenML's sequential check off) and
``STACKSECRETS_VALIDATION_LEVEL=SECRET_AND_KEY_EXISTS`` (this one on). See
``docs/zenml-users.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._loaders import load_stack_file
from ._stack import Component, Stack
from ._zenml_integration import stack_from_zenml, validate_active_stack, validate_active_stack_hook

__all__ = [
    "settings_sources",
    "stack_from_zenml",
    "validate_active_stack",
    "validate_active_stack_hook",
]

for _function in (stack_from_zenml, validate_active_stack, validate_active_stack_hook):
    _function.__module__ = __name__  # documented and exported here
del _function


def settings_sources(pipeline: Any, *, steps: Iterable[Any] = ()) -> list[Stack]:
    """The settings a ZenML pipeline object carries, as stacks ready to validate.

    Collected, each with its place:

    - ``@pipeline(settings=...)`` and ``pipeline.configure(settings=...)``: component
      ``pipeline``;
    - each step's ``@step(settings=...)``, for the steps the pipeline has invoked
      (``pipeline.invocations``, filled once the pipeline was called or prepared), and for the
      step objects given in ``steps``: component ``step <name>``;
    - ``with_options(steps={...})`` step settings, and the run configuration file of
      ``with_options(config_path=...)`` (read as ``stacksecrets validate run.yaml`` reads it).

    With the settings come the pipeline's and each step's ``environment`` and listed
    ``secrets`` (checked like the secrets a run configuration lists). Every stack has runtime
    ``"zenml"``: validating them also reports each reference ZenML's run time would leave
    unresolved (nested in ``docker.environment``, in ``environment``, embedded in text, ...).
    The first stack is named ``pipeline '<name>'`` and reads in reports as
    ``pipeline 'training', step 'trainer', settings.docker.parent_image``.
    """
    name = str(getattr(pipeline, "name", "pipeline"))
    configuration = getattr(pipeline, "configuration", None)
    components = [
        Component(
            "pipeline",
            "",
            "",
            settings=_settings(configuration),
            environment=_field(configuration, "environment") or {},
            secrets=[str(item) for item in _field(configuration, "secrets") or ()],
        )
    ]
    seen: set[str] = set()
    invocations: Mapping[str, Any] = getattr(pipeline, "invocations", None) or {}
    for invocation_id, invocation in invocations.items():
        step = getattr(invocation, "step", None)
        components.append(_step(str(invocation_id), step))
        seen.add(str(invocation_id))
    for step in steps:
        step_name = str(getattr(step, "name", "step"))
        if step_name not in seen:
            components.append(_step(step_name, step))
            seen.add(step_name)
    run_args: Mapping[str, Any] = getattr(pipeline, "_run_args", None) or {}
    for step_name, update in (run_args.get("step_configurations") or {}).items():
        label = f"{step_name} (with_options)"
        components.append(Component("step", "", label, settings=_settings(update)))
    stacks = [Stack(name, components, runtime="zenml", kind="pipeline")]
    config_path = run_args.get("config_path")
    if config_path:
        stacks.extend(load_stack_file(config_path))
    return stacks


def _step(name: str, step: Any) -> Component:
    configuration = getattr(step, "configuration", None)
    return Component(
        "step",
        "",
        name,
        settings=_settings(configuration),
        environment=_field(configuration, "environment") or {},
        secrets=[str(item) for item in _field(configuration, "secrets") or ()],
    )


def _field(configuration: Any, name: str) -> Any:
    """A field of a ZenML configuration object or of a plain mapping; only a mapping for
    ``environment`` and only a list for ``secrets`` are taken."""
    if configuration is None:
        return None
    if isinstance(configuration, Mapping):
        value = configuration.get(name)
    else:
        value = getattr(configuration, name, None)
    wanted = Mapping if name == "environment" else (list, tuple)
    if not isinstance(value, wanted):
        return None
    return dict(value) if isinstance(value, Mapping) else list(value)


def _settings(configuration: Any) -> dict[str, Any]:
    """``settings`` of a ZenML configuration object (or of a plain mapping) as plain data,
    references as written (pydantic's dump reads fields without ZenML resolving them)."""
    if configuration is None:
        return {}
    if isinstance(configuration, Mapping):
        raw = configuration.get("settings")
    else:
        raw = getattr(configuration, "settings", None)
    return {str(key): _plain(value) for key, value in (raw or {}).items()}


def _plain(settings: Any) -> Any:
    if isinstance(settings, Mapping):
        return {str(k): _unwrap(v) for k, v in settings.items()}
    dump = getattr(settings, "model_dump", None)
    if dump is None:
        return settings
    return {str(k): _unwrap(v) for k, v in dump(exclude_unset=True).items()}


def _unwrap(value: Any) -> Any:
    # A pydantic SecretStr holds its text behind get_secret_value(); that text may be a
    # reference. It stays inside the stack model, which never prints values.
    reveal = getattr(value, "get_secret_value", None)
    return reveal() if callable(reveal) else value
