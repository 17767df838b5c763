"""ZenML run configuration files (``pipeline.with_options(config_path=...)``) as a stack-like
source: the references in their pipeline and step settings.

A run configuration is a mapping of ``PipelineRunConfiguration`` fields
(``zenml/config/pipeline_run_configuration.py``); its settings are at ``settings:`` (the
pipeline) and ``steps: <step>: settings:`` (``StepConfigurationUpdate``,
``zenml/config/step_configurations.py``), each a mapping of settings key (``docker``,
``resources``, ``deployment``, ``<component type>``, ``<type>.<flavor>``, ``<type>:<name>``,
``zenml/utils/settings_utils.py::is_valid_setting_key``) to the settings' attributes.

It becomes a ``Stack`` of kind ``"run config"``, named after the file, whose components are
``pipeline`` and ``step <name>``, each holding its settings: reports then read
``run config 'run.yaml', step 'trainer', settings.docker.environment.TOKEN``. ZenML resolves
settings at run time, so the stack's runtime is ``"zenml"``.

Errors name the file, the line and the path; they never echo a value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from .._describe import kind_of
from .._errors import StackLoadError
from .._stack import Component, Stack
from .types import check_types

__all__ = ["is_run_config", "read_run_config"]

#: ``PipelineRunConfiguration``'s fields in ZenML 0.98 (compared with the installed ZenML by
#: the tests).
RUN_CONFIG_FIELDS = frozenset(
    {
        "build",
        "cache_policy",
        "cleanup_hook_source",
        "enable_artifact_metadata",
        "enable_artifact_visualization",
        "enable_cache",
        "enable_heartbeat",
        "enable_pipeline_logs",
        "enable_step_logs",
        "end_hook_source",
        "environment",
        "execution_mode",
        "extra",
        "failure_hook_source",
        "init_hook_kwargs",
        "init_hook_source",
        "model",
        "parameters",
        "pause_hook_source",
        "resume_hook_source",
        "retry",
        "run_name",
        "schedule",
        "secrets",
        "settings",
        "start_hook_source",
        "steps",
        "substitutions",
        "success_hook_source",
        "tags",
    }
)
#: ``Pipeline.configure()``'s arguments that are not fields: ZenML applies them from a file
#: too (``Pipeline._reconfigure_from_file_with_overrides``), ``on_init`` among them.
CONFIGURE_ARGS = frozenset(
    {
        "merge",
        "on_cleanup",
        "on_end",
        "on_failure",
        "on_init",
        "on_init_kwargs",
        "on_pause",
        "on_resume",
        "on_start",
        "on_success",
    }
)
#: Every top-level key ZenML reads from a run configuration file.
RUN_CONFIG_KEYS = RUN_CONFIG_FIELDS | CONFIGURE_ARGS
#: ``StepConfigurationUpdate``'s fields in ZenML 0.98.
STEP_KEYS = frozenset(
    {
        "cache_policy",
        "enable_artifact_metadata",
        "enable_artifact_visualization",
        "enable_cache",
        "enable_step_logs",
        "end_hook_source",
        "environment",
        "experiment_tracker",
        "extra",
        "failure_hook_source",
        "group",
        "heartbeat_healthy_threshold",
        "model",
        "outputs",
        "parameters",
        "retry",
        "runtime",
        "secrets",
        "settings",
        "start_hook_source",
        "step_operator",
        "substitutions",
        "success_hook_source",
    }
)
#: ``StackComponentType`` values in ZenML 0.98.
COMPONENT_TYPES = (
    "alerter",
    "annotator",
    "artifact_store",
    "container_registry",
    "data_validator",
    "deployer",
    "experiment_tracker",
    "feature_store",
    "image_builder",
    "log_store",
    "model_deployer",
    "model_registry",
    "orchestrator",
    "sandbox",
    "step_operator",
)
GENERAL_SETTINGS_KEYS = ("deployment", "docker", "resources")
# settings_utils.STACK_COMPONENT_REGEX
# (without DOTALL, as ZenML compiles it: a key holding a line break is refused)
_COMPONENT_KEY = re.compile("(" + "|".join(COMPONENT_TYPES) + r")([.:].+)?")
#: Settings that ZenML accepts only for the whole pipeline (``BaseSettings.LEVEL``).
PIPELINE_ONLY_SETTINGS = frozenset({"deployment"})
# Keys of the native stack format: a file with any of them is not a run configuration.
# ``name`` alone is not one: a run configuration may carry it (ZenML ignores it) beside
# ``run_name``; a stack file's ``name`` comes with ``components``.
_NATIVE_KEYS = frozenset({"stacks", "stack", "components", "stack_name"})
#: At most this many values (an alias counts as every value it repeats) in one run
#: configuration: real ones hold tens. YAML aliases let a few KiB stand for millions of
#: references, each then checked and reported; the file is refused instead.
MAX_RUN_CONFIG_VALUES = 100_000
#: Fields ZenML hands over as written; references in them are never resolved.
_PASSED_FIELDS = ("parameters", "extra")

LineOf = Callable[[object, object], "int | None"]


def is_run_config(data: Mapping[str, Any]) -> bool:
    """Whether a file's top-level mapping is a ZenML run configuration: it has a key only a
    run configuration has, and none of a stack file's."""
    return not (_NATIVE_KEYS & data.keys()) and bool(RUN_CONFIG_KEYS & data.keys())


def is_valid_settings_key(key: str) -> bool:
    """ZenML's ``settings_utils.is_valid_setting_key``."""
    return key in GENERAL_SETTINGS_KEYS or _COMPONENT_KEY.fullmatch(key) is not None


def read_run_config(data: Mapping[str, Any], source: str, line_of: LineOf) -> Stack:
    """The settings of a run configuration as a ``Stack`` named ``source``.

    ``line_of(container, key)`` gives the line of a key (or of a container, with ``None``).
    """
    return _RunConfigReader(source, line_of).read(data)


def _expanded_size(value: object, limit: int) -> int:
    """How many values ``value`` stands for, an alias counted as all it repeats; counting
    stops past ``limit``, so a "billion laughs" costs ``limit`` steps at most."""
    size = 0
    pending = [value]
    while pending and size <= limit:
        item = pending.pop()
        size += 1
        if isinstance(item, Mapping):
            size += len(item)  # the keys
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return size


class _RunConfigReader:
    def __init__(self, source: str, line_of: LineOf) -> None:
        self._source = source
        self._line_of = line_of

    def _fail(self, message: str, container: object, key: object = None) -> NoReturn:
        raise StackLoadError(
            f"ZenML run configuration: {message}",
            source=self._source,
            line=self._line_of(container, key),
        )

    def read(self, data: Mapping[str, Any]) -> Stack:
        self._known_keys(data, RUN_CONFIG_KEYS, "", "PipelineRunConfiguration")
        if _expanded_size(data, MAX_RUN_CONFIG_VALUES) > MAX_RUN_CONFIG_VALUES:
            self._fail(
                f"more than {MAX_RUN_CONFIG_VALUES} values once its aliases (*name) are "
                "expanded: refused, a run configuration holds tens",
                data,
            )
        components = [self._component("pipeline", "", data, "")]
        steps = data.get("steps")
        if steps is not None:
            if not isinstance(steps, dict):
                self._fail(
                    f"steps: must be a mapping of step name to its configuration, "
                    f"not {kind_of(steps)}",
                    data,
                    "steps",
                )
            for name, step in steps.items():
                here = f"steps.{name}"
                if not isinstance(step, dict):
                    # ZenML validates each step as a StepConfigurationUpdate: null is refused.
                    self._fail(f"{here}: must be a mapping, not {kind_of(step)}", steps, name)
                self._known_keys(step, STEP_KEYS, here, "StepConfigurationUpdate")
                components.append(self._component("step", name, step, here))
        check_types(data, self._fail)
        return Stack(self._source, components, runtime="zenml", kind="run config")

    def _component(self, kind: str, name: str, item: Mapping[str, Any], path: str) -> Component:
        return Component(
            kind,
            "",
            name,
            settings=self._settings(item, path),
            environment=self._mapping(item, "environment", path),
            secrets=self._secrets(item, path),
            fields={field: item[field] for field in _PASSED_FIELDS if item.get(field) is not None},
        )

    def _mapping(self, item: Mapping[str, Any], field: str, path: str) -> dict[str, Any]:
        value = item.get(field)
        if value is None:
            return {}
        if not isinstance(value, dict):
            where = f"{path}.{field}" if path else field
            self._fail(f"{where}: must be a mapping, not {kind_of(value)}", item, field)
        return value

    def _secrets(self, item: Mapping[str, Any], path: str) -> tuple[str, ...]:
        value = item.get("secrets")
        if value is None:
            return ()
        where = f"{path}.secrets" if path else "secrets"
        if not isinstance(value, list):
            self._fail(
                f"{where}: must be a list of secret names or ids, not {kind_of(value)}",
                item,
                "secrets",
            )
        for i, name in enumerate(value):
            if not isinstance(name, str) or not name.strip():
                self._fail(
                    f"{where}[{i}]: must be a secret name or id, not {kind_of(name)}",
                    value,
                    i,
                )
        return tuple(value)

    def _known_keys(
        self, item: Mapping[str, Any], known: frozenset[str], path: str, model: str
    ) -> None:
        for key in item:
            if key not in known:
                where = f"{path}: " if path else ""
                self._fail(
                    f"{where}unknown key {key[:80]!r}: not a field of ZenML's {model} "
                    "(ZenML would ignore it; a typo?)",
                    item,
                    key,
                )

    def _settings(self, item: Mapping[str, Any], path: str) -> dict[str, Any]:
        here = f"{path}.settings" if path else "settings"
        settings = item.get("settings")
        if "settings" not in item or (settings is None and not path):
            return {}  # ZenML drops a top-level null (``remove_none_values``)
        if not isinstance(settings, dict):
            self._fail(
                f"{here}: must be a mapping of settings key to settings, not {kind_of(settings)}",
                item,
                "settings",
            )
        for key, value in settings.items():
            if not is_valid_settings_key(key):
                self._fail(
                    f"{here}: {key[:80]!r} is not a settings key ZenML accepts: expected "
                    f"{', '.join(GENERAL_SETTINGS_KEYS)}, a component type, "
                    "'<component type>.<flavor>' or '<component type>:<component name>'",
                    settings,
                    key,
                )
            if path and key in PIPELINE_ONLY_SETTINGS:
                self._fail(
                    f"{here}.{key}: {key} settings apply to the whole pipeline only: ZenML "
                    "refuses them on a step",
                    settings,
                    key,
                )
            if not isinstance(value, dict):
                # ZenML builds the settings class from it: null is refused, as is text.
                self._fail(
                    f"{here}.{key}: must be a mapping of attributes, not {kind_of(value)}",
                    settings,
                    key,
                )
        return dict(settings)
