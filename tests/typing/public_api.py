"""Uses of the public API, type-checked by ``mypy --strict`` and never run.

The name does not start with ``test_`` so pytest does not collect it; ``[tool.mypy] files``
includes ``tests/typing``. ``assert_type`` pins what the API promises to return.
"""

from __future__ import annotations

from collections.abc import Mapping

from typing_extensions import assert_type

import stacksecrets
from stacksecrets import (
    Component,
    ConfigurationError,
    Problem,
    ProblemKind,
    Secret,
    SecretValidationError,
    Stack,
    Stats,
    Usage,
    ValidationLevel,
    ValidationReport,
)
from stacksecrets.references import (
    InvalidUse,
    Malformed,
    Occurrence,
    References,
    Scan,
    SecretReference,
    collect,
    format_reference,
    is_secret_reference,
    parse_reference,
    scan,
)


def build_stack() -> Stack:
    tracker = Component(
        "experiment_tracker",
        "mlflow",
        "mlflow",
        configuration={"tracking_password": "{{mlflow.password}}", "port": 5000},
        settings={"docker": {"environment": {"TOKEN": "{{ci.token}}"}}},
    )
    return Stack("prod", [tracker])


def read_references(value: str) -> list[SecretReference]:
    found = scan(value)
    assert_type(found, Scan)
    occurrences: tuple[Occurrence, ...] = found.references
    malformed: tuple[Malformed, ...] = found.malformed
    reasons = [bad.reason for bad in malformed]
    assert_type(reasons, list[str])
    whole = parse_reference(value)
    assert_type(whole, SecretReference | None)
    if whole is not None:
        assert_type(whole.name, str)
        assert_type(format_reference(whole.name, whole.key), str)
    assert_type(is_secret_reference(value), bool)
    assert_type(found.whole, bool)
    return [occurrence.reference for occurrence in occurrences]


def plan(stacks: list[Stack]) -> dict[str, list[str]]:
    refs = collect(stacks)
    assert_type(refs, References)
    keys: dict[str, list[str]] = {name: list(refs.secrets[name]) for name in refs.names}
    usages: tuple[Usage, ...] = refs.usages_of("mlflow")
    invalid: tuple[InvalidUse, ...] = refs.invalid
    places = [str(usage) for usage in usages] + [use.usage.attribute for use in invalid]
    assert_type(places, list[str])
    assert_type(refs.count, int)
    return keys


def leaves(component: Component) -> dict[str, str]:
    return dict(component.string_leaves())


def report(stacks: list[Stack]) -> ValidationReport:
    refs = collect(stacks)
    level = ValidationLevel.from_env()
    problems = [
        Problem(ProblemKind.MISSING_SECRET, name, None, refs.usages_of(name)) for name in refs.names
    ]
    result = ValidationReport(
        level,
        problems,
        Stats(stacks=len(stacks), references=refs.count, unique_secrets=len(refs.names)),
        stacks=refs.stacks,
    )
    assert_type(result.ok, bool)
    assert_type(result.to_text(), str)
    assert_type(result.to_json(indent=None), str)
    try:
        result.raise_for_problems()
    except SecretValidationError as error:
        assert_type(error.report, ValidationReport)
    return result


def level_from(text: str) -> ValidationLevel:
    try:
        return ValidationLevel.parse(text)
    except ConfigurationError:
        return ValidationLevel.SECRET_AND_KEY_EXISTS


def secret_values(secret: Secret) -> Mapping[str, str]:
    values = secret.secret_values
    assert_type(values, dict[str, str])
    assert_type(secret.unreadable_keys, frozenset[str])
    return values


def everything() -> list[str]:
    return list(stacksecrets.__all__)


async def clients(stack: Stack) -> None:
    """Options are typed keywords: a misspelt one is a type error, not a silent no-op."""
    async with stacksecrets.AsyncClient("memory://", max_concurrency=4, deadline=None) as client:
        assert_type(await client.validate_stack(stack), ValidationReport)
        assert_type(await client.resolve_stack(stack), Stack)
        assert_type(await client.resolve_stacks([stack]), list[Stack])
    # The ignores below must be needed: mypy --strict (warn_unused_ignores) fails if the
    # misspelling stopped being an error.
    stacksecrets.AsyncClient("memory://", max_concurency=4)  # type: ignore[call-arg]
    stacksecrets.Client("memory://", cache_tll=1.0)  # type: ignore[call-arg]
    await stacksecrets.validate_stack(stack, retry_attempt=2)  # type: ignore[call-arg]
    options = stacksecrets.ClientOptions(max_concurrency=2)
    with stacksecrets.Client("memory://", options=options, deadline=5.0) as sync_client:
        assert_type(sync_client.get_secret("x").secret_values, dict[str, str])


def zenml_sources(pipeline: object, stack: Stack) -> None:
    """ZenML objects in, stacks out; the ZenML check is a typed option."""
    from stacksecrets.zenml import settings_sources

    assert_type(settings_sources(pipeline), list[Stack])
    with stacksecrets.Client("memory://", zenml_runtime_check=False) as client:
        client.validate_stacks([stack, *settings_sources(pipeline, steps=[])])
    stacksecrets.Client("memory://", zenml_runtime_checks=False)  # type: ignore[call-arg]
    assert_type(stack.runtime, str)
