"""Naming a value's kind in messages that must not show the value itself; the shared repr of
the attrs classes built at start-up (``attrs_repr``)."""

from __future__ import annotations

import threading
from typing import cast

import attrs


def kind_of(value: object, *, mapping: str = "a mapping", sequence: str = "a list") -> str:
    """``"a string"``, ``"a number"``, ``"null"``...; mappings and lists in the caller's words
    (YAML's "a mapping", JSON's "an object")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return mapping
    if isinstance(value, list):
        return sequence
    return f"a {type(value).__name__}"


def quoted(name: str, limit: int = 80) -> str:
    """A name (a key, a secret, a stack) safe to print in a message: quoted as a Python string
    (control characters escaped, so a name cannot forge lines or send terminal escapes) and cut
    to ``limit`` characters."""
    return repr(name[:limit])


_repring = threading.local()


def attrs_repr(self: object) -> str:
    """The repr attrs generates (``Name(field=value, ...)``, fields with ``repr=False`` left
    out, ``...`` for an object already being shown), as one function shared by the classes on
    every start-up path: attrs compiles a ``__repr__`` per class, a fifth of what building an
    attrs class costs. Use as ``__repr__ = attrs_repr`` with ``@attrs.frozen(repr=False)``."""
    try:
        showing: set[int] = _repring.showing
    except AttributeError:
        showing = _repring.showing = set()
    if id(self) in showing:
        return "..."
    showing.add(id(self))
    try:
        cls = self.__class__
        shown = []
        for field in attrs.fields(cast("type[attrs.AttrsInstance]", cls)):
            if field.repr is not False:
                show = repr if field.repr is True else field.repr
                shown.append(f"{field.name}={show(getattr(self, field.name))}")
        fields = ", ".join(shown)
        return f"{cls.__qualname__.rsplit('>.', 1)[-1]}({fields})"
    finally:
        showing.discard(id(self))
