"""Every public exception round-trips through pickle with its attributes, and one raised in a
multiprocessing pool worker reaches the parent (issue 21, item 8)."""

from __future__ import annotations

import multiprocessing
import pickle
from typing import Any

import pytest

import stacksecrets
from stacksecrets import (
    SecretValidationError,
    StackLoadError,
    StackSecretsError,
    StoreUnavailableError,
    ValidationLevel,
)
from stacksecrets.stores import MemoryStore

PUBLIC_ERRORS = sorted(
    (
        obj
        for name in stacksecrets.__all__
        if isinstance(obj := getattr(stacksecrets, name), type)
        and issubclass(obj, StackSecretsError)
    ),
    key=lambda cls: cls.__name__,
)


def round_trip(obj: Any) -> Any:
    return pickle.loads(pickle.dumps(obj))  # noqa: S301 - the test's own bytes


def _example(cls: type[StackSecretsError]) -> StackSecretsError:
    """One instance of ``cls``, built the way the library builds it."""
    if issubclass(cls, StackLoadError):
        return cls("bad thing", source="stacks.yaml", line=7)
    if issubclass(cls, StoreUnavailableError):
        return cls("slow down", retry_after=2.5, throttled=True)
    if cls is SecretValidationError:
        return cls(_report())
    if cls.__name__ in {"SecretNotFoundError", "SecretExistsError"}:
        return cls("db")  # type: ignore[call-arg]
    return cls("something went wrong")


def _report() -> stacksecrets.ValidationReport:
    store = MemoryStore({"db": {"user": "u"}})
    with stacksecrets.Client(store=store) as client:
        stack = stacksecrets.stack_from_dict(
            {
                "name": "prod",
                "components": [
                    {
                        "type": "orchestrator",
                        "name": "o",
                        "configuration": {"password": "{{db.password}}"},
                    }
                ],
            }
        )
        return client.validate_stack(stack, level=ValidationLevel.SECRET_AND_KEY_EXISTS)


def test_the_public_errors_are_all_found() -> None:
    """The table below covers the hierarchy (a new error is picked up from ``__all__``)."""
    names = {cls.__name__ for cls in PUBLIC_ERRORS}
    assert {"StackLoadError", "SecretValidationError", "StoreUnavailableError"} <= names
    assert len(names) >= 12


@pytest.mark.parametrize("cls", PUBLIC_ERRORS, ids=lambda cls: cls.__name__)
def test_every_public_error_round_trips_through_pickle(cls: type[StackSecretsError]) -> None:
    """Type, message and every attribute survive pickling (orchestrators move exceptions)."""
    error = _example(cls)
    copy = round_trip(error)
    assert type(copy) is cls
    assert str(copy) == str(error)
    assert copy.args == error.args
    for name, value in vars(error).items():
        if name == "report":
            assert copy.report.to_text() == value.to_text()  # type: ignore[attr-defined]
            assert len(copy.report.problems) == len(value.problems)  # type: ignore[attr-defined]
        else:
            assert getattr(copy, name) == value, name


def test_store_unavailable_keeps_retry_after_and_throttled() -> None:
    copy = round_trip(StoreUnavailableError("x", retry_after=3.0, throttled=True))
    assert (copy.retry_after, copy.throttled) == (3.0, True)


def test_stack_load_error_keeps_source_line_and_problem() -> None:
    copy = round_trip(StackLoadError("no stack", source="a.yaml", line=3))
    assert (copy.source, copy.line, copy.problem) == ("a.yaml", 3, "no stack")
    assert str(copy) == "a.yaml:3: no stack"


def test_validation_error_keeps_its_report() -> None:
    error = SecretValidationError(_report())
    copy = round_trip(error)
    assert copy.report.problems
    assert [p.secret for p in copy.report.problems] == [p.secret for p in error.report.problems]


def _load_broken(text: str) -> None:  # runs in a pool worker
    stacksecrets.stack_from_dict({"name": text}, source="worker.yaml")


def test_a_stack_load_error_in_a_pool_worker_reaches_the_parent() -> None:
    """A real pool (spawned processes): the worker's StackLoadError is rebuilt in the parent
    with its source, rather than failing to unpickle and hanging the pool."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result = pool.apply_async(_load_broken, ("prod",))
        with pytest.raises(StackLoadError) as caught:
            result.get(timeout=120)
    assert caught.value.source == "worker.yaml"
    assert "components" in caught.value.problem
