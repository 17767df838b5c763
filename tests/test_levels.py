"""Validation levels: their names, and where the level in force is read from."""

from __future__ import annotations

import pytest

from stacksecrets import ConfigurationError, StackSecretsError, ValidationLevel

OURS = "STACKSECRETS_VALIDATION_LEVEL"
ZENMLS = "ZENML_SECRET_VALIDATION_LEVEL"


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("NONE", ValidationLevel.NONE),
        ("none", ValidationLevel.NONE),
        ("secret_exists", ValidationLevel.SECRET_EXISTS),
        ("Secret_And_Key_Exists", ValidationLevel.SECRET_AND_KEY_EXISTS),
        ("  SECRET_EXISTS\n", ValidationLevel.SECRET_EXISTS),
    ],
)
def test_parse_ignores_case_and_surrounding_blanks(text, level):
    """Level names are read case-insensitively, blanks around them ignored."""
    assert ValidationLevel.parse(text) is level


def test_levels_have_zenmls_names_and_read_as_them():
    """The three levels carry ZenML's names, and str() of a level is its name."""
    assert [str(level) for level in ValidationLevel] == [
        "NONE",
        "SECRET_EXISTS",
        "SECRET_AND_KEY_EXISTS",
    ]
    assert ValidationLevel.SECRET_EXISTS == "SECRET_EXISTS"


def test_invalid_level_error_lists_the_valid_names():
    """A bad name raises ConfigurationError (a ValueError, like ZenML) listing every level."""
    with pytest.raises(ConfigurationError) as caught:
        ValidationLevel.parse("bogus")
    error = caught.value
    assert isinstance(error, ValueError)
    assert isinstance(error, StackSecretsError)
    message = str(error)
    assert "'bogus'" in message
    for level in ValidationLevel:
        assert level.value in message


def test_from_env_defaults_to_secret_and_key_exists():
    """With neither variable set the level is SECRET_AND_KEY_EXISTS, ZenML's default."""
    assert ValidationLevel.from_env({}) is ValidationLevel.SECRET_AND_KEY_EXISTS


def test_from_env_reads_zenmls_variable():
    """ZENML_SECRET_VALIDATION_LEVEL is honoured, so existing ZenML setups keep their level."""
    assert ValidationLevel.from_env({ZENMLS: "none"}) is ValidationLevel.NONE


def test_our_variable_wins_over_zenmls():
    """STACKSECRETS_VALIDATION_LEVEL takes precedence; ZenML's is then not even parsed."""
    env = {OURS: "secret_exists", ZENMLS: "this is not a level"}
    assert ValidationLevel.from_env(env) is ValidationLevel.SECRET_EXISTS


def test_blank_variable_counts_as_unset():
    """An empty or blank STACKSECRETS_VALIDATION_LEVEL falls through to ZenML's variable."""
    assert ValidationLevel.from_env({OURS: "  ", ZENMLS: "NONE"}) is ValidationLevel.NONE
    assert ValidationLevel.from_env({OURS: ""}) is ValidationLevel.SECRET_AND_KEY_EXISTS


def test_invalid_variable_error_names_the_variable():
    """A bad value in the environment is an error that says which variable holds it."""
    with pytest.raises(ConfigurationError, match=ZENMLS):
        ValidationLevel.from_env({ZENMLS: "bogus"})


def test_from_env_reads_the_process_environment(monkeypatch):
    """Without an explicit mapping the real process environment is read."""
    monkeypatch.delenv(OURS, raising=False)
    monkeypatch.setenv(ZENMLS, "SECRET_EXISTS")
    assert ValidationLevel.from_env() is ValidationLevel.SECRET_EXISTS
    monkeypatch.setenv(OURS, "NONE")
    assert ValidationLevel.from_env() is ValidationLevel.NONE
