"""Stacks from files: the native format, real `zenml stack export` files, folders, and every
kind of bad or hostile input, each error naming the file and, where known, the line."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
import yaml

from stacksecrets import Component, Stack, StackLoadError, _loaders, _yaml
from stacksecrets._loaders import load_stack_file, load_stacks, stack_from_dict

DATA = Path(__file__).parent / "data"
NATIVE = DATA / "native"
ZENML_EXPORT = DATA / "zenml_export"
DOC = Path(__file__).parent.parent / "docs" / "stack-format.md"

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
    """Run the test with each YAML parser the loader may use."""
    monkeypatch.setattr(_yaml, "YamlLoader", request.param)
    return request.param  # type: ignore[no-any-return]


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def load_error(path: Path) -> StackLoadError:
    with pytest.raises(StackLoadError) as caught:
        load_stack_file(path)
    return caught.value


def components(stack: Stack) -> dict[tuple[str, str], Component]:
    return {(c.type, c.name): c for c in stack.components}


# --- the native format -----------------------------------------------------------------------


def test_single_stack_file_gives_components_configuration_and_settings_as_written(yaml_loader):
    """A file holding one stack at the top level gives that stack, its components in order,
    references in configuration and settings exactly as written, flavor defaulting to ""."""
    (stack,) = load_stack_file(NATIVE / "prod.yaml")
    assert stack.name == "prod"
    tracker, orchestrator = stack.components
    assert (tracker.type, tracker.flavor, tracker.name) == (
        "experiment_tracker",
        "mlflow",
        "mlflow",
    )
    assert dict(tracker.configuration) == {
        "tracking_uri": "https://mlflow.example.com",
        "tracking_username": "{{mlflow_secret.username}}",
        "tracking_password": "{{ mlflow_secret.password }}",
    }
    assert dict(tracker.settings) == {"docker": {"environment": {"TOKEN": "{{ci.token}}"}}}
    assert (orchestrator.type, orchestrator.flavor, orchestrator.name) == (
        "orchestrator",
        "",
        "default",
    )
    assert dict(orchestrator.configuration) == {}
    assert dict(orchestrator.settings) == {}


def test_several_stacks_come_in_file_order_with_anchors_and_components_by_type(yaml_loader):
    """A `stacks:` list gives every stack in written order; an anchor under an `x-` key is
    shared through an alias; components grouped by type (one or a list) read like a list;
    non-string values keep their YAML types."""
    staging, dev = load_stack_file(NATIVE / "several.yaml")
    assert (staging.name, dev.name) == ("staging", "dev")
    (registry,) = staging.components
    assert dict(registry.settings) == {
        "docker": {"environment": {"REGISTRY_PASSWORD": "{{registry.password}}"}}
    }
    by_id = components(dev)
    assert list(by_id) == [("orchestrator", "default"), ("experiment_tracker", "mlflow")]
    assert dict(by_id["experiment_tracker", "mlflow"].configuration) == {
        "hosts": ["a.example.com", "{{hosts.backup}}"],
        "retries": 3,
        "verify": True,
    }


def test_json_file_reads_like_yaml():
    """A .json file in the native format (here with `stack:`) gives the same kind of stack."""
    (stack,) = load_stack_file(NATIVE / "ci.json")
    assert stack == Stack(
        name="ci",
        components=[
            Component(
                type="alerter",
                flavor="slack",
                name="slack",
                configuration={"slack_token": "{{slack.token}}", "slack_channel_id": "C0123"},
            )
        ],
    )


COMPONENT = {"type": "orchestrator", "flavor": "local", "name": "default"}
SAME_STACK_FORMS = {
    "top level": {"name": "s", "components": [COMPONENT]},
    "stack key": {"stack": {"name": "s", "components": [COMPONENT]}},
    "stacks list": {"stacks": [{"name": "s", "components": [COMPONENT]}]},
    "by type, one": {
        "name": "s",
        "components": {"orchestrator": {"flavor": "local", "name": "default"}},
    },
    "by type, list": {"name": "s", "components": {"orchestrator": [COMPONENT]}},
}


@pytest.mark.parametrize("form", SAME_STACK_FORMS.values(), ids=SAME_STACK_FORMS.keys())
@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_every_native_form_gives_the_same_stack(tmp_path, form, suffix):
    """Each way of writing one stack, as YAML or JSON, gives the same Stack."""
    text = json.dumps(form) if suffix == ".json" else yaml.safe_dump(form)
    (stack,) = load_stack_file(write(tmp_path, f"s{suffix}", text))
    assert stack == Stack(name="s", components=[Component("orchestrator", "local", "default")])


def test_empty_stacks_list_gives_no_stacks(tmp_path):
    """`stacks: []` is an explicit empty file, not an error."""
    assert load_stack_file(write(tmp_path, "none.yaml", "stacks: []\n")) == []


def test_file_with_utf8_byte_order_mark_loads(tmp_path):
    """A UTF-8 byte order mark (some Windows editors write one) is accepted."""
    path = write(tmp_path, "bom.json", b'\xef\xbb\xbf{"name": "s", "components": []}')
    assert load_stack_file(path) == [Stack(name="s")]


# --- folders and several sources -------------------------------------------------------------


def test_folder_gives_its_stack_files_sorted_by_name_not_nested_hidden_or_other():
    """A folder contributes its .json/.yaml/.yml files, sorted by name, in file order within
    each; files in sub-folders, hidden files and other suffixes are left out."""
    names = [stack.name for stack in load_stacks(NATIVE)]
    assert names == ["ci", "prod", "staging", "dev"]


def test_sources_come_in_the_order_given_and_a_file_named_twice_is_read_once():
    """Stacks follow the order of the sources; a file given directly and again through its
    folder is read once (so it is not a duplicate of itself)."""
    names = [stack.name for stack in load_stacks(NATIVE / "several.yaml", ZENML_EXPORT, NATIVE)]
    assert names == ["staging", "dev", "minimal", "mlstack", "single_mapping", "ci", "prod"]


def test_no_sources_give_no_stacks():
    """Nothing asked, nothing loaded."""
    assert load_stacks() == []


def test_same_stack_name_in_two_files_is_an_error_naming_both(tmp_path):
    """Two stacks with one name across files fail, naming both files and lines."""
    first = write(
        tmp_path,
        "a.yaml",
        "stacks:\n  - name: other\n    components: []\n  - name: prod\n    components: []\n",
    )
    second = write(tmp_path, "b.json", '{"name": "prod", "components": []}')
    with pytest.raises(StackLoadError) as caught:
        load_stacks(tmp_path)
    message = str(caught.value)
    assert message == f"{second}: stack 'prod' is defined twice: here and at {first}:4"
    assert (caught.value.source, caught.value.line) == (str(second), None)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "absent", "no such file or folder"),
        (
            lambda tmp: (tmp / "empty").mkdir() or tmp / "empty",
            "the folder holds no .yaml, .yml or .json files",
        ),
    ],
    ids=["missing source", "folder without stack files"],
)
def test_bad_source_is_an_error_naming_it(tmp_path, make, message):
    """A source that is missing, or a folder with nothing to load, is an error naming it."""
    source = make(tmp_path)
    with pytest.raises(StackLoadError) as caught:
        load_stacks(source)
    assert str(caught.value) == f"{source}: {message}"


# --- zenml stack export files ----------------------------------------------------------------


def test_real_zenml_export_gives_every_component_with_references_as_written():
    """A file written by `zenml stack export` (ZenML 0.98) gives the stack named by
    `stack_name`, every component of every type, and the configuration exactly as exported."""
    (stack,) = load_stack_file(ZENML_EXPORT / "mlstack.yaml")
    assert stack.name == "mlstack"
    by_id = components(stack)
    assert set(by_id) == {
        ("alerter", "slack_alerter"),
        ("artifact_store", "store"),
        ("container_registry", "reg"),
        ("experiment_tracker", "mlflow_tracker"),
        ("orchestrator", "default"),
    }
    registry = by_id["container_registry", "reg"]
    assert registry.flavor == "default"
    assert dict(registry.configuration) == {
        "authentication_secret": "{{aws.secret_key}}",
        "default_repository": "{{ aws.access_key }}",
        "uri": "localhost:5000",
    }
    tracker = by_id["experiment_tracker", "mlflow_tracker"]
    assert tracker.flavor == "mlflow"
    assert dict(tracker.configuration) == {
        "tracking_password": "{{ mlflow_secret.password }}",
        "tracking_uri": "https://mlflow.example.com",
        "tracking_username": "{{mlflow_secret.username}}",
    }
    assert by_id["alerter", "slack_alerter"].configuration["slack_token"] == "{{slack.token}}"
    assert dict(by_id["orchestrator", "default"].configuration) == {}


def test_real_zenml_export_of_a_stack_without_references():
    """The smallest real export (empty configurations) loads too."""
    (stack,) = load_stack_file(ZENML_EXPORT / "minimal.yaml")
    assert stack == Stack(
        name="minimal",
        components=[
            Component("artifact_store", "local", "default"),
            Component("orchestrator", "local", "default"),
        ],
        runtime="zenml",
    )


def test_zenml_export_with_one_mapping_per_type_reads_like_lists():
    """Components given as a single mapping per type (which `zenml stack import` accepts)
    give the same components as the exported lists."""
    (single,) = load_stack_file(ZENML_EXPORT / "single_mapping.yaml")
    (listed,) = load_stack_file(ZENML_EXPORT / "mlstack.yaml")
    expected = {k: v for k, v in components(listed).items() if k[0] != "experiment_tracker"}
    assert single.name == "single_mapping"
    assert components(single) == expected


def test_zenml_export_ignores_keys_of_later_versions(tmp_path):
    """An export is read leniently: unknown top-level and component keys are ignored, flavor
    and configuration may be missing, and `type` may be left out."""
    text = (
        "stack_name: s\nzenml_version: 9.9.9\nlabels: {a: b}\n"
        "components:\n  orchestrator:\n  - name: o\n    connector: c\n"
    )
    (stack,) = load_stack_file(write(tmp_path, "future.yaml", text))
    assert stack == Stack(
        name="s", components=[Component("orchestrator", "", "o")], runtime="zenml"
    )


@pytest.mark.parametrize(
    ("text", "detected_as"),
    [
        ("stack_name: s\ncomponents: {}\n", "zenml"),
        ("stack_name: s\nzenml_version: 0.98.0\ncomponents: {}\n", "zenml"),
        ("name: s\ncomponents: []\n", "native"),
        ("stacks: [{name: s, components: []}]\n", "native"),
    ],
)
def test_format_is_detected_from_the_top_level_keys(tmp_path, text, detected_as):
    """`stack_name` marks a ZenML export; `name`/`stack`/`stacks` the native format. Told
    apart by how a component with an unknown key is treated: ignored only in exports."""
    component = {"type": "orchestrator", "name": "o", "extra": 1}
    data = yaml.safe_load(text)
    if detected_as == "zenml":
        data["components"] = {"orchestrator": [component]}
    elif "stacks" in data:
        data["stacks"][0]["components"] = [component]
    else:
        data["components"] = [component]
    path = write(tmp_path, "s.yaml", yaml.safe_dump(data))
    if detected_as == "zenml":
        assert load_stack_file(path)[0].components == (Component("orchestrator", "", "o"),)
    else:
        assert "unknown key 'extra'" in str(load_error(path))


# --- stack_from_dict -------------------------------------------------------------------------


def test_stack_from_dict_reads_native_and_zenml_forms():
    """Python objects in any file form give the stack, tuples reading as lists."""
    native = stack_from_dict(
        {
            "name": "s",
            "components": ({"type": "t", "name": "n", "configuration": {"h": ("{{a.b}}",)}},),
        }
    )
    assert native == Stack("s", [Component("t", "", "n", configuration={"h": ["{{a.b}}"]})])
    exported = stack_from_dict(
        {"stack_name": "s", "components": {"t": {"name": "n", "flavor": "f", "configuration": {}}}}
    )
    assert exported == Stack("s", [Component("t", "f", "n")], runtime="zenml")


def test_stack_from_dict_copies_its_input():
    """Changing the input afterwards does not change the stack."""
    configuration = {"nested": {"k": "{{a.b}}"}}
    stack = stack_from_dict(
        {"name": "s", "components": [{"type": "t", "name": "n", "configuration": configuration}]}
    )
    configuration["nested"]["k"] = "changed"
    assert stack.components[0].configuration["nested"] == {"k": "{{a.b}}"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "<dict>: the top level must be a mapping, not a list"),
        ({"name": 1, "components": []}, "<dict>: name: must be a string, not a number"),
        (
            {"name": "s", "components": [{"type": "t", "name": "n", "configuration": {1: "x"}}]},
            "<dict>: components[0].configuration: keys must be strings, found a number",
        ),
        (
            {"stacks": [{"name": "a", "components": []}, {"name": "b", "components": []}]},
            "<dict>: expected exactly one stack, found 2; use load_stacks for several",
        ),
        (
            {"name": "s", "components": [{"type": "t"}]},
            "<dict>: components[0]: component has no 'name'",
        ),
    ],
    ids=["not a mapping", "name not a string", "key not a string", "two stacks", "no name"],
)
def test_stack_from_dict_validates_like_a_file(data, message):
    """Python objects get the same checks and messages as files, without line numbers."""
    with pytest.raises(StackLoadError) as caught:
        stack_from_dict(data)
    assert str(caught.value) == message
    assert caught.value.line is None


def test_stack_from_dict_names_the_given_source():
    """`source` names the object in error messages."""
    with pytest.raises(StackLoadError, match=r"^settings from the API: no stack found: expected"):
        stack_from_dict({}, source="settings from the API")


def test_stack_from_dict_refuses_a_self_containing_object_in_bounded_time():
    """A dict that contains itself is refused (too deep), not walked forever."""
    cyclic: dict[str, object] = {"type": "t", "name": "n"}
    cyclic["configuration"] = cyclic
    with pytest.raises(StackLoadError, match="nested deeper than 100 levels"):
        stack_from_dict({"name": "s", "components": [cyclic]})


# --- bad input: every error names the file and, where the parser knows it, the line ----------

STACK_HEAD = "name: s\ncomponents:\n"
BAD_YAML = {
    # id: (file content, line, message after "file:line: ")
    "top level a list": ("- name: s\n", 1, "the top level must be a mapping, not a list"),
    "top level a string": ("just text\n", 1, "the top level must be a mapping, not a string"),
    "no stack": (
        "title: x\n",
        1,
        (
            "no stack found: expected 'stacks' (a list), 'stack' (a mapping) or 'name' and "
            "'components' (see docs/stack-format.md), or 'stack_name' (a zenml stack export)"
        ),
    ),
    "stacks not a list": ("stacks: {name: s}\n", 1, "stacks: must be a list, not a mapping"),
    "stack not a mapping": (
        "stacks:\n  - s\n",
        2,
        "stacks[0]: a stack must be a mapping, not a string",
    ),
    "stack without name": ("stacks:\n  - components: []\n", 2, "stacks[0]: stack has no 'name'"),
    "stack name a number": (
        "stacks:\n  - name: 12\n    components: []\n",
        2,
        "stacks[0].name: must be a string, not a number",
    ),
    "stack name empty": ("name: ''\ncomponents: []\n", 1, "name: must not be empty"),
    "stack without components": ("\nname: s\n", 2, "top level: stack 's' has no 'components'"),
    "components a string": (
        STACK_HEAD.replace("components:\n", "components: all\n"),
        2,
        "components: must be a list of components or a mapping of type to components, not a string",
    ),
    "component not a mapping": (
        STACK_HEAD + "  - orchestrator\n",
        3,
        "components[0]: a component must be a mapping, not a string",
    ),
    "component without name": (
        STACK_HEAD + "  - {type: t, name: n}\n  - type: t\n    flavor: f\n",
        4,
        "components[1]: component has no 'name'",
    ),
    "component without type": (
        STACK_HEAD + "  - name: n\n",
        3,
        "components[0]: component has no 'type'",
    ),
    "component type a list": (
        STACK_HEAD + "  - name: n\n    type: [a]\n",
        4,
        "components[0].type: must be a string, not a list",
    ),
    "flavor a number": (
        STACK_HEAD + "  - {type: t, name: n, flavor: 1}\n",
        3,
        "components[0].flavor: must be a string, not a number",
    ),
    "configuration a list": (
        STACK_HEAD + "  - type: t\n    name: n\n    configuration: [a]\n",
        5,
        "components[0].configuration: must be a mapping, not a list",
    ),
    "settings a string": (
        STACK_HEAD + "  - type: t\n    name: n\n    settings: docker\n",
        5,
        "components[0].settings: must be a mapping, not a string",
    ),
    "unknown component key": (
        STACK_HEAD + "  - type: t\n    name: n\n    configuraton: {}\n",
        5,
        (
            "components[0]: unknown key 'configuraton' "
            "(expected configuration, flavor, name, settings, type)"
        ),
    ),
    "unknown stack key": (
        "stacks:\n  - name: s\n    components: []\n    labels: {}\n",
        4,
        "stacks[0]: unknown key 'labels' (expected components, name)",
    ),
    "type mismatch under its key": (
        "name: s\ncomponents:\n  orchestrator:\n    type: alerter\n    name: n\n",
        4,
        (
            "components.orchestrator: component type does not match the key 'orchestrator' "
            "it is listed under"
        ),
    ),
    "duplicate component": (
        STACK_HEAD + "  - {type: t, name: n}\n  - {type: u, name: n}\n  - {type: t, name: n}\n",
        5,
        "stack 's' has two t components named 'n' (the first at line 3)",
    ),
    "duplicate stack in a file": (
        "stacks:\n  - {name: s, components: []}\n  - {name: s, components: []}\n",
        3,
        "stack 's' is defined twice in this file (first at line 2)",
    ),
    "duplicate key": (
        "name: s\ncomponents: []\nname: t\n",
        3,
        "duplicate key 'name' (first at line 1)",
    ),
    "unquoted reference": (
        STACK_HEAD + "  - type: t\n    name: n\n    configuration:\n      password: {{aws.key}}\n",
        6,
        "a mapping cannot be a key; is a secret reference unquoted? Write '{{name.key}}' in quotes",
    ),
    "key read as boolean": (
        STACK_HEAD + "  - type: t\n    name: n\n    settings: {on: 1}\n",
        5,
        "key 'on' is read as a boolean, but keys must be strings; quote it",
    ),
    "list as key": ("? [a]\n: b\n", 1, "a list cannot be a key; keys must be strings"),
    "merge key": (
        "x-a: &a {k: v}\nname: s\ncomponents: []\n<<: *a\n",
        4,
        "YAML merge keys ('<<') are not supported; write the keys out",
    ),
    "undefined alias": (
        "name: s\ncomponents: *nothing\n",
        2,
        "an alias (*name) has no anchor (&name) before it",
    ),
    "alias inside its anchor": (
        "name: s\ncomponents: &c\n  - *c\n",
        3,
        "an alias (*name) refers to a value that contains it",
    ),
    "custom tag": (
        STACK_HEAD + "  - type: t\n    name: !secret n\n",
        4,
        "invalid YAML: could not determine a constructor for the tag '!secret'",
    ),
    "set tag": (
        "name: s\ncomponents: !!set {a}\n",
        2,
        "unsupported YAML tag 'tag:yaml.org,2002:set'",
    ),
    "python tag": (
        "name: !!python/name:os.system s\ncomponents: []\n",
        1,
        (
            "invalid YAML: could not determine a constructor for the tag "
            "'tag:yaml.org,2002:python/name:os.system'"
        ),
    ),
    "bad timestamp": (
        "name: s\ncomponents: []\nx-when: 2024-13-45\n",
        3,
        "invalid YAML: cannot read this timestamp",
    ),
    "two documents": (
        "name: s\ncomponents: []\n---\nname: t\n",
        3,
        "expected a single YAML document, found another ('---')",
    ),
    "zenml: components a list": (
        "stack_name: s\ncomponents: []\n",
        2,
        (
            "components: must be a mapping of component type to components in a zenml stack "
            "export, not a list"
        ),
    ),
    "zenml: no stack_name": (
        "zenml_version: 0.98.0\ncomponents: {}\n",
        1,
        "top level: zenml stack export has no 'stack_name'",
    ),
    "zenml: component without name": (
        "stack_name: s\ncomponents:\n  orchestrator:\n  - flavor: local\n",
        4,
        "components.orchestrator[0]: component has no 'name'",
    ),
    "zenml: configuration a string": (
        "stack_name: s\ncomponents:\n  orchestrator:\n    name: o\n    configuration: x\n",
        5,
        "components.orchestrator.configuration: must be a mapping, not a string",
    ),
}


@pytest.mark.parametrize(("content", "line", "message"), BAD_YAML.values(), ids=BAD_YAML.keys())
def test_bad_yaml_error_names_file_line_and_problem(tmp_path, yaml_loader, content, line, message):
    """Each kind of bad YAML raises StackLoadError reading `file:line: problem`."""
    path = write(tmp_path, "bad.yaml", content)
    error = load_error(path)
    assert (error.source, error.line) == (str(path), line)
    assert str(error) == f"{path}:{line}: {message}"


YAML_SYNTAX = {
    # id: (file content, line, column); the wording is the parser's own and differs between
    # libyaml and PyYAML's pure-Python parser.
    "unclosed flow list": ("name: s\ncomponents: [a, b\n", 3, 1),
    "bad indentation": ("name: s\n  components: []\n", 2, 13),
    "tab indentation": ("name: s\ncomponents:\n\t- a\n", 3, 1),
    "unclosed quote": ("name: 's\ncomponents: []\n", 3, 1),
}


@pytest.mark.parametrize(
    ("content", "line", "column"), YAML_SYNTAX.values(), ids=YAML_SYNTAX.keys()
)
def test_yaml_syntax_error_names_file_line_and_column(tmp_path, yaml_loader, content, line, column):
    """Invalid YAML raises StackLoadError reading `file:line: invalid YAML: ... (column N)`."""
    path = write(tmp_path, "bad.yaml", content)
    error = load_error(path)
    assert (error.source, error.line) == (str(path), line)
    assert str(error).startswith(f"{path}:{line}: invalid YAML: ")
    assert str(error).endswith(f" (column {column})")


BAD_JSON = {
    "syntax error": (
        '{"name": "s",\n "components": [}\n',
        2,
        "invalid JSON: Expecting value (column 17)",
    ),
    "trailing comma": (
        '{"name": "s",\n "components": [],\n}\n',
        3,
        "invalid JSON: Expecting property name enclosed in double quotes (column 1)",
    ),
    "top level a list": ("[]", None, "the top level must be a mapping, not a list"),
    "duplicate key": (
        '{"name": "s", "name": "t", "components": []}',
        None,
        "invalid JSON: duplicate key 'name'",
    ),
    "component without name": (
        '{"name": "s", "components": [{"type": "t"}]}',
        None,
        "components[0]: component has no 'name'",
    ),
    "configuration a number": (
        '{"name": "s", "components": [{"type": "t", "name": "n", "configuration": 3}]}',
        None,
        "components[0].configuration: must be a mapping, not a number",
    ),
    "nested too deeply": (
        '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}",
        None,
        "invalid JSON: nested too deeply",
    ),
}


@pytest.mark.parametrize(("content", "line", "message"), BAD_JSON.values(), ids=BAD_JSON.keys())
def test_bad_json_error_names_file_and_line_where_known(tmp_path, content, line, message):
    """Bad JSON names the file, the line for syntax errors, and the path for shape errors."""
    path = write(tmp_path, "bad.json", content)
    error = load_error(path)
    assert (error.source, error.line) == (str(path), line)
    where = str(path) if line is None else f"{path}:{line}"
    assert str(error) == f"{where}: {message}"


BAD_FILES = {
    "empty": (b"", None, "the file is empty"),
    "only whitespace": (b"\n  \n\t\n", None, "the file is empty"),
    "only comments": (b"# nothing here\n", None, "the file is empty (only comments)"),
    "not UTF-8": (b"name: s\ncomponents: []\nx-note: caf\xe9\n", 3, "the file is not UTF-8 text"),
    "control character": (b"name: s\ncomponents: [\x07]\n", 2, None),
}


@pytest.mark.parametrize(("content", "line", "message"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_unusable_file_content_is_an_error_naming_the_file(
    tmp_path, yaml_loader, content, line, message
):
    """Empty files, files that are not UTF-8 text, and control characters are refused."""
    path = write(tmp_path, "bad.yaml", content)
    error = load_error(path)
    assert (error.source, error.line) == (str(path), line)
    if message is None:  # the two parsers word this one differently
        assert re.fullmatch(
            rf"{re.escape(str(path))}:2: invalid YAML: "
            r"\w+ characters are not allowed: character #x0007",
            str(error),
        )
    else:
        where = str(path) if line is None else f"{path}:{line}"
        assert str(error) == f"{where}: {message}"


def test_missing_file_is_an_error_naming_it(tmp_path):
    """A file that does not exist is reported as such."""
    assert str(load_error(tmp_path / "gone.yaml")) == f"{tmp_path / 'gone.yaml'}: no such file"


def test_folder_given_as_file_is_an_error(tmp_path):
    """load_stack_file refuses a folder, by name."""
    assert str(load_error(tmp_path)) == f"{tmp_path}: is a folder, not a stack file"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_refused_without_blocking(tmp_path):
    """A named pipe is refused before it is opened (opening it would block forever)."""
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    assert str(load_error(fifo)) == f"{fifo}: is not a regular file"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_an_error_naming_it(tmp_path):
    """A file without read permission is reported, not raised as a bare OSError."""
    path = write(tmp_path, "secret.yaml", "name: s\ncomponents: []\n")
    path.chmod(0)
    assert str(load_error(path)) == f"{path}: cannot read the file: Permission denied"


def test_file_over_the_size_cap_is_refused_before_reading(tmp_path):
    """A file larger than MAX_FILE_BYTES is refused by size (sparse here: nothing is read)."""
    path = tmp_path / "huge.yaml"
    with path.open("wb") as file:
        file.truncate(_loaders.MAX_FILE_BYTES + 1)
    started = time.perf_counter()
    assert str(load_error(path)) == f"{path}: the file is larger than 16 MiB"
    assert time.perf_counter() - started < 1


def test_errors_do_not_echo_configuration_values(tmp_path, yaml_loader):
    """A syntax error on a line holding a value names the line, not the value."""
    value = "hunter2-not-for-logs"
    path = write(tmp_path, "bad.yaml", f"name: s\ncomponents:\n  - password: '{value}\n")
    error = load_error(path)
    assert error.line is not None
    assert (value in str(error)) is False


# --- hostile input: bounded time and memory --------------------------------------------------

LAUGHS = "".join(
    f"x-{n}: &{n} [{', '.join(['*' + prev] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
    for prev, n in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)


def test_billion_laughs_is_refused_quickly(tmp_path, yaml_loader):
    """Aliases that would expand to 9**9 values are refused in well under a second, naming
    the line where the count ran over."""
    path = write(tmp_path, "laughs.yaml", "name: s\ncomponents: []\n" + LAUGHS)
    started = time.perf_counter()
    error = load_error(path)
    assert time.perf_counter() - started < 2
    assert str(error).endswith(
        f"more than {_loaders.MAX_VALUES} keys and values (an alias counts as all it repeats)"
    )
    assert error.line == 8  # x-f: the first level past MAX_VALUES (100,000)


def test_aliases_within_the_cap_share_their_anchor(tmp_path, yaml_loader):
    """Aliases are allowed: each use reads as the anchored value."""
    text = (
        "x-c: &c {uri: '{{r.uri}}'}\nname: s\ncomponents:\n"
        "  - {type: a, name: n, configuration: *c}\n"
        "  - {type: b, name: n, configuration: *c}\n"
    )
    (stack,) = load_stack_file(write(tmp_path, "s.yaml", text))
    assert [dict(c.configuration) for c in stack.components] == [{"uri": "{{r.uri}}"}] * 2


def test_too_many_values_are_refused(tmp_path, yaml_loader, monkeypatch):
    """More values than MAX_VALUES (lowered here to keep the test fast) are refused at the
    line where the count runs over."""
    monkeypatch.setattr(_loaders, "MAX_VALUES", 50)
    text = "name: s\ncomponents: []\nx-many:\n" + "".join(f"  - {i}\n" for i in range(60))
    error = load_error(write(tmp_path, "many.yaml", text))
    assert (error.line, str(error).split(": ", 1)[1]) == (
        47,  # keys count: 7 before the list, then one per item
        "more than 50 keys and values (an alias counts as all it repeats)",
    )


@pytest.mark.parametrize("style", ["flow", "block"])
def test_deep_nesting_is_an_error_not_a_crash(tmp_path, yaml_loader, style):
    """Nesting far deeper than allowed ends in StackLoadError (never RecursionError)."""
    depth = 5000
    if style == "flow":
        text = "name: s\ncomponents: []\nx-deep: " + "[" * depth + "]" * depth + "\n"
    else:
        text = "name: s\ncomponents: []\nx-deep:\n" + "".join(
            " " * i + "- \n" for i in range(1, depth)
        )
    error = load_error(write(tmp_path, "deep.yaml", text))
    assert error.line is not None
    assert "nest" in str(error)


def test_nesting_up_to_the_limit_loads(tmp_path, yaml_loader):
    """Nesting within MAX_DEPTH is fine (the cap is not off by one)."""
    # The top level, components, the component and its configuration take four levels.
    inner = "[" * 96 + "'{{a.b}}'" + "]" * 96
    text = f"name: s\ncomponents:\n  - type: t\n    name: n\n    configuration: {{h: {inner}}}\n"
    with pytest.raises(StackLoadError, match="nested deeper than 100 levels"):
        load_stack_file(write(tmp_path, "too.yaml", text.replace("'{{a.b}}'", "['{{a.b}}']")))
    (stack,) = load_stack_file(write(tmp_path, "ok.yaml", text))
    value = stack.components[0].configuration["h"]
    for _ in range(95):
        value = value[0]
    assert value == ["{{a.b}}"]


# --- the documentation -----------------------------------------------------------------------


def doc_blocks(language: str) -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize(
    ("suffix", "block"),
    [(".yaml", b) for b in doc_blocks("yaml")] + [(".json", b) for b in doc_blocks("json")],
)
def test_every_example_in_the_format_doc_loads(tmp_path, suffix, block):
    """Each YAML and JSON example in docs/stack-format.md is a valid stack file."""
    stacks = load_stack_file(write(tmp_path, f"example{suffix}", block))
    assert stacks
    assert all(stack.components for stack in stacks)


def test_alias_of_a_deep_value_is_held_to_the_same_depth_limit(tmp_path, yaml_loader):
    """An anchored value that is fine where it is written is refused where an alias would put
    it past MAX_DEPTH, naming the alias's line."""
    deep = "[" * 97 + "]" * 97  # levels 2..98 under the top level: allowed there
    text = (
        f"x-deep: &deep {deep}\nname: s\ncomponents:\n"
        "  - type: t\n    name: n\n    configuration: {h: *deep}\n"
    )
    error = load_error(write(tmp_path, "alias.yaml", text))
    assert (error.line, str(error).endswith("nested deeper than 100 levels")) == (6, True)
