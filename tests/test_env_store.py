"""The environment store (``env://``): its convention, its URL, and the real command reading a
real process environment. The contract itself is tested by tests/test_store_conformance.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import pytest

from cli_runner import Cli
from stacksecrets import ConfigurationError, ForbiddenError, SecretNotFoundError
from stacksecrets.stores import EnvStore, open_store
from stacksecrets.stores._env import variable_name

ENV = {
    "STACKSECRETS_SECRET_mlflow_secret__username": "ml-user",
    "STACKSECRETS_SECRET_mlflow_secret__password": "pw-env-1",
    "STACKSECRETS_SECRET_db-prod__pass__word": "pw-env-2",  # the key holds '__'
    "STACKSECRETS_SECRET_db-prod__empty": "",
    "STACKSECRETS_SECRET_DB__password": "pw-env-3",  # case counts: not 'db'
    "STACKSECRETS_SECRET_typo_password": "pw-typo",  # no '__': ignored
    "MYAPP_api__token": "tk-env-4",
    "PATH": "/usr/bin",
}


def _read(store: EnvStore, name: str) -> dict[str, str]:
    async def main() -> dict[str, str]:
        return (await store.get_secret(name)).secret_values

    return anyio.run(main)


def test_one_variable_per_key_names_and_keys_exact() -> None:
    """``<prefix><NAME>__<KEY>``: the name ends at the first ``__``, the key may hold more;
    names are exact (``DB`` is not ``db``); empty values are values; malformed variables and
    other prefixes are not secrets."""
    store = EnvStore(environ=ENV)
    assert _read(store, "mlflow_secret") == {"username": "ml-user", "password": "pw-env-1"}
    assert _read(store, "db-prod") == {"pass__word": "pw-env-2", "empty": ""}
    assert _read(store, "DB") == {"password": "pw-env-3"}
    for absent in ("db", "typo_password", "typo", "api", "mlflow"):
        with pytest.raises(SecretNotFoundError) as caught:
            _read(store, absent)
        assert "env://" in str(caught.value)
    assert anyio.run(store.list_secrets) == ["DB", "db-prod", "mlflow_secret"]


def test_prefix_option_reads_only_its_variables() -> None:
    """``env://?prefix=MYAPP_`` reads ``MYAPP_<NAME>__<KEY>`` and nothing of the default
    prefix; its description shows the prefix (never a value)."""
    store = open_store("env://?prefix=MYAPP_", environ=ENV)
    assert isinstance(store, EnvStore)
    assert anyio.run(store.list_secrets) == ["api"]
    assert _read(store, "api") == {"token": "tk-env-4"}
    assert store.description == "env://?prefix=MYAPP_"
    assert repr(store) == "<EnvStore env://?prefix=MYAPP_>"


def test_the_environment_is_read_at_each_call() -> None:
    """A variable set after the store opened is seen; one removed is gone."""
    environ: dict[str, str] = {}
    store = EnvStore(environ=environ)
    assert anyio.run(store.secrets_exist, ["late"]) == frozenset()
    environ[variable_name("late", "k")] = "v"
    assert anyio.run(store.secrets_exist, ["late", "other"]) == {"late"}
    del environ[variable_name("late", "k")]
    assert anyio.run(store.list_secrets) == []


def test_writes_are_refused_as_read_only_naming_the_store() -> None:
    """Every write raises ``ForbiddenError`` saying the store is read-only; nothing changes
    and no value shows."""
    environ = dict(ENV)
    store = EnvStore(environ=environ)
    assert store.capabilities.writable is False
    for call in (
        lambda: store.create_secret("new", {"k": "pw-new"}),
        lambda: store.update_secret("db-prod", {"empty": "pw-new"}),
        lambda: store.delete_secret("db-prod"),
    ):
        with pytest.raises(ForbiddenError) as caught:
            anyio.run(call)
        assert str(caught.value) == "the store env:// is read-only"
    assert environ == ENV


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("env://somehost", "no host or path"),
        ("env:///some/path", "no host or path"),
        ("env://?prefix=", "non-empty"),
        ("env://?prefix=A__B", "must not hold '__'"),
        ("env://?prefx=APP_", "unknown option(s) prefx"),
    ],
)
def test_bad_urls_say_what_to_write(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_store(url, environ={})
    assert message in str(caught.value)


def test_variable_name_refuses_names_the_convention_cannot_hold() -> None:
    """A name holding ``__`` would be read back as a shorter name: refused, as are empty
    names and keys."""
    assert variable_name("db", "pass__word") == "STACKSECRETS_SECRET_db__pass__word"
    for name, key in (("a__b", "k"), ("", "k"), ("db", "")):
        with pytest.raises(ConfigurationError):
            variable_name(name, key)


STACK = """\
stacks:
  - name: ci
    components:
      - type: experiment_tracker
        flavor: mlflow
        name: tracker
        configuration:
          username: "{{mlflow_secret.username}}"
          password: "{{mlflow_secret.password}}"
          token: "{{db-prod.token}}"
"""


def test_cli_validates_against_a_real_process_environment(cli: Cli, tmp_path: Path) -> None:
    """``stacksecrets validate --store env://`` in a real process, its secrets in its real
    environment: a missing key is reported (exit 1) with no value in the output; with the
    key set it passes (exit 0); ``secret create`` is refused as read-only (exit 2)."""
    stack = tmp_path / "stack.yaml"
    stack.write_text(STACK)
    env = {k: v for k, v in ENV.items() if k != "PATH"}
    missing = cli.invoke("validate", "--store", "env://", str(stack), env=env)
    assert missing.returncode == 1, missing.stderr
    assert "missing key: 'db-prod' key 'token'" in missing.stdout
    shown = missing.stdout + missing.stderr
    assert not [value for value in ENV.values() if value.startswith("pw-") and value in shown]

    env["STACKSECRETS_SECRET_db-prod__token"] = "tk-env-5"
    passed = cli.invoke(
        "validate", str(stack), "--json", env={**env, "STACKSECRETS_STORE": "env://"}
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert json.loads(passed.stdout)["ok"] is True

    refused = cli.invoke("secret", "create", "x", "--k=v", "--store", "env://", env=env)
    assert refused.returncode == 2
    assert "the store env:// is read-only" in refused.stderr


def test_default_environ_is_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``environ``, ``os.environ`` is read (at each call)."""
    monkeypatch.setenv("STACKSECRETS_SECRET_fromos__k", "pw-os")
    store = EnvStore()
    assert _read(store, "fromos") == {"k": "pw-os"}
    monkeypatch.delenv("STACKSECRETS_SECRET_fromos__k")
    assert "fromos" not in anyio.run(store.list_secrets)
    assert "STACKSECRETS_SECRET_fromos__k" not in os.environ
