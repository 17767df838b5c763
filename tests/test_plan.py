"""Collecting references: every secret name, its keys, and every place each one is used."""

from __future__ import annotations

from stacksecrets import Component, Stack, Usage
from stacksecrets.references import InvalidUse, collect


def tracker(name: str = "mlflow", **configuration: object) -> Component:
    return Component("experiment_tracker", "mlflow", name, configuration)


def test_references_are_grouped_by_name_then_key_with_every_usage():
    """Each secret name maps to its keys, and each key to every place that uses it."""
    stack = Stack(
        "prod",
        [
            tracker(user="{{aws.access_key}}", password="{{aws.secret_key}}"),
            Component(
                "orchestrator",
                "kubernetes",
                "k8s",
                {"token": "{{aws.access_key}}"},
                {"docker": {"environment": {"DB": "{{db.url}}"}}},
            ),
        ],
    )
    refs = collect([stack])
    assert refs.names == ("aws", "db")
    assert {name: list(keys) for name, keys in refs.secrets.items()} == {
        "aws": ["access_key", "secret_key"],
        "db": ["url"],
    }
    assert refs.secrets["aws"]["access_key"] == (
        Usage("prod", "experiment_tracker", "mlflow", "configuration.user"),
        Usage("prod", "orchestrator", "k8s", "configuration.token"),
    )
    assert refs.secrets["aws"]["secret_key"] == (
        Usage("prod", "experiment_tracker", "mlflow", "configuration.password"),
    )
    assert refs.secrets["db"]["url"] == (
        Usage("prod", "orchestrator", "k8s", "settings.docker.environment.DB"),
    )
    assert refs.invalid == ()
    assert refs.count == 4
    assert refs.stacks == ("prod",)


def test_a_secret_used_by_several_stacks_is_listed_once_with_all_usages():
    """Stacks that share a secret give one entry for it, holding the usages of every stack."""
    stacks = [Stack(name, [tracker(password="{{shared.password}}")]) for name in ("a", "b", "c")]
    refs = collect(stacks)
    assert refs.names == ("shared",)
    assert [usage.stack for usage in refs.secrets["shared"]["password"]] == ["a", "b", "c"]
    assert refs.count == 3
    assert refs.stacks == ("a", "b", "c")


def test_repeated_reference_counts_each_occurrence_but_one_usage_per_place():
    """``count`` counts every occurrence; a place that repeats a reference is one usage."""
    refs = collect([Stack("s", [tracker(uri="{{a.b}}-{{a.b}}", other="{{a.b}}")])])
    assert refs.count == 3
    assert [usage.attribute for usage in refs.secrets["a"]["b"]] == [
        "configuration.uri",
        "configuration.other",
    ]


def test_embedded_references_are_collected_and_counted():
    """References inside a longer string each count and each get the string's usage."""
    refs = collect([Stack("s", [tracker(uri="postgresql://{{db.user}}:{{db.password}}@host/x")])])
    assert refs.count == 2
    assert list(refs.secrets["db"]) == ["password", "user"]
    usage = Usage("s", "experiment_tracker", "mlflow", "configuration.uri")
    assert refs.secrets["db"]["password"] == (usage,)
    assert refs.secrets["db"]["user"] == (usage,)


def test_invalid_references_are_kept_with_their_usage_and_reason():
    """Malformed references are listed with where they are written and why they are wrong."""
    refs = collect([Stack("s", [tracker(a="{{nope}}", b="ok {{x.y}} and {{ }}")])])
    assert refs.invalid == (
        InvalidUse(
            Usage("s", "experiment_tracker", "mlflow", "configuration.a"),
            "{{nope}}",
            "no '.' between the secret name and the key",
        ),
        InvalidUse(
            Usage("s", "experiment_tracker", "mlflow", "configuration.b"),
            "{{ }}",
            "empty reference: expected {{secret_name.key}}",
        ),
    )
    assert refs.names == ("x",)
    assert refs.count == 1


def test_escaped_and_literal_values_are_not_references():
    """Escaped openers and plain values give no reference and nothing invalid."""
    refs = collect([Stack("s", [tracker(a=r"\{{not.ref}}", b="plain", c="{single}")])])
    assert refs.secrets == {}
    assert refs.invalid == ()
    assert refs.count == 0


def test_names_keys_and_invalid_uses_are_sorted_whatever_the_input_order():
    """Names, keys and invalid uses come out in one order however components are ordered."""
    components = [
        tracker("t1", x="{{zeta.k}}", bad="{{zeta}}"),
        tracker("t2", y="{{alpha.z}}", z="{{alpha.a}}", bad="{{alpha}}"),
    ]
    forward = collect([Stack("s", components)])
    backward = collect([Stack("s", components[::-1])])
    for refs in (forward, backward):
        assert refs.names == ("alpha", "zeta")
        assert list(refs.secrets["alpha"]) == ["a", "z"]
        assert [(use.usage.component_name, use.text) for use in refs.invalid] == [
            ("t1", "{{zeta}}"),
            ("t2", "{{alpha}}"),
        ]


def test_collecting_twice_gives_equal_results():
    """Collection is deterministic: the same stacks give equal results, order included."""
    stacks = [
        Stack("b", [tracker(p="{{s.k}}", q="{{t.k}} {{s.j}}")]),
        Stack("a", [tracker(p="{{s.k}}", r="{{oops}}")]),
    ]
    first, second = collect(stacks), collect(stacks)
    assert first == second
    assert [list(keys.items()) for keys in first.secrets.values()] == [
        list(keys.items()) for keys in second.secrets.values()
    ]


def test_usages_of_lists_every_place_using_any_key_once():
    """``usages_of`` gives the places using any key of a secret, each once."""
    refs = collect([Stack("s", [tracker(a="{{db.user}}:{{db.password}}", b="{{db.user}}")])])
    usages = refs.usages_of("db")
    assert sorted(usage.attribute for usage in usages) == ["configuration.a", "configuration.b"]
    assert refs.usages_of("unknown") == ()


def test_deeply_nested_reference_is_collected():
    """A reference 10,000 levels deep is collected like any other."""
    value: object = "{{deep.key}}"
    for _ in range(10_000):
        value = {"n": value}
    refs = collect([Stack("s", [Component("t", "f", "n", {"root": value})])])
    assert refs.names == ("deep",)
    assert refs.count == 1
