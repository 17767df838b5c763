"""stacksecrets: secret references (``{{name.key}}``) in stack configuration.

Collects every reference across every component of one or many stacks, checks them against a
secret store concurrently with a cache, and reports every problem at once with every place it
is used.
"""

from __future__ import annotations

from ._client import AsyncClient, Client, ClientOptions, validate_stack, validate_stacks
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
from ._plan import InvalidUse, References, collect
from ._references import (
    Malformed,
    Occurrence,
    Scan,
    SecretReference,
    format_reference,
    is_secret_reference,
    parse_reference,
    scan,
)
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
    "InvalidUse",
    "Malformed",
    "Occurrence",
    "Problem",
    "ProblemKind",
    "References",
    "Scan",
    "Secret",
    "SecretExistsError",
    "SecretNotFoundError",
    "SecretRedactor",
    "SecretReference",
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
    "collect",
    "format_reference",
    "is_secret_reference",
    "load_stack_file",
    "load_stacks",
    "parse_reference",
    "redact_secrets",
    "scan",
    "stack_from_dict",
    "validate_stack",
    "validate_stacks",
]
