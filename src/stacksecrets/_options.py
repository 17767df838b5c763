"""How a client talks to its store: every option, its type and its default, in one place."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypedDict

import attrs

from ._describe import attrs_repr
from ._errors import ConfigurationError


def _at_least(minimum: float) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise ConfigurationError(
                f"option {attribute.name}: {value!r} is not a number of at least {minimum:g}"
            )

    return check


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigurationError(
            f"option {attribute.name}: {value!r} is not a positive number of seconds or None"
        )


def _positive_rate(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigurationError(
            f"option {attribute.name}: {value!r} is not a positive number of calls per second "
            "or None"
        )


def _boolean(_instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError(f"option {attribute.name}: {value!r} is not True or False")


@attrs.frozen(repr=False)
class ClientOptions:
    """How a client talks to its store. Every field has a sensible default.

    The clients also take each field as a keyword argument (``AsyncClient(max_concurrency=4)``);
    a value out of range is a ``ConfigurationError`` naming the option.
    """

    __repr__ = attrs_repr

    #: At most this many store calls in flight at once.
    max_concurrency: int = attrs.field(default=16, validator=_at_least(1))
    #: Seconds a found secret stays cached.
    cache_ttl: float = attrs.field(default=300.0, validator=_at_least(0))
    #: Seconds a missing secret stays known as missing.
    missing_ttl: float = attrs.field(default=5.0, validator=_at_least(0))
    #: Attempts per store call on transient failures.
    retry_attempts: int = attrs.field(default=5, validator=_at_least(1))
    #: Seconds one store call may spend retrying.
    retry_timeout: float = attrs.field(default=30.0, validator=_at_least(0))
    #: First back-off in seconds (doubling, with as much jitter, up to ``retry_wait_max``).
    retry_wait_initial: float = attrs.field(default=0.1, validator=_at_least(0))
    #: Longest back-off in seconds.
    retry_wait_max: float = attrs.field(default=5.0, validator=_at_least(0))
    #: At most this many store calls per second from this client (None: no limit), for a
    #: store whose quota is known. Throttled answers slow the client down in any case.
    rate_limit: float | None = attrs.field(default=None, validator=_positive_rate)
    #: Seconds one client operation (a validation, a read) may take in all; None: no limit.
    deadline: float | None = attrs.field(default=None, validator=_positive)
    #: Key-level validation answers from the shared metadata cache (key names, never values)
    #: for secrets whose id and change stamp are unchanged; ``STACKSECRETS_METADATA_CACHE=0``
    #: also turns it off. See ``docs/engine.md``.
    metadata_cache: bool = attrs.field(default=True, validator=_boolean)
    #: Seconds a metadata cache entry is trusted after the read that wrote it.
    metadata_max_age: float = attrs.field(default=3600.0, validator=_at_least(0))
    #: Report every reference ZenML's run time would not resolve, in stacks that ZenML runs
    #: (``Stack.runtime == "zenml"``). Turn off when stacksecrets resolves them instead.
    zenml_runtime_check: bool = attrs.field(default=True, validator=_boolean)

    def with_overrides(self, overrides: OptionOverrides) -> ClientOptions:
        """These options with the given fields replaced (and checked)."""
        return attrs.evolve(self, **overrides) if overrides else self


class OptionOverrides(TypedDict, total=False):
    """``ClientOptions`` fields as keyword arguments: a misspelt one is a type error."""

    max_concurrency: int
    cache_ttl: float
    missing_ttl: float
    retry_attempts: int
    retry_timeout: float
    retry_wait_initial: float
    retry_wait_max: float
    rate_limit: float | None
    deadline: float | None
    metadata_cache: bool
    metadata_max_age: float
    zenml_runtime_check: bool
