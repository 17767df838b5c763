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

from ._client import AsyncClient, Client, validate_stack, validate_stacks
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
from ._levels import ValidationLevel
from ._loaders import load_stack_file, load_stacks, stack_from_dict
from ._logging import SecretRedactor, redact_secrets
from ._options import ClientOptions
from ._report import Problem, ProblemKind, Stats, ValidationReport
from ._secret import Secret, SecretValue
from ._stack import Component, Stack, Usage

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

# Public classes and functions say where users find them, not the private module they live in.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("stacksecrets._"):
        _obj.__module__ = __name__
del _name, _obj
