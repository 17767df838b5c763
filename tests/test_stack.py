"""Stacks and components: the walk over string leaves with attribute paths, and immutability."""

from __future__ import annotations

import attrs
import pytest
import yaml

from stacksecrets import Component, Stack, Usage


def leaves(component: Component) -> list[tuple[str, str]]:
    return list(component.string_leaves())


def test_leaves_carry_attribute_paths_in_configuration_then_settings():
    """Top-level, nested and list leaves get dotted and indexed paths, in document order."""
    component = Component(
        "experiment_tracker",
        "mlflow",
        "tracker",
        configuration={
            "tracking_password": "{{mlflow.password}}",
            "hosts": ["a", "b", "{{hosts.third}}"],
        },
        settings={"docker": {"environment": {"TOKEN": "{{ci.token}}"}}},
    )
    assert leaves(component) == [
        ("configuration.tracking_password", "{{mlflow.password}}"),
        ("configuration.hosts[0]", "a"),
        ("configuration.hosts[1]", "b"),
        ("configuration.hosts[2]", "{{hosts.third}}"),
        ("settings.docker.environment.TOKEN", "{{ci.token}}"),
    ]


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("a.b", "configuration['a.b']"),
        ("with space", "configuration['with space']"),
        ("1st", "configuration['1st']"),
        ("", "configuration['']"),
        ("it's", 'configuration["it\'s"]'),
        (3, "configuration['3']"),
        ("snake_case", "configuration.snake_case"),
        ("kebab-case", "configuration.kebab-case"),
        ("_private", "configuration._private"),
    ],
)
def test_keys_that_are_not_plain_names_are_quoted(key, path):
    """A key that is not a plain name is written as ``['key']`` so the path stays readable."""
    assert leaves(Component("t", "f", "n", {key: "v"})) == [(path, "v")]


def test_non_string_values_are_skipped():
    """Numbers, booleans, None, bytes and sets cannot hold references and are not leaves."""
    component = Component(
        "t",
        "f",
        "n",
        {"port": 5000, "ratio": 0.5, "on": True, "none": None, "raw": b"{{a.b}}", "s": {"x"}},
        {"nested": [1, None, {"deep": False}]},
    )
    assert leaves(component) == []


def test_tuples_are_walked_like_lists():
    """Tuples, as Python callers may write them, are indexed like lists."""
    component = Component("t", "f", "n", {"pair": ("{{a.b}}", "x")})
    assert leaves(component) == [
        ("configuration.pair[0]", "{{a.b}}"),
        ("configuration.pair[1]", "x"),
    ]


def test_deep_nesting_does_not_hit_the_recursion_limit():
    """A value nested 10,000 levels deep, in mappings and lists, is still found."""
    depth = 10_000
    value: object = "{{deep.key}}"
    for level in range(depth):
        value = {"n": value} if level % 2 else [value]
    found = leaves(Component("t", "f", "n", {"root": value}))
    assert len(found) == 1
    path, leaf = found[0]
    assert leaf == "{{deep.key}}"
    assert path == "configuration.root" + ".n[0]" * (depth // 2)


def test_container_holding_itself_is_walked_once():
    """A mapping that contains itself (a cycle) does not loop forever."""
    config: dict[str, object] = {"x": "{{a.b}}"}
    config["again"] = config
    assert leaves(Component("t", "f", "n", {"outer": config})) == [
        ("configuration.outer.x", "{{a.b}}")
    ]


def test_recursive_yaml_alias_is_walked_once():
    """A YAML anchor that refers to itself builds a cyclic list; its leaves are found once."""
    hosts = yaml.safe_load('&hosts ["{{a.b}}", *hosts]')
    assert hosts[1] is hosts
    assert leaves(Component("t", "f", "n", {"hosts": hosts})) == [
        ("configuration.hosts[0]", "{{a.b}}")
    ]


def test_shared_values_are_found_at_every_place():
    """One object used in two places (a YAML alias) yields its leaves at both paths."""
    shared = {"password": "{{db.password}}"}
    assert leaves(Component("t", "f", "n", {"primary": shared, "replica": shared})) == [
        ("configuration.primary.password", "{{db.password}}"),
        ("configuration.replica.password", "{{db.password}}"),
    ]


def test_component_is_frozen():
    """Fields cannot be reassigned and the configuration mappings refuse writes."""
    component = Component("t", "f", "n", {"k": "v"}, {"s": "v"})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        component.name = "other"
    with pytest.raises(TypeError):
        component.configuration["k"] = "changed"
    with pytest.raises(TypeError):
        component.settings["new"] = "v"
    assert component.configuration == {"k": "v"}


def test_component_copies_its_input_mapping():
    """Changing the caller's dict afterwards does not change the component."""
    config = {"k": "v"}
    component = Component("t", "f", "n", config)
    config["k"] = "changed"
    config["added"] = "x"
    assert dict(component.configuration) == {"k": "v"}


def test_stack_is_frozen():
    """A stack's name and components cannot be changed."""
    stack = Stack("prod", [Component("orchestrator", "local", "default")])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stack.name = "other"
    assert isinstance(stack.components, tuple)


def test_duplicate_component_type_and_name_is_refused():
    """Two components of one type with one name make an invalid stack; the error names them."""
    with pytest.raises(ValueError, match=r"stack 'prod' has two orchestrator components named 'x'"):
        Stack(
            "prod",
            [Component("orchestrator", "local", "x"), Component("orchestrator", "kubernetes", "x")],
        )


def test_same_name_in_different_types_is_allowed():
    """A name only needs to be unique within its component type."""
    stack = Stack(
        "prod", [Component("orchestrator", "local", "x"), Component("deployer", "d", "x")]
    )
    assert [c.type for c in stack.components] == ["orchestrator", "deployer"]


def test_usage_reads_as_a_place_and_as_json():
    """A usage names stack, component and attribute, in text and as a dict."""
    usage = Usage("prod", "orchestrator", "k8s", "configuration.token")
    assert str(usage) == "stack 'prod', orchestrator 'k8s', configuration.token"
    assert usage.to_dict() == {
        "stack": "prod",
        "component_type": "orchestrator",
        "component_name": "k8s",
        "attribute": "configuration.token",
        "source": "stack",
    }
