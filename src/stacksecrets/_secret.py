"""A secret read from a store. Its values never show in a repr or str."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import attrs


def _frozen_values(values: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(values))


@attrs.frozen(repr=False)
class Secret:
    """A named set of key-value pairs, as ZenML's step API returns it.

    ``unreadable_keys`` are keys that exist but whose values this caller may not read (ZenML
    answers ``null`` for them).
    """

    name: str
    values: Mapping[str, str] = attrs.field(converter=_frozen_values, repr=False)
    unreadable_keys: frozenset[str] = attrs.field(default=frozenset(), converter=frozenset)

    @property
    def secret_values(self) -> dict[str, str]:
        """A copy of the readable key-value pairs (ZenML's ``secret.secret_values``)."""
        return dict(self.values)

    @property
    def keys(self) -> frozenset[str]:
        """Every key of the secret, readable or not."""
        return frozenset(self.values) | self.unreadable_keys

    def __repr__(self) -> str:
        return f"Secret(name={self.name!r}, keys={sorted(self.keys)!r})"

    __str__ = __repr__
