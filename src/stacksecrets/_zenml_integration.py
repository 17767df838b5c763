"""stacksecrets inside ZenML pipeline runs (re-exported by ``stacksecrets.zenml``).

``validate_active_stack_hook`` is a pipeline ``on_init`` hook. ZenML 0.98 runs a pipeline's
init hook in the orchestrator's environment before the first step (the local orchestrator:
in the process that runs the pipeline, before any step; orchestrators that run steps in their
own pods: in each step's environment, before the step's code). A failing hook fails the run
(``HookExecutionException``) and no step runs. Paired with ``ZENML_SECRET_VALIDATION_LEVEL=NONE``
(ZenML's sequential check off) and ``STACKSECRETS_VALIDATION_LEVEL`` (ours on), the run's stack
is validated once, in one planned pass, with the full report.

What the run will use is what gets validated: the run's stack (component configurations,
their ``environment`` and attached ``secrets``, the stack's own) together with the run's
pipeline and step settings, ``environment`` and listed ``secrets``, in one planned pass.
ZenML 0.98 gives an init hook no argument naming its run: the run's snapshot
(``PipelineSnapshotResponse``: the compiled run configuration and the stack) is the argument
of ``BaseOrchestrator.run_init_hook(snapshot)``, which calls the hook, so the hook reads it
from that caller's frame (read only, nothing patched); failing that, from the orchestrator of
the active stack (``_active_snapshot``, set for the run by orchestrators that run the hook in
their own process). Neither is public ZenML API: where neither is found, only the active stack
is validated, and a warning says so (``stacksecrets.zenml.run_not_found``).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._client import Client
from ._levels import ValidationLevel
from ._logging import logger
from ._stack import Component, Stack

if TYPE_CHECKING:
    from ._report import ValidationReport

__all__ = ["stack_from_zenml", "validate_active_stack", "validate_active_stack_hook"]


def stack_from_zenml(model: Any) -> Stack:
    """A ``stacksecrets.Stack`` from ZenML's ``StackResponse`` (hydrated), as ZenML holds it:
    component configurations, and the ``environment`` and attached ``secrets`` of the stack
    and its components (ZenML holds attached secrets by id: they are named when ZenML's
    ``Client`` can read them, else kept as the id, which then reads as missing)."""
    components = [
        Component(
            type=str(getattr(kind, "value", kind)),
            flavor=str(component.flavor_name),
            name=str(component.name),
            configuration=dict(component.configuration or {}),
            environment=dict(_field(component, "environment") or {}),
            secrets=_secret_names(_field(component, "secrets")),
        )
        for kind, group in (model.components or {}).items()
        for component in group
    ]
    return Stack(
        str(model.name),
        components,
        runtime="zenml",
        environment=dict(_field(model, "environment") or {}),
        secrets=_secret_names(_field(model, "secrets")),
    )


def _field(model: Any, name: str) -> Any:
    # Older ZenML models have no environment or secrets; a failing hydration is not ours.
    try:
        return getattr(model, name, None)
    except Exception:  # noqa: BLE001
        return None


def _secret_names(ids: Any) -> list[str]:
    names = []
    for item in ids or ():
        text = str(item)
        if _is_uuid(text):  # ZenML attaches secrets, and compiles listed ones, by id
            try:
                from zenml.client import Client as ZenMLClient  # type: ignore[import-not-found]

                text = str(ZenMLClient().get_secret(item, hydrate=False).name)
            except Exception:  # noqa: BLE001, S110 - kept as the id: reported missing
                pass
        names.append(text)
    return names


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def run_from_snapshot(snapshot: Any) -> list[Stack]:
    """The stacks a run will use, from its ``PipelineSnapshotResponse``: the run's stack, and
    the run itself (kind ``"pipeline"``): its pipeline's and steps' settings, ``environment``
    and ``secrets``, as compiled for the run (references as written)."""
    pipeline = snapshot.pipeline_configuration
    name = str(getattr(pipeline, "name", "pipeline"))
    listed = list(getattr(pipeline, "secrets", None) or [])
    components = [
        Component(
            "pipeline",
            "",
            "",
            settings=_settings(pipeline),
            environment=dict(getattr(pipeline, "environment", None) or {}),
            secrets=_secret_names(listed),
        )
    ]
    for step_name, step in (getattr(snapshot, "step_configurations", None) or {}).items():
        config = getattr(step, "config", None)
        own = [s for s in (getattr(config, "secrets", None) or []) if s not in listed]
        environment = dict(getattr(config, "environment", None) or {})
        for key, value in (getattr(pipeline, "environment", None) or {}).items():
            if environment.get(key) == value:  # the pipeline's, merged into each step
                environment.pop(key)
        components.append(
            Component(
                "step",
                "",
                str(step_name),
                settings=_settings(config),
                environment=environment,
                secrets=_secret_names(own),
            )
        )
    stacks = [Stack(name, components, runtime="zenml", kind="pipeline")]
    if getattr(snapshot, "stack", None) is not None:
        stacks.insert(0, stack_from_zenml(snapshot.stack))
    return stacks


def _settings(configuration: Any) -> dict[str, Any]:
    settings = getattr(configuration, "settings", None) or {}
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            out[str(key)] = dict(value)
        elif hasattr(value, "model_dump"):
            out[str(key)] = _revealed(value.model_dump(exclude_unset=True))
    return out


def _revealed(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _revealed(v) for k, v in value.items()}
    reveal = getattr(value, "get_secret_value", None)
    return reveal() if callable(reveal) else value


def current_run_snapshot() -> Any | None:
    """The snapshot of the run whose init hook is running here, or ``None`` (see the module
    docs: ZenML 0.98 hands it to ``run_init_hook`` but not to the hook)."""
    frame = inspect.currentframe()
    while frame is not None:
        if frame.f_code.co_name == "run_init_hook":
            found = frame.f_locals.get("snapshot")
            if found is not None and hasattr(found, "pipeline_configuration"):
                return found
        frame = frame.f_back
    try:
        from zenml.client import Client as ZenMLClient

        return getattr(ZenMLClient().active_stack.orchestrator, "_active_snapshot", None)
    except Exception:  # noqa: BLE001 - not in a run
        return None


def validate_active_stack(*, level: ValidationLevel | str | None = None) -> ValidationReport:
    """Validate what the current run will use (its stack, settings and secrets, from the
    run's snapshot); outside a run, or where the run is not found, the stack ZenML's
    ``Client`` has active here."""
    return _validate(current_run_snapshot(), level)


def _validate(snapshot: Any | None, level: ValidationLevel | str | None) -> ValidationReport:
    if snapshot is not None:
        return Client(level=level).validate_stacks(run_from_snapshot(snapshot))
    from zenml.client import Client as ZenMLClient

    stack = stack_from_zenml(ZenMLClient().active_stack_model)
    return Client(level=level).validate_stack(stack)


def validate_active_stack_hook() -> None:
    """A ZenML ``on_init`` hook: fail the run, before any step, unless the active stack's
    secret references pass validation (level: ``STACKSECRETS_VALIDATION_LEVEL``, else
    ``ZENML_SECRET_VALIDATION_LEVEL``, else ``SECRET_AND_KEY_EXISTS``).

    In a run it validates what the run will use: the stack and the run's pipeline and step
    settings and ``secrets``, in one pass. ``@pipeline(on_init=validate_active_stack_hook)``,
    or in a run configuration file ``on_init: stacksecrets.zenml.validate_active_stack_hook``
    (ZenML 0.98 applies ``on_init`` from a file; it does not apply ``init_hook_source``).
    Raises ``SecretValidationError``, whose message is the full report.
    """
    snapshot = current_run_snapshot()
    if snapshot is None:
        logger.warning(
            "stacksecrets.zenml.run_not_found",
            hint="only the active stack is validated: this ZenML does not hand the hook its "
            "run (see docs/zenml-users.md)",
        )
    report = _validate(snapshot, None)
    if report.level is ValidationLevel.NONE:
        # Validation is off: say so, and not that the stack is ok (it was not checked).
        logger.warning(
            "stacksecrets.zenml.validation_off",
            stack=report.stacks[0] if report.stacks else "",
            secrets_checked=0,
            warnings=len(report.problems),
            hint="set STACKSECRETS_VALIDATION_LEVEL=SECRET_AND_KEY_EXISTS "
            "(ZENML_SECRET_VALIDATION_LEVEL=NONE turns off ZenML's own check only)",
        )
        return
    logger.info(
        "stacksecrets.zenml.validated",
        stack=report.stacks[0] if report.stacks else "",
        ok=report.ok,
        store=report.store,
        seconds=round(report.stats.seconds, 3),
    )
    report.raise_for_problems()
