"""Naming a value's kind in messages that must not show the value itself."""

from __future__ import annotations


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
