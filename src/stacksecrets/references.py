"""The reference grammar and the planning of look-ups: for tools built on stacksecrets.

- The grammar: ``parse_reference``, ``is_secret_reference``, ``scan`` (every reference and
  malformed part in a string), ``format_reference`` and their value types.
- Planning: ``collect`` turns stacks into ``References``, each unique secret name with its keys
  and every place each is used; the engine validates from that.

Applications usually need neither: the clients do both.
"""

from __future__ import annotations

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

__all__ = [
    "InvalidUse",
    "Malformed",
    "Occurrence",
    "References",
    "Scan",
    "SecretReference",
    "collect",
    "format_reference",
    "is_secret_reference",
    "parse_reference",
    "scan",
]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
