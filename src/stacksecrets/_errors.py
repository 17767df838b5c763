"""Every exception stacksecrets raises, in one place.

::

    StackSecretsError
    ├── ConfigurationError (ValueError)        bad level, store URL, environment variable
    ├── StackLoadError (ValueError)            a stack file that cannot be read; names file and line
    ├── SecretValidationError                  validation found problems; carries the report
    ├── ClosedError (RuntimeError)             a closed client or store was used
    └── StoreError                             anything a secret store reports
        ├── SecretNotFoundError (KeyError)     no secret with that exact name
        ├── SecretExistsError                  create of a name that is taken
        ├── ForbiddenError (PermissionError)   the caller may not do this
        │   └── AuthenticationError            the store refused the caller's credentials
        ├── StoreCorruptError                  the store's data cannot be read; it is left as is
        └── StoreUnavailableError (ConnectionError)
                                               transient: timeouts, resets, 408/429/502/503/
                                               504; may carry a retry-after hint;
                                               ``throttled`` when the store said "slow down"

Messages name secrets, keys, files, hosts and places; never a secret value, token or password.
Errors from libraries (httpx, the file system) are re-raised as these with ``raise ... from``.

Every one of them round-trips through ``pickle`` with its attributes (``source``/``line``,
``retry_after``/``throttled``, ``report``...), so that orchestrators can carry them between
processes (multiprocessing, Celery, Dask, Ray): ``StackSecretsError.__reduce__`` rebuilds the
exception from its message without calling ``__init__`` (whose keyword-only arguments the
default would not pass), then restores its attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._report import ValidationReport


def _rebuilt(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    """The exception ``cls`` with ``args``, without its ``__init__`` (see ``__reduce__``)."""
    error = cls.__new__(cls, *args)
    error.args = args  # OSError's __new__ leaves them to an __init__ it would not run here
    return error


class StackSecretsError(Exception):
    """Base of every stacksecrets error."""

    def __reduce__(self) -> tuple[Any, ...]:
        # BaseException's default calls cls(*args): that misses keyword-only arguments and
        # would run __init__ on a formatted message. Rebuild, then restore the attributes.
        return (_rebuilt, (type(self), self.args), self.__dict__ or None)


class ConfigurationError(StackSecretsError, ValueError):
    """A setting (level, store URL, environment variable, option) is not valid."""


class StackLoadError(StackSecretsError, ValueError):
    """A stack file or object could not be read into a stack."""

    def __init__(self, message: str, *, source: str, line: int | None = None) -> None:
        self.source = source
        self.line = line
        #: What is wrong, without the place (``str()`` puts ``source:line:`` before it).
        self.problem = message
        where = source if line is None else f"{source}:{line}"
        super().__init__(f"{where}: {message}")


class SecretValidationError(StackSecretsError):
    """Validation found problems; ``report`` holds every one of them."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        super().__init__(report.to_text())


class ClosedError(StackSecretsError, RuntimeError):
    """A client or store was used after it was closed."""


class StoreError(StackSecretsError):
    """A secret store could not do what was asked."""


class SecretNotFoundError(StoreError, KeyError):
    """No secret with this exact name exists in the store."""

    def __init__(self, name: str, *, store: str = "") -> None:
        self.name = name
        where = f" in {store}" if store else ""
        super().__init__(f"The secret {name!r} does not exist{where}.")

    def __str__(self) -> str:
        # KeyError's str() would repr the message; a plain sentence reads better.
        return str(self.args[0])


class SecretExistsError(StoreError):
    """A secret with this name already exists."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"A secret named {name!r} already exists.")


class ForbiddenError(StoreError, PermissionError):
    """The store refused the operation for this caller."""


class AuthenticationError(ForbiddenError):
    """The store refused the caller's credentials: no operation can succeed until they change."""


class StoreCorruptError(StoreError):
    """The store's data is unreadable; stacksecrets will not overwrite it."""


class StoreUnavailableError(StoreError, ConnectionError):
    """A transient failure: the store may answer if asked again later.

    ``throttled`` is true when the store refused for its rate limit or quota (429, 503 with
    ``Retry-After``, AWS ``ThrottlingException``): the caller should slow down, not give up.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, throttled: bool = False
    ) -> None:
        self.retry_after = retry_after
        self.throttled = throttled
        super().__init__(message)
