"""Secrets and resolved values: usable by code, never shown by repr, str or format."""

from __future__ import annotations

import pickle

import attrs
import pytest

from stacksecrets import Secret, SecretValue

# Distinctive enough that finding it anywhere means it leaked.
VALUE = "zq7-SENTINEL-f3a9c1-value"


def renderings(obj: object) -> list[str]:
    return [repr(obj), str(obj), format(obj), f"{obj}", f"{obj!r}", f"{[obj]}", f"{ {'k': obj} }"]


def test_secret_repr_and_str_never_show_values():
    """repr, str and format of a Secret name the secret and keys but hold no value."""
    secret = Secret("db", {"password": VALUE, "user": "admin-" + VALUE})
    leaked = [VALUE in text for text in renderings(secret)]
    assert not any(leaked)
    assert repr(secret) == "Secret(name='db', keys=['password', 'user'])"
    assert str(secret) == repr(secret)


def test_secret_values_gives_the_values_as_a_plain_dict():
    """``secret_values`` is ZenML's step API: a dict of every readable key and value."""
    secret = Secret("db", {"password": VALUE})
    values = secret.secret_values
    assert type(values) is dict
    assert values == {"password": VALUE}


def test_secret_values_is_a_copy():
    """Changing the dict ``secret_values`` returns does not change the secret."""
    secret = Secret("db", {"password": VALUE})
    values = secret.secret_values
    values["password"] = "changed"
    values["extra"] = "x"
    assert secret.secret_values == {"password": VALUE}


def test_secret_copies_its_input():
    """Changing the caller's dict after construction does not change the secret."""
    given = {"password": VALUE}
    secret = Secret("db", given)
    given["password"] = "changed"
    assert secret.secret_values == {"password": VALUE}


def test_secret_is_frozen():
    """A secret's name and values cannot be changed in place."""
    secret = Secret("db", {"password": VALUE})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        secret.name = "other"
    with pytest.raises(TypeError):
        secret.values["password"] = "changed"


def test_unreadable_keys_exist_but_have_no_value():
    """Keys the caller may not read count as keys, and are absent from ``secret_values``."""
    secret = Secret("db", {"user": "admin"}, unreadable_keys={"password"})
    assert secret.keys == {"user", "password"}
    assert secret.unreadable_keys == frozenset({"password"})
    assert secret.secret_values == {"user": "admin"}
    assert repr(secret) == "Secret(name='db', keys=['password', 'user'])"


def test_secret_without_unreadable_keys_has_an_empty_set():
    """By default every key is readable."""
    assert Secret("db", {}).unreadable_keys == frozenset()
    assert Secret("db", {}).keys == frozenset()


def test_secret_value_is_masked_everywhere():
    """A resolved value shows only asterisks in repr, str and every format spec."""
    value = SecretValue(VALUE)
    texts = [*renderings(value), f"{value:>40}", f"{value:s}"]
    leaked = [VALUE in text for text in texts]
    assert not any(leaked)
    assert str(value) == "**********"
    assert repr(value) == "SecretValue('**********')"


def test_secret_value_gives_the_real_value_on_request():
    """``get_secret_value()`` returns the string for code that needs it."""
    assert SecretValue(VALUE).get_secret_value() == VALUE


def test_secret_values_compare_by_value():
    """Two wrappers of one string are equal and hash alike; other strings differ."""
    assert SecretValue(VALUE) == SecretValue(VALUE)
    assert hash(SecretValue(VALUE)) == hash(SecretValue(VALUE))
    assert SecretValue(VALUE) != SecretValue("other")
    assert SecretValue(VALUE) != VALUE


def test_secret_value_refuses_pickling():
    """Pickling would write the value out in the clear, so it is refused."""
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(SecretValue(VALUE))
