"""stacksecrets: secret references (``{{name.key}}``) in stack configuration.

Collects every reference across every component of one or many stacks, checks them against a
secret store concurrently with a cache, and reports every problem at once with every place it
is used.

The top level holds what an application uses: the clients and their options, the stack model
and its loaders, the report, the levels, the errors and log redaction. The stores are in
``stacksecrets.stores``; the reference grammar and the planning of look-ups in
``stacksecrets.references``; the settings a ZenML pipeline object carries in
``stacksecrets.zenml``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The errors import nothing: loaded now, so a traceback names them as users import them.
from ._errors import (
    AuthenticationError,
    ClosedError,
    ConfigurationError,
    ForbiddenError,
    SecretExistsError,
    SecretNotFoundError,
    SecretValidationError,
    StackLoadError,
    StackSecretsError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)

if TYPE_CHECKING:
    from ._client import AsyncClient, Client, validate_stack, validate_stacks
    from ._levels import ValidationLevel
    from ._loaders import load_stack_file, load_stacks, stack_from_dict
    from ._logging import SecretRedactor, redact_secrets
    from ._options import ClientOptions
    from ._report import Problem, ProblemKind, Stats, ValidationReport
    from ._secret import Secret, SecretValue
    from ._stack import Component, Stack, Usage

#: Where each public name lives. Imported on first use, as httpx and rich do, so that
#: ``import stacksecrets`` loads nothing a program does not use (no HTTP client, no store,
#: no terminal library).
_SOURCES = {
    "AsyncClient": "._client",
    "Client": "._client",
    "validate_stack": "._client",
    "validate_stacks": "._client",
    "ValidationLevel": "._levels",
    "load_stack_file": "._loaders",
    "load_stacks": "._loaders",
    "stack_from_dict": "._loaders",
    "SecretRedactor": "._logging",
    "redact_secrets": "._logging",
    "ClientOptions": "._options",
    "Problem": "._report",
    "ProblemKind": "._report",
    "Stats": "._report",
    "ValidationReport": "._report",
    "Secret": "._secret",
    "SecretValue": "._secret",
    "Component": "._stack",
    "Stack": "._stack",
    "Usage": "._stack",
}

__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ClientOptions",
    "ClosedError",
    "Component",
    "ConfigurationError",
    "ForbiddenError",
    "Problem",
    "ProblemKind",
    "Secret",
    "SecretExistsError",
    "SecretNotFoundError",
    "SecretRedactor",
    "SecretValidationError",
    "SecretValue",
    "Stack",
    "StackLoadError",
    "StackSecretsError",
    "Stats",
    "StoreCorruptError",
    "StoreError",
    "StoreUnavailableError",
    "Usage",
    "ValidationLevel",
    "ValidationReport",
    "load_stack_file",
    "load_stacks",
    "redact_secrets",
    "stack_from_dict",
    "validate_stack",
    "validate_stacks",
]


for _name in __all__:
    _obj = globals().get(_name)
    if getattr(_obj, "__module__", "").startswith("stacksecrets._"):
        _obj.__module__ = __name__
del _name, _obj


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source, __name__), name)
    # Public classes and functions say where users find them, not the private module.
    if getattr(value, "__module__", "").startswith("stacksecrets._"):
        value.__module__ = __name__
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
