"""Values files keep values exactly as written; no YAML error (values files and stack files,
libyaml and the pure-Python parser) lets the file's text out: not in the message, the repr, the
full traceback, or any chained exception; and the command line shows none of it.

Every case plants ``PLANTED`` (and, in the values-file cases, a value written in the file) and
scans every rendering of the error for it.
"""

from __future__ import annotations

import json
import subprocess
import traceback
from pathlib import Path

import pytest
import yaml

from cli_runner import Cli
from stacksecrets import ConfigurationError, StackLoadError, _yaml
from stacksecrets._loaders import MAX_VALUES_FILE_BYTES, load_stack_file, load_values_file

PLANTED = "Hunter2planted"

LOADERS = [
    pytest.param(yaml.SafeLoader, id="pure-python"),
    pytest.param(
        getattr(yaml, "CSafeLoader", None),
        id="libyaml",
        marks=pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml"),
    ),
]


@pytest.fixture(params=LOADERS)
def yaml_loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type:
    monkeypatch.setattr(_yaml, "YamlLoader", request.param)
    return request.param  # type: ignore[no-any-return]


def run_cli(
    *args: str, stdin: str | bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """The command in this process (tests/cli_runner.py), its output as bytes."""
    ran = Cli().invoke(*args, env=env, stdin=stdin)
    return subprocess.CompletedProcess(
        list(args), ran.returncode, ran.stdout.encode(), ran.stderr.encode()
    )


def every_rendering(exc: BaseException) -> str:
    """str, repr and the full traceback of the error and of every exception chained to it,
    and the repr of every attribute of each (a mark's buffer, a decode error's object)."""
    parts = ["".join(traceback.format_exception(type(exc), exc, exc.__traceback__))]
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        parts += [str(item), repr(item), repr(vars(item)) if hasattr(item, "__dict__") else ""]
        todo += [item.__cause__, item.__context__]
    return "\n".join(parts)


# --- values are kept exactly as written ----------------------------------------------------

EXACT = [
    "0123",
    "1_000",
    "12:30:00",
    "3.10",
    "0x1F",
    "yes",
    "No",
    "on",
    "~",
    "null",
    "1e3",
    "0o17",
    "+1",
    ".inf",
    "2024-01-02",
    "true",
    "-0",
]


def test_every_scalar_in_a_values_file_is_its_source_text(tmp_path: Path, yaml_loader: type):
    """YAML would read these as numbers, booleans, sexagesimals, dates or null; a values file
    keeps each as the text written (plain, single- and double-quoted alike)."""
    lines = [f"k{i}: {text}" for i, text in enumerate(EXACT)]
    lines += [f"q{i}: '{text}'" for i, text in enumerate(EXACT)]
    path = tmp_path / "values.yaml"
    path.write_text("\n".join(lines) + "\nempty:\n")
    values = load_values_file(str(path))
    for i, text in enumerate(EXACT):
        assert values[f"k{i}"] == text
        assert values[f"q{i}"] == text
    assert values["empty"] == ""


def test_json_values_files_keep_number_text(tmp_path: Path):
    path = tmp_path / "values.json"
    path.write_text('{"pin": 0.10, "big": 12345678901234567890123, "flag": true, "s": "x"}')
    assert load_values_file(str(path)) == {
        "pin": "0.10",
        "big": "12345678901234567890123",
        "flag": "true",
        "s": "x",
    }


def test_the_cli_stores_values_exactly_as_written(tmp_path: Path):
    """Through the real command, from stdin: what `secret get --show-values` prints back."""
    store = tmp_path / "s.json"
    env = {"STACKSECRETS_STORE": store.as_uri()}
    text = "\n".join(f"k{i}: {value}" for i, value in enumerate(EXACT))
    created = run_cli("secret", "create", "exact", "--values-file", "-", stdin=text, env=env)
    assert created.returncode == 0, created.stderr
    shown = run_cli("secret", "get", "exact", "--show-values", "--json", env=env)
    assert json.loads(shown.stdout)["values"] == {f"k{i}": v for i, v in enumerate(EXACT)}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("password: [a, b]\n", "the value of 'password' is a list"),
        ("password: {a: b}\n", "the value of 'password' is a mapping"),
        ("- a\n- b\n", "expected a mapping"),
        ("a: 1\na: 2\n", "the key 'a' appears twice"),
        ("'': x\n", "a key cannot be empty"),
        ("a: 1\n---\nb: 2\n", "a single YAML document"),
        ("", "empty"),
    ],
)
def test_values_file_shapes_that_are_not_one_flat_mapping_are_errors(
    tmp_path: Path, yaml_loader: type, content: str, expected: str
):
    path = tmp_path / "v.yaml"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=expected) as caught:
        load_values_file(str(path))
    assert str(path) in str(caught.value)


# --- tags and syntax errors leak nothing ---------------------------------------------------

TAGS = [
    "!!bool",
    "!!int",
    "!!float",
    "!!timestamp",
    "!!null",
    "!!binary",
    "!!map",
    "!!seq",
    "!!python/name:os.system",
    "!custom",
    "!<tag:example.com,2000:x>",
]

SYNTAX = {
    "unterminated single quote": f"a: 'x{PLANTED}\n",
    "unterminated double quote": f'a: "x{PLANTED}\n',
    "bad escape": f'a: "{PLANTED}\\q"\n',
    "tab indentation": f"a:\n\t{PLANTED}: 1\n",
    "mapping in plain scalar": f"a: {PLANTED}: b: c\n",
    "bad indentation": f"a:\n  b: {PLANTED}\n c: d\n",
    "unclosed flow": f"a: [{PLANTED}, \n",
    "stray flow end": f"[{PLANTED}]]\n",
    "undefined tag handle": f"a: !h!{PLANTED} x\n",
    "bad anchor": f"a: &{PLANTED}! x\n",
    "undefined alias": f"a: *{PLANTED}\n",
    "control character": f"a: {PLANTED}\x07\n",
    "bad directive": f"%YAML 9.9 {PLANTED}\n---\na: b\n",
    "block scalar indicator": f"a: |0{PLANTED}\n  x\n",
    "deep nesting": "a: " + "[" * 20000 + PLANTED,
    "unexpected document end": f"a: b\n...\n{PLANTED}: [\n",
    "key with no value in flow": f"{{a: {PLANTED}, : }}x\n",
}


def _assert_clean(exc: BaseException, planted: str = PLANTED) -> None:
    text = every_rendering(exc)
    assert planted not in text
    assert planted.lower() not in text


@pytest.mark.parametrize("tag", TAGS)
def test_a_tagged_value_in_a_values_file_is_refused_without_the_value(
    tmp_path: Path, yaml_loader: type, tag: str
):
    path = tmp_path / "v.yaml"
    path.write_text(f"user: x\npassword: {tag} {PLANTED}\n")
    with pytest.raises(ConfigurationError) as caught:
        load_values_file(str(path))
    assert f"{path}, line 2" in str(caught.value)
    _assert_clean(caught.value)


#: Tags that cannot read "Hunter2planted" (`!!null`, `!!map`, `!!seq` read it as null or empty).
FAILING_TAGS = [tag for tag in TAGS if tag not in {"!!null", "!!map", "!!seq"}]


@pytest.mark.parametrize("tag", FAILING_TAGS)
def test_a_tagged_value_in_a_stack_file_is_an_error_without_the_value(
    tmp_path: Path, yaml_loader: type, tag: str
):
    """Tags that read (`!!int Hunter2` -> ValueError, `!!bool Hunter2` -> KeyError) or refuse:
    either way the error names file and line, and nothing chained to it holds the value."""
    path = tmp_path / "stack.yaml"
    path.write_text(
        "name: s\ncomponents:\n  - type: t\n    name: n\n    configuration:\n"
        f"      password: {tag} {PLANTED}\n"
    )
    with pytest.raises(StackLoadError) as caught:
        load_stack_file(path)
    assert caught.value.line == 6
    _assert_clean(caught.value)


@pytest.mark.parametrize("case", sorted(SYNTAX))
def test_syntax_errors_name_the_place_and_hold_no_text(
    tmp_path: Path, yaml_loader: type, case: str
):
    content = SYNTAX[case]
    stack = tmp_path / "stack.yaml"
    stack.write_text(content)
    with pytest.raises(StackLoadError) as caught:
        load_stack_file(stack)
    assert caught.value.line is not None or "nested" in str(caught.value)
    _assert_clean(caught.value)
    values = tmp_path / "values.yaml"
    values.write_text(content)
    with pytest.raises(ConfigurationError) as caught_values:
        load_values_file(str(values))
    assert str(values) in str(caught_values.value)
    _assert_clean(caught_values.value)


def test_a_stack_file_that_is_not_utf8_chains_nothing_holding_its_bytes(tmp_path: Path):
    path = tmp_path / "stack.yaml"
    path.write_bytes(f"name: s\npassword: {PLANTED}\n".encode() + b"\xff\xfe\n")
    with pytest.raises(StackLoadError) as caught:
        load_stack_file(path)
    assert caught.value.line == 3
    _assert_clean(caught.value)


def test_a_bad_json_stack_file_chains_nothing_holding_its_text(tmp_path: Path):
    path = tmp_path / "stack.json"
    path.write_text(f'{{"name": "s", "password": "{PLANTED}", }}')
    with pytest.raises(StackLoadError) as caught:
        load_stack_file(path)
    _assert_clean(caught.value)


@pytest.mark.parametrize(
    "content",
    [
        f"password: !!bool {PLANTED}\n",
        f"password: !!int {PLANTED}\n",
        f"password: !!timestamp {PLANTED}\n",
        f"password: 'x{PLANTED}\n",
        f"a:\n\t{PLANTED}: 1\n",
    ],
)
def test_the_cli_shows_one_clean_line_for_a_bad_values_file(tmp_path: Path, content: str):
    """A real process reading the values file from stdin: exit 2, one line, no value."""
    env = {"STACKSECRETS_STORE": (tmp_path / "s.json").as_uri()}
    result = run_cli("secret", "create", "db", "--values-file", "-", stdin=content, env=env)
    assert result.returncode == 2
    err = result.stderr.decode()
    assert err.startswith("stacksecrets: error: values in stdin")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert PLANTED.lower() not in (err + result.stdout.decode()).lower()


@pytest.mark.parametrize("tag", ["!!bool", "!!int", "!!timestamp"])
def test_the_cli_shows_one_clean_line_for_a_tagged_stack_value(tmp_path: Path, tag: str):
    stack = tmp_path / "stack.yaml"
    stack.write_text(f"name: s\ncomponents:\n  - type: t\n    name: n\n    x: {tag} {PLANTED}\n")
    store = tmp_path / "s.json"
    store.touch()
    result = run_cli("-vv", "validate", str(stack), env={"STACKSECRETS_STORE": store.as_uri()})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr.decode()
    assert PLANTED.lower() not in (result.stderr + result.stdout).decode().lower()


# --- caps ----------------------------------------------------------------------------------


def test_a_values_file_nested_20000_deep_is_one_clean_error():
    result = run_cli("secret", "create", "db", "--values-file", "-", stdin="a: " + "[" * 20000)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr.decode()
    assert "RecursionError" not in result.stderr.decode()


def test_a_values_file_from_dev_zero_stops_at_the_size_cap():
    """`--values-file /dev/zero` would read forever: it stops after the documented cap."""
    result = run_cli("secret", "create", "db", "--values-file", "/dev/zero")
    assert result.returncode == 2
    err = result.stderr.decode()
    assert f"larger than {MAX_VALUES_FILE_BYTES // 1024} KiB" in err
    assert "/dev/zero" in err
