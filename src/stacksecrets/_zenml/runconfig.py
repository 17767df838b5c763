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

__all__ = ["is_run_config", "read_run_config"]

#: ``PipelineRunConfiguration``'s fields in ZenML 0.98 (compared with the installed ZenML by
#: the tests).
RUN_CONFIG_KEYS = frozenset(
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
_COMPONENT_KEY = re.compile("(" + "|".join(COMPONENT_TYPES) + r")([.:].+)?", re.DOTALL)
# Keys of the native stack format: a file with any of them is not a run configuration.
_NATIVE_KEYS = frozenset({"stacks", "stack", "name", "components", "stack_name"})

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
        components = [Component("pipeline", "", "", settings=self._settings(data, ""))]
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
                if step is None:
                    continue
                if not isinstance(step, dict):
                    self._fail(f"{here}: must be a mapping, not {kind_of(step)}", steps, name)
                self._known_keys(step, STEP_KEYS, here, "StepConfigurationUpdate")
                components.append(Component("step", "", name, settings=self._settings(step, here)))
        return Stack(self._source, components, runtime="zenml", kind="run config")

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
        if settings is None:
            return {}
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
            if value is not None and not isinstance(value, dict):
                self._fail(
                    f"{here}.{key}: must be a mapping of attributes, not {kind_of(value)}",
                    settings,
                    key,
                )
        return {key: value for key, value in settings.items() if value is not None}
