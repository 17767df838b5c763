"""One strict JSON reader for every JSON file stacksecrets reads (stack files, the file store,
the metadata cache): a key that appears twice in one object is an error (which of two entries
wins is a guess; a hand edit went wrong), and no exception leaves holding the text.

``JSONDecodeError.doc`` holds the whole document, secrets and all: it must never ride along as
a cause or context, so ``loads`` returns what is wrong instead of raising.
"""

from __future__ import annotations

import json
from typing import Any, Literal, NamedTuple

__all__ = ["JsonProblem", "loads"]


class JsonProblem(NamedTuple):
    """What is wrong with a JSON text, in the parser's words; never the text itself. (A named
    tuple: built at every start-up, where an attrs class costs half a millisecond.)

    ``kind``: ``"syntax"`` (``detail`` is json's message, with ``line``/``column``),
    ``"duplicate"`` (``detail`` is the key), ``"depth"`` or ``"number"`` (too large to read).
    """

    kind: Literal["syntax", "duplicate", "depth", "number"]
    detail: str = ""
    line: int | None = None
    column: int | None = None


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def loads(text: str) -> tuple[Any, JsonProblem | None]:
    """The parsed JSON and ``None``, or ``None`` and what is wrong with it."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys), None
    except json.JSONDecodeError as exc:
        return None, JsonProblem("syntax", exc.msg, exc.lineno, exc.colno)
    except _DuplicateKeyError as exc:
        return None, JsonProblem("duplicate", exc.key)
    except RecursionError:
        return None, JsonProblem("depth")
    except ValueError:  # e.g. an integer with more digits than Python converts
        return None, JsonProblem("number")
