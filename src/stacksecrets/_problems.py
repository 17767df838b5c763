"""Problems, built from what the engine found: a missing secret or key, a store's refusal or
failure, a reference that cannot be resolved, with "did you mean" suggestions. Only names,
keys and store messages go in, never a value.

The engine finds; this module says what is wrong; ``_report`` orders and prints it.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

from ._errors import ForbiddenError, StoreError
from ._plan import ATTACHED, References
from ._report import Problem, ProblemKind
from ._secret import Secret
from ._stack import Usage

if TYPE_CHECKING:
    from ._metacache import CachedKeys


def problem(kind: ProblemKind, refs: References, name: str, detail: str = "") -> Problem:
    return Problem(kind, name, None, refs.usages_of(name), detail)


def store_problem(refs: References, name: str, error: StoreError) -> Problem:
    kind = ProblemKind.FORBIDDEN if isinstance(error, ForbiddenError) else ProblemKind.STORE_ERROR
    return problem(kind, refs, name, str(error))


def key_problems(refs: References, secret: Secret) -> list[Problem]:
    return _problems_of_keys(
        refs,
        secret.name,
        frozenset(secret.values),
        secret.unreadable_keys,
        secret.unreadable_reason,
    )


def key_problems_from(refs: References, name: str, entry: CachedKeys) -> list[Problem]:
    return _problems_of_keys(refs, name, entry.keys - entry.unreadable, entry.unreadable)


def _problems_of_keys(
    refs: References,
    name: str,
    readable: frozenset[str],
    unreadable: frozenset[str],
    unreadable_reason: str | None = None,
) -> list[Problem]:
    problems = []
    keys = readable | unreadable
    for key, usages in refs.secrets[name].items():
        if key == ATTACHED:  # zenml-run (issue 22): an attached secret needs readable values
            if not readable:
                why = unreadable_reason or "it has no readable values"
                detail = f"attached or listed: ZenML skips it with only a warning ({why})"
                problems.append(Problem(ProblemKind.VALUE_NOT_READABLE, name, None, usages, detail))
            continue
        if key in readable:
            continue
        if key in unreadable:
            kind = ProblemKind.VALUE_NOT_READABLE
            detail = "the key exists but this caller may not read its value"
        elif unreadable_reason is not None:
            kind = ProblemKind.VALUE_NOT_READABLE
            detail = f"the secret has no readable keys: {unreadable_reason}"
        else:
            kind = ProblemKind.MISSING_KEY
            detail = "available keys: " + _key_list(keys)
        problems.append(Problem(kind, name, key, usages, detail, close_match(key, keys)))
    return problems


#: How close a known name must be to be suggested (difflib's ratio). 0.75, not difflib's 0.6:
#: 'pasword' -> 'password' (0.93), 'passwd' -> 'password' (0.86), but no 'access_key' for
#: 'secret_key' (0.6), a different key.
SUGGESTION_CUTOFF = 0.75
#: Up to this many known names (a secret's keys), difflib tries each; beyond, ``_Suggester``.
_FEW = 30


def close_match(name: str, known: Iterable[str]) -> str | None:
    """The known name closest to ``name`` (a typo's likely intent), if one is close enough.
    Only ever given names and keys, never values."""
    names = sorted(set(known))
    if len(names) > _FEW:
        return _Suggester(names).closest(name)
    return _close_among_few(name, tuple(names))


@functools.lru_cache(maxsize=256)
def _close_among_few(name: str, names: tuple[str, ...]) -> str | None:
    """difflib over a few names (a secret's keys). Remembered: the same missing key of
    secrets with the same keys (``token`` of 50 secrets of ``username`` and ``password``)
    is one answer."""
    import difflib  # only when a name is missing

    found = difflib.get_close_matches(name, names, n=1, cutoff=SUGGESTION_CUTOFF)
    return found[0] if found else None


def with_suggestions(problems: list[Problem], known: Iterable[str]) -> list[Problem]:
    """Missing secrets get the closest name the validation found to exist."""
    suggester = _Suggester(known)
    return [
        attrs.evolve(problem, suggestion=suggester.closest(problem.secret))
        if problem.kind is ProblemKind.MISSING_SECRET and problem.secret is not None
        else problem
        for problem in problems
    ]


class _Suggester:
    """``difflib.get_close_matches(name, sorted(known), n=1, cutoff=SUGGESTION_CUTOFF)``, the
    same answer, for many names against one set of known names.

    difflib tries every known name (about a microsecond each): 29 missing names against 300
    known ones cost 10 ms, after the last store answer. Here the names difflib's own first
    two tests (``real_quick_ratio``: the lengths; ``quick_ratio``: the characters in common,
    counted with multiplicity) would reject are left out before difflib sees the rest:
    characters in common are counted through an index of which known names hold each
    character, so a name sharing few characters with the others costs little. The tests are
    difflib's own formulas, so what is left out is exactly what difflib would reject.
    """

    def __init__(self, known: Iterable[str]) -> None:
        self._names = sorted(set(known))
        self._postings: dict[str, list[tuple[int, int]]] = {}
        for index, known_name in enumerate(self._names):
            for char, count in collections.Counter(known_name).items():
                self._postings.setdefault(char, []).append((index, count))
        self._found: dict[str, str | None] = {}

    def closest(self, name: str) -> str | None:
        if name not in self._found:
            self._found[name] = self._closest(name)
        return self._found[name]

    def _closest(self, name: str) -> str | None:
        length = len(name)
        common = [0] * len(self._names)
        for char, count in collections.Counter(name).items():
            for index, known_count in self._postings.get(char, ()):
                common[index] += min(count, known_count)
        # A cheap necessary condition first (whatever the known name's length), then
        # difflib's two tests, exactly.
        least = SUGGESTION_CUTOFF * length / 2 - 1e-9
        candidates = []
        for index in [i for i, matches in enumerate(common) if matches >= least]:
            known_name = self._names[index]
            total = length + len(known_name)
            # difflib's ratio 2 * matches / total, for an upper bound on the matches.
            if (
                _ratio(min(length, len(known_name)), total) >= SUGGESTION_CUTOFF
                and _ratio(common[index], total) >= SUGGESTION_CUTOFF
            ):
                candidates.append(known_name)
        import difflib  # only when a name is missing

        found = difflib.get_close_matches(name, candidates, n=1, cutoff=SUGGESTION_CUTOFF)
        return found[0] if found else None


def _ratio(matches: int, length: int) -> float:
    """difflib's ``_calculate_ratio``, the same float."""
    return 2.0 * matches / length if length else 1.0


def _key_list(keys: frozenset[str], shown: int = 10) -> str:
    names = sorted(keys)
    text = ", ".join(repr(key) for key in names[:shown]) or "none"
    return text if len(names) <= shown else f"{text} and {len(names) - shown} more"


def unresolvable_problems(refs: References) -> list[Problem]:
    # A configuration problem, found without the store: reported at every level. One problem
    # per reason, with every place it applies to.
    grouped: dict[str, list[Usage]] = {}
    for item in refs.unresolvable:
        grouped.setdefault(item.reason, []).append(item.usage)
    return [
        Problem(ProblemKind.ZENML_UNRESOLVABLE, None, None, tuple(usages), reason)
        for reason, usages in grouped.items()
    ]


def invalid_problems(refs: References) -> list[Problem]:
    # Grouped by what was written, shown by its shape: literal text that merely contains '{{'
    # may be a credential, so the report names the place and the shape, never the text.
    grouped: dict[tuple[str, str], tuple[str, list[Usage]]] = {}
    for item in refs.invalid:
        entry = grouped.setdefault((item.text, item.reason), (item.shape, []))
        entry[1].append(item.usage)
    return [
        Problem(ProblemKind.INVALID_REFERENCE, None, None, tuple(usages), f"{shape}: {reason}")
        for (_, reason), (shape, usages) in grouped.items()
    ]
