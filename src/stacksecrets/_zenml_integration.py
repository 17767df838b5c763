"""stacksecrets inside ZenML pipeline runs (re-exported by ``stacksecrets.zenml``).

``validate_active_stack_hook`` is a pipeline ``on_init`` hook. ZenML 0.98 runs a pipeline's
init hook in the orchestrator's environment before the first step (the local orchestrator:
in the process that runs the pipeline, before any step; orchestrators that run steps in their
own pods: in each step's environment, before the step's code). A failing hook fails the run
(``HookExecutionException``) and no step runs. Paired with ``ZENML_SECRET_VALIDATION_LEVEL=NONE``
(ZenML's sequential check off) and ``STACKSECRETS_VALIDATION_LEVEL`` (ours on), the run's stack
is validated once, in one planned pass, with the full report.

No ZenML internals are patched: the hook uses ZenML's public ``Client`` to learn which stack the
run uses, and stacksecrets' own ``Client`` (the store found as ZenML finds its server) to check it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._client import Client
from ._levels import ValidationLevel
from ._logging import logger
from ._stack import Component, Stack

if TYPE_CHECKING:
    from ._report import ValidationReport

__all__ = ["stack_from_zenml", "validate_active_stack", "validate_active_stack_hook"]


def stack_from_zenml(model: Any) -> Stack:
    """A ``stacksecrets.Stack`` from ZenML's ``StackResponse`` (hydrated), as ZenML holds it."""
    components = [
        Component(
            type=str(getattr(kind, "value", kind)),
            flavor=str(component.flavor_name),
            name=str(component.name),
            configuration=dict(component.configuration or {}),
        )
        for kind, group in (model.components or {}).items()
        for component in group
    ]
    return Stack(str(model.name), components, runtime="zenml")


def validate_active_stack(*, level: ValidationLevel | str | None = None) -> ValidationReport:
    """Validate the stack ZenML's ``Client`` has active here (in a run: the run's stack)."""
    from zenml.client import Client as ZenMLClient  # type: ignore[import-not-found]

    stack = stack_from_zenml(ZenMLClient().active_stack_model)
    return Client(level=level).validate_stack(stack)


def validate_active_stack_hook() -> None:
    """A ZenML ``on_init`` hook: fail the run, before any step, unless the active stack's
    secret references pass validation (level: ``STACKSECRETS_VALIDATION_LEVEL``, else
    ``ZENML_SECRET_VALIDATION_LEVEL``, else ``SECRET_AND_KEY_EXISTS``).

    ``@pipeline(on_init=validate_active_stack_hook)``, or in a run configuration file
    ``init_hook_source: stacksecrets.zenml.validate_active_stack_hook``. Raises
    ``SecretValidationError``, whose message is the full report.
    """
    report = validate_active_stack()
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
