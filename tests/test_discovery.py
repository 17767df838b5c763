"""The store found with none given: the order, ZenML's files as `zenml login` writes them, and
bad input (a broken config file, a bad active stack id) named clearly. Real files, no server:
nothing is sent before a store's first call. The end-to-end proof is tests/test_zenml_live.py."""

from __future__ import annotations

import importlib.util
import re
import uuid
from pathlib import Path

import pytest

from stacksecrets import ConfigurationError
from stacksecrets.stores import FileStore, ZenMLStore, open_store, store_url
from stacksecrets.stores._discovery import active_stack_id, discover, saved_login

SERVER = "http://127.0.0.1:8237"
STACK_ID = "3aaf63e3-6d43-4aa6-9ea5-5d6145030ff8"


def zenml_config(folder: Path, *, store_type: str = "rest", credentials: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(
        f"active_stack_id: {STACK_ID}\nstore:\n  type: {store_type}\n  url: {SERVER}\n"
        "  verify_ssl: true\nversion: 0.98.0\n"
    )
    if credentials is not None:
        (folder / "credentials.yaml").write_text(credentials)
    return folder


API_KEY_LOGIN = f"""
{SERVER}:
  api_key: ZENKEY_not_a_real_key
  api_token:
    access_token: not-a-real-token
  url: {SERVER}
"""


@pytest.fixture
def no_config(tmp_path: Path) -> dict[str, str]:
    return {"ZENML_CONFIG_PATH": str(tmp_path / "empty")}


def test_order_stacksecrets_store_first(tmp_path: Path):
    config = zenml_config(tmp_path / "z")
    env = {
        "STACKSECRETS_STORE": "memory://",
        "ZENML_STORE_URL": "http://10.0.0.1:80",
        "ZENML_CONFIG_PATH": str(config),
    }
    assert store_url(environ=env) == "memory://"
    assert store_url("file:///x.json", environ=env) == "file:///x.json"


def test_order_zenml_store_url_before_the_config(tmp_path: Path):
    config = zenml_config(tmp_path / "z")
    env = {"ZENML_STORE_URL": "http://10.0.0.1:80", "ZENML_CONFIG_PATH": str(config)}
    found = discover(env)
    assert (found.url, found.source) == ("zenml+http://10.0.0.1:80", "ZENML_STORE_URL")


def test_a_database_zenml_store_url_means_zenml_local_secrets(tmp_path: Path):
    """ZenML then reads its secrets from that database: so does stacksecrets."""
    config = zenml_config(tmp_path / "z")
    env = {"ZENML_STORE_URL": "sqlite:////tmp/zenml.db", "ZENML_CONFIG_PATH": str(config)}
    found = discover(env)
    assert (found.url, found.source) == (
        "zenml+local://",
        "ZENML_STORE_URL (a database, no ZenML server)",
    )


def test_the_config_of_zenml_login_with_its_saved_login(tmp_path: Path):
    config = zenml_config(tmp_path / "z", credentials=API_KEY_LOGIN)
    env = {"ZENML_CONFIG_PATH": str(config)}
    found = discover(env)
    assert found.url == "zenml+" + SERVER
    assert str(config / "config.yaml") in found.source
    login = saved_login(SERVER + "/", env)
    assert login is not None
    assert (login.api_key, login.token) == ("ZENKEY_not_a_real_key", "not-a-real-token")
    assert "not-a-real" not in repr(login)
    store = open_store(environ=env)
    assert isinstance(store, ZenMLStore)
    assert store.description == "zenml+" + SERVER


def test_a_local_server_without_a_saved_login_is_used_without_one(tmp_path: Path):
    env = {"ZENML_CONFIG_PATH": str(zenml_config(tmp_path / "z"))}
    assert saved_login(SERVER, env) is not None
    assert isinstance(open_store(environ=env), ZenMLStore)  # anonymous: NO_AUTH servers


def test_another_server_gets_no_saved_login(tmp_path: Path):
    env = {"ZENML_CONFIG_PATH": str(zenml_config(tmp_path / "z", credentials=API_KEY_LOGIN))}
    assert saved_login("http://127.0.0.1:9999", env) is None
    with pytest.raises(ConfigurationError, match=re.escape("zenml login http://127.0.0.1:9999")):
        open_store("zenml+http://127.0.0.1:9999", environ=env)


@pytest.mark.parametrize("store", ["  type: sql\n  url: sqlite:////z/zenml.db\n", None])
def test_zenml_without_a_server_means_its_local_database(tmp_path: Path, store: str | None):
    """After `zenml logout --local` (store type sql), or a configuration with no store (ZenML
    then uses its default local database): ZenML's local secrets, never the file store."""
    folder = tmp_path / "z"
    folder.mkdir()
    text = f"active_stack_id: {STACK_ID}\n" + ("" if store is None else f"store:\n{store}")
    (folder / "config.yaml").write_text(text)
    found = discover({"ZENML_CONFIG_PATH": str(folder)})
    assert found.url == "zenml+local://"
    assert str(folder / "config.yaml") in found.source


def test_no_zenml_configuration_means_the_local_file(no_config):
    assert discover(no_config).url is None
    assert isinstance(open_store(environ=no_config), FileStore)


def test_zenml_local_secrets_without_zenml_importable_say_why_and_what_to_do(tmp_path: Path):
    """This interpreter cannot import zenml (the dev venv has none): an error that names
    ZenML's configuration and the ways out, not the local file store in silence."""
    pytest.importorskip("stacksecrets")  # always there; zenml must not be
    if importlib.util.find_spec("zenml") is not None:
        pytest.skip("zenml is importable here")
    env = {"ZENML_CONFIG_PATH": str(zenml_config(tmp_path / "z", store_type="sql"))}
    with pytest.raises(ConfigurationError) as caught:
        open_store(environ=env)
    message = str(caught.value)
    assert "local database" in message
    assert str(tmp_path / "z" / "config.yaml") in message
    assert "zenml login --local" in message
    assert "Install stacksecrets into ZenML's environment" in message


def test_a_step_token_is_a_credential():
    env = {"ZENML_STORE_URL": SERVER, "ZENML_STORE_API_TOKEN": "tok"}
    store = open_store(environ=env)
    assert isinstance(store, ZenMLStore)
    assert "tok" not in repr(store)


def test_a_broken_config_file_is_named(tmp_path: Path):
    folder = tmp_path / "z"
    folder.mkdir()
    (folder / "config.yaml").write_text("store: [unclosed\n")
    with pytest.raises(ConfigurationError, match=re.escape("config.yaml is not valid YAML")):
        discover({"ZENML_CONFIG_PATH": str(folder)})


def test_active_stack_id_from_the_variable_then_the_config(tmp_path: Path, no_config):
    config = zenml_config(tmp_path / "z")
    other = str(uuid.uuid4())
    assert active_stack_id({"ZENML_ACTIVE_STACK_ID": other, "ZENML_CONFIG_PATH": str(config)}) == (
        uuid.UUID(other),
        "ZENML_ACTIVE_STACK_ID",
    )
    found, source = active_stack_id({"ZENML_CONFIG_PATH": str(config)})
    assert found == uuid.UUID(STACK_ID)
    assert "config.yaml" in source
    with pytest.raises(ConfigurationError, match="no active ZenML stack"):
        active_stack_id(no_config)
    with pytest.raises(ConfigurationError, match="ZENML_ACTIVE_STACK_ID: the active stack id"):
        active_stack_id({"ZENML_ACTIVE_STACK_ID": "not-a-uuid"})
