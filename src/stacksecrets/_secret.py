"""A secret read from a store. Its values never show in a repr or str."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

#: What stands for a secret value wherever one would show (reprs, logs, CLI output).
MASK = "**********"


def _frozen_values(values: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(values))


def _key_set(keys: Iterable[str]) -> frozenset[str]:
    return frozenset(keys)


@attrs.frozen(repr=False)
class Secret:
    """A named set of key-value pairs, as ZenML's step API returns it.

    ``unreadable_keys`` are keys that exist but whose values this caller may not read (ZenML
    answers ``null`` for them). ``unreadable_reason`` says why a secret that exists has no
    readable keys at all (an AWS secret whose value is binary or not a JSON object); every key
    asked of such a secret is "not readable", not "missing". It never holds a value.
    """

    name: str
    values: Mapping[str, str] = attrs.field(converter=_frozen_values, repr=False)
    unreadable_keys: frozenset[str] = attrs.field(default=frozenset(), converter=_key_set)
    unreadable_reason: str | None = None

    @property
    def secret_values(self) -> dict[str, str]:
        """A copy of the readable key-value pairs (ZenML's ``secret.secret_values``)."""
        return dict(self.values)

    @property
    def keys(self) -> frozenset[str]:
        """Every key of the secret, readable or not."""
        return frozenset(self.values) | self.unreadable_keys

    def __repr__(self) -> str:
        if self.unreadable_reason is not None:
            return f"Secret(name={self.name!r}, unreadable={self.unreadable_reason!r})"
        return f"Secret(name={self.name!r}, keys={sorted(self.keys)!r})"

    __str__ = __repr__


class SecretValue:
    """A resolved value that holds secret material: masked in repr, str and format.

    ``get_secret_value()`` gives the real string, for the code that needs it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SecretValue):
            return self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the value out in the clear somewhere; refuse.
        raise TypeError("SecretValue cannot be pickled")
