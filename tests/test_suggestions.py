""" "Did you mean" suggestions: the same answer as difflib's, found without trying every name."""

from __future__ import annotations

import difflib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from stacksecrets import Problem, ProblemKind
from stacksecrets._problems import (
    SUGGESTION_CUTOFF,
    _Suggester,
    close_match,
    with_suggestions,
)


def difflib_answer(name: str, known: list[str]) -> str | None:
    found = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=SUGGESTION_CUTOFF)
    return found[0] if found else None


NAMES = st.text(alphabet="abcde-_0123", min_size=0, max_size=12)


@settings(max_examples=300, deadline=None)
@given(name=NAMES, known=st.lists(NAMES, max_size=60))
def test_close_match_is_difflibs_answer(name: str, known: list[str]) -> None:
    """Both ways (difflib over a few names, the index over many) give difflib's answer."""
    assert _Suggester(known).closest(name) == difflib_answer(name, known)
    assert close_match(name, known) == difflib_answer(name, known)


def test_many_missing_names_against_many_known_ones_match_difflib() -> None:
    """The validation's case: missing names against hundreds of found ones, with typos,
    ties between equally close names, and names that share no character."""
    rng = random.Random(24)  # noqa: S311 - reproducible test names, not a secret
    alphabet = "abcdefghij-_0123456789"
    known = [f"s{i:04d}" for i in range(300)]
    known += ["".join(rng.choices(alphabet, k=rng.randint(1, 20))) for _ in range(300)]
    missing = ["gone-07", "s00x1", "s0301", "zzz", "", "database-password"]
    for name in rng.sample(known, 40):  # typos: a character dropped, changed or doubled
        at = rng.randrange(len(name))
        missing += [name[:at] + name[at + 1 :], name[:at] + "x" + name[at + 1 :], name + name[-1]]
    problems = [Problem(ProblemKind.MISSING_SECRET, name, None, ()) for name in missing]
    suggested = with_suggestions(problems, known)
    assert [p.suggestion for p in suggested] == [difflib_answer(n, known) for n in missing]
    assert sum(p.suggestion is not None for p in suggested) > 40  # the typos are found


def test_only_missing_secrets_get_a_suggestion() -> None:
    problems = [
        Problem(ProblemKind.MISSING_SECRET, "pasword", None, ()),
        Problem(ProblemKind.STORE_ERROR, "pasword", None, (), "down"),
    ]
    suggested = with_suggestions(problems, ["password", "token"])
    assert [p.suggestion for p in suggested] == ["password", None]
