"""The ``{{name.key}}`` grammar: ZenML's whole-value reading, embedded references with their
spans, malformed references with their reasons, and the ``\\{{`` escape."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import stacksecrets._references as references_module
from stacksecrets._references import substitute
from stacksecrets.references import (
    Malformed,
    Occurrence,
    SecretReference,
    format_reference,
    is_secret_reference,
    parse_reference,
    scan,
)
from zenml_fixtures import DEFAULT_PYTHON

#: ZenML 0.98.0, ``zenml/utils/secret_utils.py``, applied with ``fullmatch``.
ZENML_PATTERN = r"\{\{\s*\S+?\.\S+\s*\}\}"

#: The ZenML venv of the server fixture (``$STACKSECRETS_ZENML_PYTHON``, else the per-user one).
ZENML_PYTHON = Path(os.environ.get("STACKSECRETS_ZENML_PYTHON") or DEFAULT_PYTHON)


def zenml_reading(value: str) -> tuple[str, str]:
    """ZenML's ``parse_secret_reference``: drop two braces each side, split on the first '.',
    strip."""
    name, key = value[2:-2].split(".", 1)
    return name.strip(), key.strip()


# Every row of the grammar table in shared/reference/zenml.md: value -> ZenML's reading.
ZENML_TABLE: list[tuple[str, tuple[str, str] | None]] = [
    ("{{ a.b }}", ("a", "b")),
    ("{{\ta.b\n}}", ("a", "b")),
    ("{{a.b.c}}", ("a", "b.c")),
    ("{{a..b}}", ("a", ".b")),
    ("{{a .b}}", None),
    ("{{ a . b }}", None),
    ("{{a b.c}}", None),
    ("{{.b}}", None),
    ("{{a.}}", None),
    ("x {{a.b}}", None),
    ("{{a.b}}{{c.d}}", ("a", "b}}{{c.d")),
    ("{{{a.b}}", ("{a", "b")),
    ("{{a.b}}}", ("a", "b}")),
]
# Where stacksecrets deliberately reads a ZenML reference differently (see the module docs).
ZENML_BUGS = {"{{a.b}}{{c.d}}"}

BRACEY = st.text(alphabet=st.sampled_from(list("{{}}..\\ \t\n\u00a0ab")), max_size=30)
ANY_TEXT = st.text(
    alphabet=st.one_of(st.sampled_from(list("{}.\\ \t\n\u2028")), st.characters()), max_size=60
)
NAME = st.text(
    alphabet=st.characters(exclude_characters=".{}").filter(lambda c: not c.isspace()),
    min_size=1,
    max_size=20,
)
KEY = st.text(
    alphabet=st.characters(exclude_characters="{}").filter(lambda c: not c.isspace()),
    min_size=1,
    max_size=20,
)
# Text around an embedded reference that can neither open one nor escape one.
PLAIN = st.text(alphabet=st.characters(exclude_characters="{}\\"), max_size=20)


def wrapped(middle: str) -> str:
    return "{{" + middle + "}}"


CANDIDATES = st.one_of(BRACEY, BRACEY.map(wrapped), ANY_TEXT, ANY_TEXT.map(wrapped))


def refs(value: str) -> list[tuple[str, str, int, int]]:
    return [(o.reference.name, o.reference.key, o.start, o.end) for o in scan(value).references]


# -- whole values, as ZenML reads them ---------------------------------------------------------


@pytest.mark.parametrize(("value", "reading"), ZENML_TABLE)
def test_table_row_is_a_reference_exactly_when_zenml_says_so(value, reading):
    """``is_secret_reference`` answers as ZenML's pattern does for every row of the table."""
    assert (re.fullmatch(ZENML_PATTERN, value) is not None) == (reading is not None)
    assert is_secret_reference(value) == (reading is not None)


@pytest.mark.parametrize(
    ("value", "reading"), [row for row in ZENML_TABLE if row[0] not in ZENML_BUGS]
)
def test_table_row_whole_value_reading_equals_zenml(value, reading):
    """``parse_reference`` reads every row of the table as ZenML does (bugs apart)."""
    expected = None if reading is None else SecretReference(*reading)
    assert parse_reference(value) == expected
    if reading is not None:
        assert zenml_reading(value) == reading
        assert scan(value).whole
        assert refs(value) == [(*reading, 0, len(value))]


def test_two_adjacent_references_are_read_as_two():
    """``{{a.b}}{{c.d}}`` (ZenML: key ``b}}{{c.d``) is two references, as documented."""
    value = "{{a.b}}{{c.d}}"
    assert is_secret_reference(value)
    assert parse_reference(value) is None
    found = scan(value)
    assert not found.whole
    assert refs(value) == [("a", "b", 0, 7), ("c", "d", 7, 14)]
    assert found.malformed == ()
    assert "``{{a.b}}{{c.d}}``" in (references_module.__doc__ or "")


def test_empty_name_is_malformed_where_zenml_reads_secret_named_empty():
    """``{{.a.b}}`` is a reference to ZenML (name ``''``); stacksecrets reports it malformed."""
    value = "{{.a.b}}"
    assert is_secret_reference(value)
    assert zenml_reading(value) == ("", "a.b")
    assert parse_reference(value) is None
    found = scan(value)
    assert found.references == ()
    assert found.malformed == (Malformed(value, 0, 8, "missing secret name before '.'"),)
    assert "``{{.a.b}}``" in (references_module.__doc__ or "")


@pytest.mark.parametrize("value", [None, 3, b"{{a.b}}", ["{{a.b}}"], {"{{a.b}}": 1}])
def test_only_strings_can_be_references(value):
    """Non-string values are never references, as in ZenML."""
    assert not is_secret_reference(value)


def test_long_whole_value_is_read_without_backtracking_blowup():
    """A long run of dots is read correctly (ZenML's regex is quadratic on it; ours is not)."""
    body = "a." * 20_000
    assert is_secret_reference(wrapped(body))
    assert parse_reference(wrapped(body)) == SecretReference("a", body[2:])
    found = scan("{{" + body)
    assert found.references == ()
    assert [bad.reason for bad in found.malformed] == ["'{{' is not closed by '}}'"]


# -- embedded references -----------------------------------------------------------------------


def test_embedded_references_are_found_with_their_spans():
    """Every reference inside a longer string is found, in order, with its span."""
    value = "postgresql://{{db.user}}:{{db.password}}@host/x"
    user = value.index("{{db.user}}")
    password = value.index("{{db.password}}")
    found = scan(value)
    assert refs(value) == [
        ("db", "user", user, user + len("{{db.user}}")),
        ("db", "password", password, password + len("{{db.password}}")),
    ]
    assert not found.whole
    assert found.malformed == ()
    assert not found.escaped


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("x {{ db.user }} y", [("db", "user", 2, 15)]),
        ("x {{\tdb.user\n}}", [("db", "user", 2, 15)]),
        ("x {{a.b.c}}", [("a", "b.c", 2, 11)]),
        ("x {{a..b}}", [("a", ".b", 2, 10)]),
        ("{{a.b}}-{{a.b}}", [("a", "b", 0, 7), ("a", "b", 8, 15)]),
        ("{{a\\x.k}} y", [("a\\x", "k", 0, 9)]),
        ("a plain value", []),
        ("", []),
    ],
)
def test_embedded_reference_table(value, expected):
    """Embedded references allow blanks inside the braces and dots in the key."""
    assert refs(value) == expected
    assert scan(value).malformed == ()


@pytest.mark.parametrize(
    ("value", "expected", "literal_prefix"),
    [
        ("x{{{a.b}}", [("a", "b", 2, 9)], "x{"),
        ("x{{{{a.b}}", [("a", "b", 3, 10)], "x{{"),
        ("{{{a.b}} x", [("a", "b", 1, 8)], "{"),
        ("x {{a.b}}}", [("a", "b", 2, 9)], "x "),
    ],
)
def test_extra_braces_around_an_embedded_reference_are_literal(value, expected, literal_prefix):
    """Extra opening braces before, or a closing brace after, an embedded reference are text."""
    found = scan(value)
    assert refs(value) == expected
    assert found.malformed == ()
    assert value[: found.references[0].start] == literal_prefix


def test_extra_closing_brace_of_a_whole_value_joins_the_key_as_in_zenml():
    """As a whole value ``{{a.b}}}`` is key ``b}`` (ZenML), inside text the ``}`` is text."""
    assert refs("{{a.b}}}") == [("a", "b}", 0, 8)]
    assert refs("x {{a.b}}}") == [("a", "b", 2, 9)]


# -- the escape --------------------------------------------------------------------------------


def test_escaped_opener_is_literal_text():
    """``\\{{a.b}}`` holds no reference and nothing malformed; it is marked as escaped."""
    found = scan(r"\{{a.b}}")
    assert found.references == ()
    assert found.malformed == ()
    assert found.escaped
    assert not found.is_literal
    assert not is_secret_reference(r"\{{a.b}}")


def test_substitute_unescapes_and_replaces_references():
    """Resolving turns ``\\{{`` into ``{{`` and replaces only the real references."""
    value = r"x \{{not.ref}} {{a.b}} \{{"
    found = scan(value)
    assert [o.reference for o in found.references] == [SecretReference("a", "b")]
    assert found.malformed == ()
    assert substitute(value, found, lambda ref: f"<{ref.name}/{ref.key}>") == (
        "x {{not.ref}} <a/b> {{"
    )


def test_escape_before_extra_brace_keeps_the_reference_after_it():
    """``\\{{{{a.b}}`` is a literal ``{{`` followed by a reference."""
    value = r"\{{{{a.b}}"
    found = scan(value)
    assert refs(value) == [("a", "b", 3, 10)]
    assert substitute(value, found, lambda _: "V") == "{{V"


# -- malformed references ----------------------------------------------------------------------

EMPTY = "empty reference: expected {{secret_name.key}}"
NO_DOT = "no '.' between the secret name and the key"
NO_NAME = "missing secret name before '.'"
NO_KEY = "missing key after '.'"
UNCLOSED = "'{{' is not closed by '}}'"
BLANK = "whitespace inside the secret name or key"
BRACE = "'{' or '}' inside the secret name or key"


@pytest.mark.parametrize("prefix", ["", "x "])
@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("{{ }}", EMPTY),
        ("{{}}", EMPTY),
        ("{{name}}", NO_DOT),
        ("{{.key}}", NO_NAME),
        ("{{name.}}", NO_KEY),
        ("{{a.b", UNCLOSED),
        ("{{a.b}", UNCLOSED),
        ("{{", UNCLOSED),
        ("{{a b.c}}", BLANK),
        ("{{a.b c}}", BLANK),
        ("{{a . b}}", BLANK),
    ],
)
def test_malformed_reference_is_reported_with_its_reason(prefix, bad, reason):
    """Each malformed reference is reported once, with its text, span and reason."""
    value = prefix + bad
    found = scan(value)
    assert found.references == ()
    assert found.malformed == (Malformed(bad, len(prefix), len(value), reason),)
    assert not found.is_literal


@pytest.mark.parametrize("bad", ["{{a.{b}}", "{{a{.b}}", "{{a}.b}}"])
def test_brace_inside_embedded_name_or_key_is_malformed(bad):
    """Inside text a brace in the name or key is malformed (whole, ZenML reads it as text)."""
    assert parse_reference(bad) == SecretReference(*zenml_reading(bad))
    assert scan("x " + bad).malformed == (Malformed(bad, 2, 2 + len(bad), BRACE),)


def test_unclosed_opener_then_reference():
    """``{{a {{b.c}}`` is a malformed ``{{a `` (never closed) followed by a reference."""
    value = "{{a {{b.c}}"
    found = scan(value)
    assert found.malformed == (Malformed("{{a ", 0, 4, UNCLOSED),)
    assert refs(value) == [("b", "c", 4, 11)]


def test_malformed_and_good_references_are_all_reported_in_order():
    """One value can hold good and malformed references; all are reported."""
    value = "{{a.b}} {{nope}} {{c.d}} {{ }}"
    found = scan(value)
    assert refs(value) == [("a", "b", 0, 7), ("c", "d", 17, 24)]
    assert [(m.text, m.start, m.reason) for m in found.malformed] == [
        ("{{nope}}", 8, NO_DOT),
        ("{{ }}", 25, EMPTY),
    ]


# -- substitution ------------------------------------------------------------------------------


def test_substitute_replaces_each_reference_by_lookup_and_keeps_text():
    """Every occurrence is looked up; the text between them is kept as written."""
    value = "postgresql://{{db.user}}:{{db.password}}@host/{{db.user}}"
    secrets = {"user": "U", "password": "P"}
    looked_up: list[SecretReference] = []

    def lookup(ref: SecretReference) -> str:
        looked_up.append(ref)
        return secrets[ref.key]

    assert substitute(value, scan(value), lookup) == "postgresql://U:P@host/U"
    assert looked_up == [
        SecretReference("db", "user"),
        SecretReference("db", "password"),
        SecretReference("db", "user"),
    ]


def test_substitute_replaces_a_whole_value():
    """A whole-value reference, blanks and all, becomes the looked-up value."""
    assert substitute("{{ a.b }}", scan("{{ a.b }}"), lambda _: "V") == "V"


def test_substitute_leaves_literal_values_alone_without_lookups():
    """A value with no reference is returned as is and nothing is looked up."""

    def lookup(ref: SecretReference) -> str:
        raise AssertionError(ref)

    for value in ["plain", "a } b { c", "{a.b}"]:
        assert substitute(value, scan(value), lookup) == value


# -- properties --------------------------------------------------------------------------------


def spans_are_ordered(value: str) -> bool:
    found = scan(value)
    spans = sorted(
        [(o.start, o.end) for o in found.references] + [(m.start, m.end) for m in found.malformed]
    )
    ends = [0] + [end for _, end in spans]
    return all(ends[i] <= start < end for i, (start, end) in enumerate(spans)) and (
        ends[-1] <= len(value)
    )


@settings(deadline=None)
@given(ANY_TEXT)
@example("{{a {{b.c}}")
@example("\\{{{{a.b}}}}")
def test_scan_and_parse_never_raise_and_keep_spans_consistent(value):
    """On any text, scan and parse_reference return; every span is in order and in bounds."""
    found = scan(value)
    parse_reference(value)
    assert spans_are_ordered(value)
    assert all(value[m.start : m.end] == m.text for m in found.malformed)
    assert [o.start for o in found.references] == sorted(o.start for o in found.references)


@settings(deadline=None)
@given(BRACEY)
def test_scan_never_raises_on_brace_heavy_text(value):
    """Brace-, dot- and blank-heavy text scans with consistent spans."""
    assert spans_are_ordered(value)


@settings(deadline=None)
@given(NAME, KEY)
def test_format_then_parse_round_trips(name, key):
    """``format_reference`` output parses back to the same name and key, whole and scanned."""
    text = format_reference(name, key)
    ref = SecretReference(name, key)
    assert str(ref) == text
    assert parse_reference(text) == ref
    assert is_secret_reference(text)
    found = scan(text)
    assert found.whole
    assert found.references == (Occurrence(ref, 0, len(text)),)


@settings(deadline=None)
@given(PLAIN, NAME, KEY, PLAIN)
def test_embedded_reference_round_trips_with_its_span(before, name, key, after):
    """A formatted reference inside plain text is found at exactly its place."""
    text = format_reference(name, key)
    value = before + text + after
    found = scan(value)
    assert found.malformed == ()
    end = len(value) - len(after)
    assert found.references == (Occurrence(SecretReference(name, key), len(before), end),)


@settings(deadline=None, max_examples=300)
@given(CANDIDATES)
@example("{{.a.b}}")
@example("{{ {{a.b}}")
@example("{{a.b}}{{c.d}}")
def test_whole_value_reading_agrees_with_zenml(value):
    """``is_secret_reference`` is ZenML's pattern; the reading is ZenML's but for its bugs."""
    zenml_match = re.fullmatch(ZENML_PATTERN, value) is not None
    assert is_secret_reference(value) == zenml_match
    if not zenml_match:
        assert parse_reference(value) is None
        return
    name, key = zenml_reading(value)
    if "}}" in value[2:-2] or not name:
        assert parse_reference(value) is None
    else:
        assert parse_reference(value) == SecretReference(name, key)


@settings(deadline=None, max_examples=300)
@given(CANDIDATES)
def test_each_found_span_reparses_to_its_reference(value):
    """``value[start:end]`` of every occurrence is, alone, the same reference."""
    for occurrence in scan(value).references:
        alone = value[occurrence.start : occurrence.end]
        assert parse_reference(alone) == occurrence.reference
        assert scan(alone).references == (
            Occurrence(occurrence.reference, 0, occurrence.end - occurrence.start),
        )


# -- against the installed ZenML ---------------------------------------------------------------

_ZENML_READER = """
import json, sys
from zenml.utils.secret_utils import is_secret_reference, parse_secret_reference
out = []
for value in json.load(sys.stdin):
    if is_secret_reference(value):
        ref = parse_secret_reference(value)
        out.append([ref.name, ref.key])
    else:
        out.append(None)
json.dump(out, sys.stdout)
"""


def corpus(count: int) -> list[str]:
    """Deterministic brace-, dot- and blank-heavy strings, most of them wrapped in ``{{ }}``."""
    rng = random.Random(20250101)  # noqa: S311 -- reproducible test data, not a secret
    tokens = ["a", "bc", ".", ".", "a.b", " ", "\t", "\n", "\u00a0", "{", "}", "}}", "\\"]
    values = []
    for _ in range(count):
        middle = "".join(rng.choice(tokens) for _ in range(rng.randrange(7)))
        values.append(wrapped(middle) if rng.random() < 0.8 else middle)
    return values


@pytest.fixture(scope="module")
def zenml_readings():
    """A function that reads values with the real ZenML 0.98.0 (its own venv)."""
    if not ZENML_PYTHON.exists():
        pytest.skip(f"no ZenML venv at {ZENML_PYTHON}")

    def read(values: list[str]) -> list[tuple[str, str] | None]:
        done = subprocess.run(
            [str(ZENML_PYTHON), "-c", _ZENML_READER],
            input=json.dumps(values),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env={"ZENML_ANALYTICS_OPT_IN": "false", "PATH": "/usr/bin:/bin"},
        )
        return [None if r is None else (r[0], r[1]) for r in json.loads(done.stdout)]

    return read


def test_table_matches_installed_zenml(zenml_readings):
    """The grammar table above is what ZenML 0.98.0 itself answers."""
    values = [value for value, _ in ZENML_TABLE]
    assert zenml_readings(values) == [reading for _, reading in ZENML_TABLE]


def test_whole_value_reading_agrees_with_installed_zenml(zenml_readings):
    """On 3,000 generated values, stacksecrets reads as ZenML 0.98.0 does, but for its bugs."""
    values = corpus(3000)
    readings = zenml_readings(values)
    assert sum(reading is not None for reading in readings) > 300
    for value, reading in zip(values, readings, strict=True):
        assert is_secret_reference(value) == (reading is not None), value
        ours = parse_reference(value)
        if reading is None or "}}" in value[2:-2] or not reading[0]:
            assert ours is None, value
        else:
            assert ours == SecretReference(*reading), value
