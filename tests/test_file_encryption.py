"""Encryption at rest of the local file store, with Fernet keys from STACKSECRETS_FILE_KEY.

Real files, the real ``cryptography`` package. What is checked: nothing readable is left in
the file; a file is never read without its key, nor overwritten by a write that cannot read it;
keys rotate (new key first, old key kept until ``reencrypt()``); a plain store becomes
encrypted at its next write; mistakes in the key name the fix, never the key.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import anyio
import pytest
from cryptography.fernet import Fernet

from cli_runner import Cli
from stacksecrets import ConfigurationError, StoreCorruptError
from stacksecrets.stores import FileStore, open_store
from stacksecrets.stores._crypto import KEY_VARIABLE

pytestmark = pytest.mark.anyio

VALUE = "encrypted-value-do-not-show"
NAME = "name-that-is-hidden-too"


def new_key() -> str:
    return Fernet.generate_key().decode()


def contents(path: Path) -> bytes:
    # Plain blocking reads: a test helper, off the async functions' own lines.
    return path.read_bytes()


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def replace_contents(path: Path, text: str) -> None:
    path.write_text(text)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "secrets.json"


async def write(path: Path, keys: str) -> None:
    async with FileStore(path, keys=keys.split(",")) as store:
        await store.create_secret(NAME, {"password": VALUE})


async def read(path: Path, keys: str | None) -> dict[str, str]:
    async with FileStore(path, keys=None if keys is None else keys.split(",")) as store:
        return (await store.get_secret(NAME)).secret_values


async def test_an_encrypted_file_holds_no_name_or_value(path: Path) -> None:
    """With a key, the file is a private JSON envelope around a Fernet token: neither names
    nor values are in it, and the same key reads it back."""
    key = new_key()
    await write(path, key)
    data = contents(path)
    envelope = json.loads(data)
    assert set(envelope) == {"version", "encryption", "ciphertext"}
    assert envelope["encryption"] == "fernet"
    assert (VALUE.encode() in data) is False
    assert (NAME.encode() in data) is False
    assert mode_of(path) == 0o600
    assert await read(path, key) == {"password": VALUE}


async def test_the_key_comes_from_the_environment(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store opened by URL takes its keys from STACKSECRETS_FILE_KEY."""
    key = new_key()
    monkeypatch.setenv(KEY_VARIABLE, key)
    async with open_store(path.as_uri()) as store:
        await store.create_secret(NAME, {"password": VALUE})
    assert "ciphertext" in json.loads(contents(path))
    assert await read(path, key) == {"password": VALUE}


async def test_without_the_key_nothing_is_read_or_overwritten(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An encrypted file and no key: reads and writes fail naming the variable, and the file
    is left exactly as it was."""
    await write(path, new_key())
    before = contents(path)
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    async with FileStore(path) as store:
        with pytest.raises(ConfigurationError, match=KEY_VARIABLE):
            await store.get_secret(NAME)
        with pytest.raises(ConfigurationError, match="is encrypted"):
            await store.create_secret("other", {"k": "v"})
    assert contents(path) == before


async def test_a_wrong_key_or_a_changed_file_is_refused_and_kept(path: Path) -> None:
    """A key that does not open the file, or a ciphertext changed by hand, is a
    StoreCorruptError (authenticated encryption); a write does not overwrite the file."""
    key = new_key()
    await write(path, key)
    before = contents(path)
    async with FileStore(path, keys=[new_key()]) as store:
        with pytest.raises(StoreCorruptError, match="cannot be decrypted"):
            await store.list_secrets()
        with pytest.raises(StoreCorruptError):
            await store.create_secret("other", {"k": "v"})
    assert contents(path) == before
    envelope = json.loads(before)
    token = envelope["ciphertext"]
    envelope["ciphertext"] = token[:-8] + ("A" if token[-8] != "A" else "B") + token[-7:]
    replace_contents(path, json.dumps(envelope))
    with pytest.raises(StoreCorruptError, match="cannot be decrypted"):
        await read(path, key)


async def test_keys_rotate_new_first_old_kept_until_reencrypted(path: Path) -> None:
    """Rotation: with 'new,old' the file still opens; reencrypt() writes it with the new key,
    after which the old key alone no longer opens it."""
    old, new = new_key(), new_key()
    await write(path, old)
    assert await read(path, f"{new},{old}") == {"password": VALUE}
    async with FileStore(path, keys=[new, old]) as store:
        await store.reencrypt()
    assert await read(path, new) == {"password": VALUE}
    with pytest.raises(StoreCorruptError):
        await read(path, old)


async def test_a_plain_store_is_encrypted_at_its_next_write(path: Path) -> None:
    """A plain store file opens with a key set only when plaintext is allowed on purpose, and
    the next write encrypts it."""
    async with FileStore(path, keys=[]) as store:
        await store.create_secret(NAME, {"password": VALUE})
    assert VALUE.encode() in contents(path)
    key = new_key()
    async with FileStore(path, keys=[key], allow_plaintext=True) as store:
        assert (await store.get_secret(NAME)).secret_values == {"password": VALUE}
        await store.reencrypt()
    assert (VALUE.encode() in contents(path)) is False
    assert await read(path, key) == {"password": VALUE}


@pytest.mark.parametrize("bad", ["not-a-key", "", "Zm9v"])
async def test_a_malformed_key_names_its_position_not_itself(
    path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    """A key that is not a Fernet key is a ConfigurationError naming the variable, the key's
    position and how to make one, never the key."""
    good = new_key()
    monkeypatch.setenv(KEY_VARIABLE, f"{good},{bad or ' '},")
    if not bad:
        store = FileStore(path)  # blank entries are ignored
        await store.aclose()
        return
    with pytest.raises(ConfigurationError) as caught:
        FileStore(path)
    message = str(caught.value)
    assert f"key #2 in {KEY_VARIABLE}" in message
    assert "Fernet.generate_key()" in message
    assert (bad in message) is False
    assert (good in message) is False


def test_the_cli_uses_the_key_from_the_environment(cli: Cli, path: Path) -> None:
    """`secret create` and `secret get --show-values` work on an encrypted store; without the
    key the command exits 2 saying which variable to set."""
    env = {"STACKSECRETS_STORE": path.as_uri(), KEY_VARIABLE: new_key()}
    assert cli.invoke("secret", "create", NAME, f"--password={VALUE}", env=env).exit_code == 0
    shown = cli.invoke("secret", "get", NAME, "--show-values", "--json", env=env)
    assert json.loads(shown.stdout)["values"] == {"password": VALUE}
    assert (VALUE.encode() in contents(path)) is False
    refused = cli.invoke("secret", "list", env={**env, KEY_VARIABLE: ""})
    assert refused.exit_code == 2
    assert KEY_VARIABLE in refused.stderr


def test_reencrypt_of_a_missing_store_creates_an_empty_encrypted_one(path: Path) -> None:
    """reencrypt() on a store that does not exist yet writes an empty, encrypted store."""

    async def main() -> list[str]:
        async with FileStore(path, keys=[new_key()]) as store:
            await store.reencrypt()
            return await store.list_secrets()

    assert anyio.run(main) == []
    assert "ciphertext" in json.loads(contents(path))
