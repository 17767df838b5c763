"""Validation reports: stable order, every usage named, JSON form, and the error carrying them."""

from __future__ import annotations

import itertools
import json

import attrs
import pytest

from stacksecrets import (
    Problem,
    ProblemKind,
    SecretValidationError,
    StackSecretsError,
    Stats,
    Usage,
    ValidationLevel,
    ValidationReport,
)

TRACKER = Usage("prod", "experiment_tracker", "mlflow", "configuration.tracking_password")
K8S = Usage("prod", "orchestrator", "k8s", "settings.docker.environment.TOKEN")
DEV = Usage("dev", "orchestrator", "local", "configuration.token")

INVALID = Problem(
    ProblemKind.INVALID_REFERENCE, None, None, (DEV,), "'{{nope}}': no '.' between the name"
)
MISSING_AWS = Problem(ProblemKind.MISSING_SECRET, "aws", None, (K8S, TRACKER))
MISSING_KEY = Problem(
    ProblemKind.MISSING_KEY, "db", "password", (TRACKER,), "available keys: 'user'"
)
UNREADABLE = Problem(
    ProblemKind.VALUE_NOT_READABLE, "db", "password", (K8S,), "the caller may not read it"
)
STORE_DOWN = Problem(ProblemKind.STORE_ERROR, "vault", None, (DEV, K8S), "store unavailable")
PROBLEMS = [INVALID, MISSING_AWS, MISSING_KEY, UNREADABLE, STORE_DOWN]
STATS = Stats(stacks=2, references=7, unique_secrets=3, store_calls=4, cache_hits=1, seconds=0.0123)


def report_of(problems: list[Problem]) -> ValidationReport:
    return ValidationReport(
        ValidationLevel.SECRET_AND_KEY_EXISTS, problems, STATS, stacks=("prod", "dev")
    )


def test_problems_are_sorted_the_same_whatever_the_input_order():
    """Every permutation of the problems gives one order: invalid first, then by secret, key,
    kind."""
    orders = {tuple(report_of(list(p)).problems) for p in itertools.permutations(PROBLEMS)}
    assert orders == {(INVALID, MISSING_AWS, MISSING_KEY, UNREADABLE, STORE_DOWN)}


def test_problem_usages_are_deduplicated_and_sorted():
    """A problem's usages are each listed once, in a stable order."""
    problem = Problem(ProblemKind.MISSING_SECRET, "aws", None, (TRACKER, K8S, TRACKER, DEV))
    assert problem.usages == (DEV, TRACKER, K8S)


def test_text_names_every_problem_and_every_usage():
    """The text form names the level, the count, each problem and each place it is used."""
    text = report_of(PROBLEMS).to_text()
    assert "SECRET_AND_KEY_EXISTS" in text
    assert "found 5 problems" in text
    for problem in PROBLEMS:
        for usage in problem.usages:
            assert f"used in {usage}" in text
    assert "missing secret: 'aws'" in text
    assert "missing key: 'db' key 'password' (available keys: 'user')" in text
    assert "invalid reference: '{{nope}}'" in text
    assert "'prod', 'dev'" in text
    assert "7 references to 3 secrets in 2 stacks; 4 store calls, 1 cache hit" in text


def test_text_lists_usages_under_their_problem():
    """Each ``used in`` line follows the problem it belongs to."""
    lines = report_of([MISSING_AWS]).to_text().splitlines()
    assert lines[1:4] == [
        "  missing secret: 'aws'",
        f"    used in {TRACKER}",
        f"    used in {K8S}",
    ]


def test_single_problem_is_singular():
    """One problem reads as "1 problem"."""
    assert "found 1 problem (" in report_of([MISSING_AWS]).to_text()


def test_json_round_trips_with_the_expected_keys():
    """The JSON form loads back to the dict form, with documented keys at every level."""
    report = report_of(PROBLEMS)
    data = json.loads(report.to_json())
    assert data == report.to_dict()
    assert set(data) == {"ok", "level", "stacks", "store", "problems", "sources", "stats", "notes"}
    assert data["ok"] is False
    assert data["level"] == "SECRET_AND_KEY_EXISTS"
    assert data["stacks"] == ["prod", "dev"]
    assert data["stats"] == {
        "stacks": 2,
        "references": 7,
        "unique_secrets": 3,
        "store_calls": 4,
        "cache_hits": 1,
        "seconds": 0.0123,
        "metadata_hits": 0,
        "throttled": 0,
        "retries": 0,
    }
    assert [p["kind"] for p in data["problems"]] == [
        "invalid_reference",
        "missing_secret",
        "missing_key",
        "value_not_readable",
        "store_error",
    ]
    for problem in data["problems"]:
        assert set(problem) == {"kind", "secret", "key", "detail", "suggestion", "usages"}
        for usage in problem["usages"]:
            assert set(usage) == {
                "stack",
                "component_type",
                "component_name",
                "attribute",
                "source",
            }
    assert data["problems"][1]["usages"] == [TRACKER.to_dict(), K8S.to_dict()]


def test_compact_json_has_no_newlines():
    """``indent=None`` gives one line, for log pipelines."""
    assert "\n" not in report_of(PROBLEMS).to_json(indent=None)


def test_raise_for_problems_raises_with_the_whole_report():
    """A report with problems raises SecretValidationError carrying that very report."""
    report = report_of(PROBLEMS)
    with pytest.raises(SecretValidationError) as caught:
        report.raise_for_problems()
    assert caught.value.report is report
    assert isinstance(caught.value, StackSecretsError)
    assert str(caught.value) == report.to_text()


def test_ok_report_returns_itself_and_says_ok():
    """A report without problems is ok, does not raise, and its text says so."""
    report = ValidationReport(ValidationLevel.SECRET_EXISTS, [], STATS, stacks=("prod",))
    assert report.ok
    assert report.raise_for_problems() is report
    assert report.to_text().splitlines() == [
        "Secret references OK at level SECRET_EXISTS ('prod').",
        "7 references to 3 secrets in 2 stacks; 4 store calls, 1 cache hit, 0.012 s",
    ]
    assert report.to_dict()["ok"] is True
    assert report.to_dict()["problems"] == []


def test_report_without_stacks_says_so():
    """A report over no stacks says "no stacks" rather than leaving a blank."""
    report = ValidationReport(ValidationLevel.NONE, [])
    assert "(no stacks)" in report.to_text()


@pytest.mark.parametrize("kind", list(ProblemKind))
def test_every_kind_has_a_title_and_a_json_name(kind):
    """Each kind renders in text and has a stable snake_case JSON name (the ZenML kind is
    titled for what it means to the reader)."""
    problem = Problem(kind, "s", "k", (TRACKER,))
    titles = {ProblemKind.ZENML_UNRESOLVABLE: "not resolved by ZenML"}
    title = titles.get(kind, kind.value.replace("_", " "))
    assert problem.to_text().startswith(title + ": ")
    assert problem.to_dict()["kind"] == str(kind) == kind.value


def test_metadata_cache_answers_are_counted_in_text_and_json():
    """Secrets answered from the metadata cache show in the summary line and in the JSON."""
    stats = attrs.evolve(STATS, metadata_hits=2)
    report = ValidationReport(ValidationLevel.SECRET_AND_KEY_EXISTS, [], stats, ("prod",))
    assert "; 2 secrets answered from the metadata cache" in report.to_text()
    assert json.loads(report.to_json())["stats"]["metadata_hits"] == 2
    assert "metadata cache" not in report_of([]).to_text()


def test_counts_are_singular_for_one_and_the_store_is_named():
    """'1 reference to 1 secret in 1 stack; 1 store call, 1 cache hit', not '1 secrets'; the
    text and the JSON name the store checked (its description, which holds no credential)."""
    one = Stats(stacks=1, references=1, unique_secrets=1, store_calls=1, cache_hits=1)
    report = ValidationReport(ValidationLevel.SECRET_EXISTS, [], one, ("s",), "file:///x.json")
    text = report.to_text()
    assert "1 reference to 1 secret in 1 stack; 1 store call, 1 cache hit," in text
    assert "\nStore: file:///x.json" in text
    assert report.to_dict()["store"] == "file:///x.json"
    two = Stats(stacks=2, references=2, unique_secrets=0, store_calls=0, cache_hits=2)
    text = ValidationReport(ValidationLevel.SECRET_EXISTS, [], two, ("a", "b")).to_text()
    assert "2 references to 0 secrets in 2 stacks; 0 store calls, 2 cache hits," in text
