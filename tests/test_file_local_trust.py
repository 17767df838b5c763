"""The encrypted file store's local trust cases of issue 21: an emptied store (item 5) and the
read/write race between processes (item 6)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from cryptography.fernet import Fernet

from stacksecrets import StoreCorruptError
from stacksecrets.stores import FileStore
from stacksecrets.stores._crypto import KEY_VARIABLE

RACE_SCRIPT = Path(__file__).with_name("_encrypted_race.py")


@pytest.fixture
def key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "store" / "secrets.json"


def _contents(path: Path) -> bytes:
    return path.read_bytes()


def _truncate(path: Path, content: bytes) -> None:
    path.write_bytes(content)


@pytest.mark.anyio
@pytest.mark.parametrize("content", [b"", b"  \n\t\n"], ids=["zero-bytes", "whitespace"])
async def test_an_emptied_encrypted_store_is_refused_and_kept(
    path: Path, key: str, content: bytes
) -> None:
    """Issue 21 item 5: the generation side file says writes were made; a store emptied
    since is refused as corrupt on reads and writes, never read as empty or overwritten."""
    async with FileStore(path, keys=[key]) as store:
        await store.create_secret("db", {"password": "pw-do-not-show"})
        await store.update_secret("db", {"user": "u"})
    _truncate(path, content)
    async with FileStore(path, keys=[key]) as store:
        with pytest.raises(StoreCorruptError, match=r"is empty, but encrypted writes") as read:
            await store.list_secrets()
        with pytest.raises(StoreCorruptError, match=r"is empty"):
            await store.create_secret("new", {"k": "v"})
    assert "generation 2" in str(read.value)
    assert _contents(path) == content


@pytest.mark.anyio
async def test_an_emptied_store_with_a_side_file_of_zero_is_refused(path: Path, key: str) -> None:
    """Any side file means an encrypted store was written here: refused whatever it says."""
    path.parent.mkdir(parents=True)
    _truncate(path, b"")
    _truncate(path.with_name("secrets.json.generation"), b"0\n")
    async with FileStore(path, keys=[key]) as store:
        with pytest.raises(StoreCorruptError, match="is empty"):
            await store.list_secrets()


@pytest.mark.anyio
async def test_a_new_empty_file_without_a_side_file_is_still_an_empty_store(
    path: Path, key: str
) -> None:
    """``touch`` then first write (no encrypted write was ever made here): as before."""
    path.parent.mkdir(parents=True)
    _truncate(path, b"")
    async with FileStore(path, keys=[key]) as store:
        assert await store.list_secrets() == []
        await store.create_secret("db", {"k": "v"})
        assert await store.list_secrets() == ["db"]


def _race(path: Path, key: str, seconds: float) -> None:
    """One writer updating ``race`` in a loop and two readers reading it (fresh stores, no
    value cache), each a real process, for ``seconds``: no reader may see a corruption."""

    async def seed() -> None:
        async with FileStore(path, keys=[key]) as store:
            await store.create_secret("race", {"n": "0"})

    anyio.run(seed)
    env = {**os.environ, KEY_VARIABLE: key}
    env.pop("STACKSECRETS_FILE_ALLOW_PLAINTEXT", None)
    command = [sys.executable, str(RACE_SCRIPT)]
    runs = {
        role: subprocess.Popen(
            [*command, mode, str(path), str(seconds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for role, mode in (("writer", "write"), ("reader-1", "read"), ("reader-2", "read"))
    }
    counts = {}
    for role, process in runs.items():
        out, err = process.communicate(timeout=seconds + 120)
        assert process.returncode == 0, f"{role}: {out.strip()} {err[-1500:]}"
        counts[role] = int(out.split()[-1])
    # The race was really run: writes and reads overlapped many times.
    assert counts["writer"] > 0
    assert counts["reader-1"] > 0
    assert counts["reader-2"] > 0


def test_readers_never_see_a_false_corruption_while_a_writer_updates(path: Path, key: str) -> None:
    """Issue 21 item 6, short (~3 s): readers read the generation side file before the store
    file, writers write the store file before the side file, so a reader never sees an
    "older copy" that is only a newer write landing between its two reads."""
    _race(path, key, 3.0)


@pytest.mark.slow
def test_readers_never_see_a_false_corruption_for_twenty_seconds(path: Path, key: str) -> None:
    """Issue 21 item 6, long: the two-reader, one-writer loop for 25 s (nox -s slow)."""
    _race(path, key, 25.0)
