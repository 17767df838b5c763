"""The file store against real files, real processes and (where it can be mounted) a full disk."""

from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import filelock
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from stacksecrets import (
    ClosedError,
    ConfigurationError,
    SecretExistsError,
    SecretNotFoundError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from stacksecrets.stores import FileStore, SecretStore, _file, default_store_path, open_store

WRITER = Path(__file__).parent / "_store_writer.py"
#: A value that must never show in a message.
SENTINEL = "s3cr3t-SENTINEL-4242"


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


def write_store(path: Path, secrets: dict[str, dict[str, str]], *, mode: int = 0o600) -> None:
    """A store file written by hand, as a user or another tool would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "secrets": secrets}))
    path.chmod(mode)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """Where a store file goes: in a folder that does not exist yet."""
    return tmp_path / "store" / "secrets.json"


@pytest.fixture
def log_events() -> Iterator[list[dict[str, Any]]]:
    """The structlog events logged during the test (conftest restores structlog after)."""
    with structlog.testing.capture_logs() as events:
        yield events


@pytest.fixture
async def store(store_path: Path, anyio_backend: str) -> AsyncIterator[FileStore]:
    """An open store on ``store_path``."""
    async with FileStore(store_path) as opened:
        yield opened


# --- reading and writing -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_create_get_update_delete_round_trip(store: FileStore) -> None:
    """A created secret reads back; an update adds, replaces and removes keys; a delete removes
    it."""
    await store.create_secret("db", {"user": "admin", "password": SENTINEL})
    assert (await store.get_secret("db")).secret_values == {"user": "admin", "password": SENTINEL}

    await store.update_secret("db", {"password": "new", "host": "h"}, remove_keys=["user"])
    assert (await store.get_secret("db")).secret_values == {"password": "new", "host": "h"}

    await store.delete_secret("db")
    with pytest.raises(SecretNotFoundError):
        await store.get_secret("db")


@pytest.mark.anyio
async def test_a_second_store_on_the_same_file_sees_the_writes(
    store: FileStore, store_path: Path
) -> None:
    """Everything lives in the file: a new store object on the same path reads what was written."""
    await store.create_secret("db", {"password": SENTINEL})
    async with FileStore(store_path) as other:
        assert (await other.get_secret("db")).secret_values == {"password": SENTINEL}


@pytest.mark.anyio
async def test_missing_names_and_taken_names_are_refused(store: FileStore) -> None:
    """get/update/delete of a missing name raise SecretNotFoundError; create of a taken one,
    SecretExistsError."""
    await store.create_secret("db", {"k": "v"})
    with pytest.raises(SecretNotFoundError, match="'nope'"):
        await store.get_secret("nope")
    with pytest.raises(SecretNotFoundError, match="'nope'"):
        await store.update_secret("nope", {"k": "v"})
    with pytest.raises(SecretNotFoundError, match="'nope'"):
        await store.delete_secret("nope")
    with pytest.raises(SecretExistsError, match="'db'"):
        await store.create_secret("db", {"k": "other"})
    assert (await store.get_secret("db")).secret_values == {"k": "v"}


@pytest.mark.anyio
async def test_secrets_exist_answers_for_many_names(store: FileStore) -> None:
    """``secrets_exist`` gives exactly the names that exist, by exact name."""
    for name in ("a", "b", "c"):
        await store.create_secret(name, {"k": "v"})
    found = await store.secrets_exist(["a", "c", "A", "d", "a "])
    assert found == frozenset({"a", "c"})


@pytest.mark.anyio
async def test_list_is_sorted(store: FileStore) -> None:
    """``list_secrets`` gives every name, sorted."""
    for name in ("zeta", "alpha", "Mid", "beta"):
        await store.create_secret(name, {"k": "v"})
    assert await store.list_secrets() == ["Mid", "alpha", "beta", "zeta"]


@pytest.mark.anyio
async def test_missing_file_is_an_empty_store_and_reads_do_not_create_it(
    store: FileStore, store_path: Path
) -> None:
    """With no file, the store is empty, and reading creates neither the file nor its folder."""
    assert await store.list_secrets() == []
    assert await store.secrets_exist(["a"]) == frozenset()
    with pytest.raises(SecretNotFoundError):
        await store.get_secret("a")
    assert not store_path.parent.exists()


@pytest.mark.anyio
async def test_an_empty_file_is_an_empty_store(store: FileStore, store_path: Path) -> None:
    """A zero-byte file (as ``touch`` makes) is an empty store that can be written to."""
    store_path.parent.mkdir()
    await anyio.Path(store_path).touch(mode=0o600)
    assert await store.list_secrets() == []
    await store.create_secret("db", {"k": "v"})
    assert await store.list_secrets() == ["db"]


@pytest.mark.anyio
async def test_file_format_is_versioned_sorted_json(store: FileStore, store_path: Path) -> None:
    """The file is ``{"version": 1, "secrets": {name: {key: value}}}``, names and keys sorted."""
    await store.create_secret("b", {"y": "1", "x": "2"})
    await store.create_secret("a", {"k": "v"})
    content = json.loads(await anyio.Path(store_path).read_text())
    assert content == {"version": 1, "secrets": {"a": {"k": "v"}, "b": {"x": "2", "y": "1"}}}
    assert list(content["secrets"]) == ["a", "b"]
    assert list(content["secrets"]["b"]) == ["x", "y"]


@pytest.mark.anyio
async def test_unknown_top_level_fields_are_kept(store: FileStore, store_path: Path) -> None:
    """Fields this version does not use survive a write."""
    store_path.parent.mkdir()
    await anyio.Path(store_path).write_text('{"version": 1, "comment": "by hand", "secrets": {}}')
    await store.create_secret("db", {"k": "v"})
    assert json.loads(await anyio.Path(store_path).read_text())["comment"] == "by hand"


NAMES = [
    "../escape",
    "../../etc/passwd",
    "/etc/passwd",
    "a/b/c",
    "..",
    ".",
    "secrets.json",
    "secrets.json.lock",
    "~",
    "C:\\Windows\\win.ini",
    "name with spaces",
    "ünïcödé-名前",
    "\x00nul",
    "x" * 2000,
]


@pytest.mark.anyio
async def test_names_never_choose_the_file(store: FileStore, store_path: Path) -> None:
    """Names are JSON keys: path-like names touch no other file, and all of them read back."""
    for i, name in enumerate(NAMES):
        await store.create_secret(name, {"k": str(i)})
    for i, name in enumerate(NAMES):
        assert (await store.get_secret(name)).secret_values == {"k": str(i)}
    assert await store.list_secrets() == sorted(NAMES)
    assert {p.name for p in store_path.parent.iterdir()} - {"secrets.json.lock"} == {"secrets.json"}
    assert sorted(p.name for p in store_path.parent.parent.iterdir()) == ["store"]


@pytest.mark.anyio
async def test_empty_names_are_refused(store: FileStore, store_path: Path) -> None:
    """A secret cannot be created with an empty name; nothing is written."""
    with pytest.raises(ConfigurationError, match="non-empty"):
        await store.create_secret("", {"k": "v"})
    assert not await anyio.Path(store_path).exists()


@pytest.mark.anyio
async def test_non_string_values_are_refused_without_showing_them(
    store: FileStore, store_path: Path
) -> None:
    """A value that is not a string would make the file unreadable: refused, value not shown."""
    with pytest.raises(ConfigurationError) as info:
        await store.create_secret("db", {"pin": 987654321})  # type: ignore[dict-item]
    assert "'db'" in str(info.value)
    assert ("987654321" in str(info.value)) is False
    assert not await anyio.Path(store_path).exists()


# Every character but lone surrogates, which no UTF-8 store can hold (the shared rules refuse them).
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@settings(max_examples=25, deadline=None)
@given(
    secrets=st.dictionaries(
        TEXT.filter(bool),
        st.dictionaries(TEXT.filter(bool), TEXT, max_size=4),
        min_size=1,
        max_size=4,
    )
)
def test_any_names_keys_and_values_round_trip(
    backend: str, secrets: dict[str, dict[str, str]]
) -> None:
    """Any non-empty name, key and value of valid Unicode (control characters, NUL,
    astral planes) reads back exactly."""

    async def round_trip(path: Path) -> dict[str, dict[str, str]]:
        async with FileStore(path) as store:
            for name, values in secrets.items():
                await store.create_secret(name, values)
        async with FileStore(path) as store:
            return {
                n: (await store.get_secret(n)).secret_values for n in await store.list_secrets()
            }

    with tempfile.TemporaryDirectory() as folder:
        assert anyio.run(round_trip, Path(folder) / "s.json", backend=backend) == secrets


@pytest.mark.anyio
async def test_concurrent_writers_in_one_process_lose_nothing(
    store: FileStore, store_path: Path
) -> None:
    """Tasks writing at once, through one store and through a second one on the same file,
    lose no write."""
    async with FileStore(store_path) as second, anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(store.create_secret, f"one-{i}", {"k": str(i)})
            tg.start_soon(second.create_secret, f"two-{i}", {"k": str(i)})
    names = await store.list_secrets()
    assert len(names) == 40
    assert (await store.get_secret("two-7")).secret_values == {"k": "7"}


# --- URLs, description, closing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("file://{tmp}/a.json", "a.json", id="absolute"),
        pytest.param("FILE://{tmp}/a.json", "a.json", id="scheme-case"),
        pytest.param("file://rel/b.json", "rel/b.json", id="relative-to-cwd"),
        pytest.param("file://~/c.json", "home/c.json", id="home"),
        pytest.param("file://{tmp}/with%20space/d.json", "with space/d.json", id="percent-encoded"),
        pytest.param("file://{tmp}/x/../e.json", "e.json", id="normalized"),
    ],
)
def test_url_forms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, expected: str
) -> None:
    """``file:///abs``, ``file://relative`` (against the working folder), ``file://~/...`` and
    percent-encoding all name the expected file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    store = FileStore.from_url(url.format(tmp=tmp_path))
    assert store.path == tmp_path / expected
    assert store.description == f"file://{tmp_path / expected}"


def test_as_uri_of_a_path_round_trips(tmp_path: Path) -> None:
    """``Path.as_uri()`` (how the default store URL is made) opens that very path."""
    path = tmp_path / "Application Support" / "100%" / "secrets.json"
    assert FileStore.from_url(path.as_uri()).path == path


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        pytest.param("file://", "needs a path", id="empty"),
        pytest.param("file://   ", "needs a path", id="blank"),
        pytest.param("file://{tmp}", "is a folder", id="existing-folder"),
        pytest.param("file://{tmp}/new/", "names a folder", id="trailing-slash"),
        pytest.param("file://{tmp}/a%00b.json", "NUL", id="nul"),
        pytest.param("https://user:pw@host/s.json", "scheme 'https'", id="other-scheme"),
    ],
)
def test_bad_urls_say_what_to_fix(tmp_path: Path, url: str, problem: str) -> None:
    """Bad URLs raise ConfigurationError saying what is wrong and showing a good URL."""
    with pytest.raises(ConfigurationError) as info:
        FileStore.from_url(url.format(tmp=tmp_path))
    assert problem in str(info.value)
    assert "file:///" in str(info.value)
    assert ("pw" in str(info.value)) is False


def test_open_store_dispatches_file_urls(tmp_path: Path) -> None:
    """``open_store("file://...")`` gives a FileStore on that path, which is a SecretStore."""
    store = open_store(f"file://{tmp_path}/s.json")
    assert isinstance(store, FileStore)
    assert isinstance(store, SecretStore)
    assert store.path == tmp_path / "s.json"


def test_default_store_is_a_file_store() -> None:
    """With no URL and no variable, the store is the default file, not created by opening it."""
    store = open_store(None, environ={})
    assert isinstance(store, FileStore)
    assert store.path == default_store_path()


def test_capabilities_and_repr(store_path: Path) -> None:
    """Batched existence and writes are supported; the repr shows the file."""
    store = FileStore(store_path)
    assert store.capabilities.batched_exists
    assert store.capabilities.writable
    assert repr(store) == f"<FileStore file://{store_path}>"


@pytest.mark.anyio
async def test_closed_store_refuses_use(store_path: Path) -> None:
    """After ``aclose`` (idempotent) every call raises ClosedError and nothing is created."""
    store = FileStore(store_path)
    await store.aclose()
    await store.aclose()
    calls = [
        lambda: store.get_secret("a"),
        lambda: store.secrets_exist(["a"]),
        store.list_secrets,
        lambda: store.create_secret("a", {"k": "v"}),
        lambda: store.update_secret("a", {"k": "v"}),
        lambda: store.delete_secret("a"),
    ]
    for call in calls:
        with pytest.raises(ClosedError, match=re.escape("secrets.json")):
            await call()
    with pytest.raises(ClosedError):
        async with store:
            pass
    assert not store_path.parent.exists()


# --- permissions ---------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("umask", [0o022, 0o277])
async def test_created_file_and_folder_are_private(
    store: FileStore, store_path: Path, umask: int
) -> None:
    """The store creates its folder 0700 and its file 0600 (and the lock file 0600), whatever
    the umask."""
    old_umask = os.umask(umask)
    try:
        await store.create_secret("db", {"k": "v"})
    finally:
        os.umask(old_umask)
    assert mode_of(store_path.parent) == 0o700
    assert mode_of(store_path) == 0o600
    lock = store_path.with_name("secrets.json.lock")
    assert not lock.exists() or mode_of(lock) == 0o600


@pytest.mark.anyio
async def test_write_over_a_readable_file_leaves_it_private(
    store: FileStore, store_path: Path
) -> None:
    """A write over a 0644 file leaves it 0600."""
    write_store(store_path, {"db": {"k": "v"}}, mode=0o644)
    await store.update_secret("db", {"k": "w"})
    assert mode_of(store_path) == 0o600


@pytest.mark.anyio
async def test_readable_file_logs_one_permissions_warning(
    store: FileStore, store_path: Path, log_events: list[dict[str, Any]]
) -> None:
    """Reading a file that others can read logs ``stacksecrets.file.permissions`` (path, mode),
    once."""
    write_store(store_path, {"db": {"k": "v"}}, mode=0o644)
    await store.list_secrets()
    await store.get_secret("db")
    warnings = [e for e in log_events if e["event"] == "stacksecrets.file.permissions"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["path"] == str(store_path)
    assert warnings[0]["mode"] == "0644"


@pytest.mark.anyio
async def test_private_file_logs_no_warning(
    store: FileStore, store_path: Path, log_events: list[dict[str, Any]]
) -> None:
    """A 0600 file reads without a permissions warning."""
    write_store(store_path, {"db": {"k": "v"}}, mode=0o600)
    await store.list_secrets()
    assert [e for e in log_events if e["event"] == "stacksecrets.file.permissions"] == []


@pytest.mark.anyio
async def test_write_logs_name_and_path_but_no_value(
    store: FileStore, store_path: Path, log_events: list[dict[str, Any]]
) -> None:
    """A write logs ``stacksecrets.file.write`` with the action, name and path; no value."""
    await store.create_secret("db", {"password": SENTINEL})
    writes = [e for e in log_events if e["event"] == "stacksecrets.file.write"]
    assert [(e["action"], e["secret"], e["path"]) for e in writes] == [
        ("create", "db", str(store_path))
    ]
    assert (SENTINEL in repr(log_events)) is False


# --- corrupt files -------------------------------------------------------------------------------

S = SENTINEL.encode()
CORRUPT = [
    pytest.param(b'{"version": 1, "secrets": {"db": {"password": "' + S, "invalid JSON", id="cut"),
    pytest.param(
        b'{"version": 1, "secrets": {"db": {"p": "' + S + b'"}}} x', "invalid JSON", id="tail"
    ),
    pytest.param(b'["' + S + b'"]', "top level must be an object, found an array", id="array"),
    pytest.param(b'"' + S + b'"', "top level must be an object, found a string", id="string"),
    pytest.param(b'{"version": 1, "secrets": ["' + S + b'"]}', '"secrets" must be', id="list"),
    pytest.param(
        b'{"version": 1, "secrets": {"db": "' + S + b'"}}', "secret 'db' must be", id="flat"
    ),
    pytest.param(
        b'{"version": 1, "secrets": {"db": {"pin": 4242424242}}}',
        "key 'pin' of secret 'db' holds a number",
        id="number",
    ),
    pytest.param(
        b'{"version": 1, "secrets": {"db": {"p": ["' + S + b'"]}}}',
        "key 'p' of secret 'db' holds an array",
        id="nested",
    ),
    pytest.param(
        b'{"secrets": {"db": {"p": "' + S + b'"}}}', '"version" must be 1', id="no-version"
    ),
    pytest.param(b'{"version": true, "secrets": {}}', '"version" must be 1', id="bool-version"),
    pytest.param(
        b'{"version": 2, "secrets": {"db": {"p": "' + S + b'"}}}', "format version 2", id="newer"
    ),
    pytest.param(
        b'{"version": 1, "secrets": {"db": {"p": "' + S + b'\xff"}}}', "not UTF-8", id="not-utf8"
    ),
    pytest.param(
        b'{"version": 1, "secrets": {"db": {"p": "' + S + b'"}, "db": {}}}',
        "'db' appears twice",
        id="duplicate",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("content", "problem"), CORRUPT)
async def test_corrupt_file_read_names_file_and_problem_not_content(
    store: FileStore, store_path: Path, content: bytes, problem: str
) -> None:
    """Reading a corrupt file raises StoreCorruptError naming the file and the problem, showing
    no value and chaining no exception that holds the file's content."""
    store_path.parent.mkdir()
    await anyio.Path(store_path).write_bytes(content)
    with pytest.raises(StoreCorruptError) as info:
        await store.get_secret("db")
    message = str(info.value)
    assert str(store_path) in message
    assert problem in message
    assert ("SENTINEL" in message or "4242424242" in message) is False
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


@pytest.mark.anyio
@pytest.mark.parametrize(("content", "problem"), CORRUPT)
async def test_corrupt_file_is_never_overwritten(
    store: FileStore, store_path: Path, content: bytes, problem: str
) -> None:
    """A write over a corrupt file raises StoreCorruptError and leaves it byte for byte."""
    store_path.parent.mkdir()
    await anyio.Path(store_path).write_bytes(content)
    await anyio.Path(store_path).chmod(0o600)
    with pytest.raises(StoreCorruptError, match=re.escape(problem)):
        await store.create_secret("new", {"k": "v"})
    with pytest.raises(StoreCorruptError):
        await store.delete_secret("db")
    assert await anyio.Path(store_path).read_bytes() == content
    assert temp_files(store_path.parent) == []


# --- atomicity, failures, locks ------------------------------------------------------------------


@pytest.mark.anyio
async def test_failed_fsync_keeps_the_previous_file(
    store: FileStore, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An fsync that fails with ENOSPC raises StoreError naming the path; the old file is intact
    and the temporary file is gone."""
    await store.create_secret("db", {"password": "old"})
    before = await anyio.Path(store_path).read_bytes()

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(StoreError) as info:
        await store.update_secret("db", {"password": SENTINEL})
    monkeypatch.undo()
    assert str(store_path) in str(info.value)
    assert "No space left on device" in str(info.value)
    assert (SENTINEL in str(info.value)) is False
    assert isinstance(info.value.__cause__, OSError)
    assert await anyio.Path(store_path).read_bytes() == before
    assert temp_files(store_path.parent) == []
    assert (await store.get_secret("db")).secret_values == {"password": "old"}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (needs root and ``mount``; skipped where it cannot be mounted)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.anyio
async def test_full_disk_keeps_the_previous_file(small_disk: Path, anyio_backend: str) -> None:
    """On a really full disk a write raises StoreError (ENOSPC) naming the path; the previous file
    is intact, no temporary file is left, and later small writes work."""
    path = small_disk / "secrets.json"
    async with FileStore(path) as store:
        await store.create_secret("db", {"password": "old"})
        before = path.read_bytes()
        with pytest.raises(StoreError) as info:
            await store.create_secret("big", {"blob": "x" * 200_000})
        assert str(path) in str(info.value)
        assert isinstance(info.value.__cause__, OSError)
        assert info.value.__cause__.errno == errno.ENOSPC
        assert path.read_bytes() == before
        assert temp_files(small_disk) == []
        await store.create_secret("small", {"k": "v"})
        assert await store.list_secrets() == ["db", "small"]


@pytest.mark.anyio
async def test_stale_temp_files_are_ignored_then_removed(
    store: FileStore, store_path: Path
) -> None:
    """Temporary files a killed writer left do not disturb reads; the next write removes them,
    and only them."""
    await store.create_secret("db", {"k": "v"})
    stale = store_path.with_name(".secrets.json.0123456789abcdef.tmp")
    stale.write_bytes(b'{"version": 1, "secr')
    unrelated = store_path.with_name(".other.json.0123456789abcdef.tmp")
    unrelated.write_bytes(b"keep me")
    assert await store.list_secrets() == ["db"]
    await store.create_secret("db2", {"k": "v"})
    assert not stale.exists()
    assert unrelated.read_bytes() == b"keep me"


@pytest.mark.anyio
async def test_held_lock_makes_writers_give_up_but_not_readers(
    store: FileStore, store_path: Path
) -> None:
    """While another holder keeps the lock, a write waits ``lock_timeout`` then raises
    StoreUnavailableError; reads go on; after release, writes work."""
    await store.create_secret("db", {"k": "v"})
    holder = filelock.FileLock(f"{store_path}.lock", thread_local=False)
    holder.acquire()
    try:
        impatient = FileStore(store_path, lock_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="locked by another writer"):
            await impatient.create_secret("x", {"k": "v"})
        assert time.monotonic() - started >= 0.3
        assert (await impatient.get_secret("db")).secret_values == {"k": "v"}
    finally:
        holder.release()
    await impatient.create_secret("x", {"k": "v"})
    assert await store.list_secrets() == ["db", "x"]


@pytest.mark.anyio
async def test_a_waiting_writer_can_be_cancelled_promptly(
    store: FileStore, store_path: Path
) -> None:
    """A write waiting for the lock is cancelled at once and leaves no lock behind."""
    await store.create_secret("db", {"k": "v"})
    holder = filelock.FileLock(f"{store_path}.lock", thread_local=False)
    holder.acquire()
    try:
        started = time.monotonic()
        with anyio.move_on_after(0.2):
            await store.create_secret("x", {"k": "v"})
        assert time.monotonic() - started < 2
    finally:
        holder.release()
    with anyio.fail_after(5):
        await store.create_secret("y", {"k": "v"})
    assert await store.list_secrets() == ["db", "y"]


@pytest.mark.anyio
async def test_symlinked_store_writes_through_the_link(tmp_path: Path, anyio_backend: str) -> None:
    """A store path that is a symlink keeps being a symlink; the target file is written."""
    real = tmp_path / "real" / "secrets.json"
    write_store(real, {})
    link = tmp_path / "link.json"
    link.symlink_to(real)
    async with FileStore(link) as store:
        await store.create_secret("db", {"k": "v"})
        assert await store.list_secrets() == ["db"]
    assert link.is_symlink()
    assert json.loads(real.read_text())["secrets"] == {"db": {"k": "v"}}


# --- re-reading ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_change_by_another_writer_is_seen_at_once(
    store: FileStore, store_path: Path
) -> None:
    """A same-size in-place rewrite right after a read (same inode, maybe the same timestamp tick)
    is seen by the next read."""
    write_store(store_path, {"db": {"k": "aaaa"}})
    assert (await store.get_secret("db")).secret_values == {"k": "aaaa"}
    write_store(store_path, {"db": {"k": "bbbb"}})
    assert (await store.get_secret("db")).secret_values == {"k": "bbbb"}


@pytest.mark.anyio
async def test_an_unchanged_file_is_not_read_again(
    store: FileStore, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a read is old enough to trust, an unchanged file is not read again; a replaced one
    is."""
    monkeypatch.setattr(_file, "_TRUSTED_AGE_NS", 0)
    reads = []
    real_read = _file._read_file

    async def counting_read(path: Path) -> object:
        reads.append(path)
        return await real_read(path)

    monkeypatch.setattr(_file, "_read_file", counting_read)
    write_store(store_path, {"db": {"k": "v"}})
    for _ in range(3):
        assert await store.list_secrets() == ["db"]
    assert len(reads) == 1

    replacement = store_path.with_name("new.json")
    write_store(replacement, {"db": {"k": "v"}, "db2": {"k": "v"}})
    replacement.replace(store_path)
    assert await store.list_secrets() == ["db", "db2"]
    assert len(reads) == 2


# --- real processes ------------------------------------------------------------------------------


class Writers:
    """The ``_store_writer.py`` parent process, which forks writer processes on request."""

    def __init__(self, path: Path, go: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(WRITER), str(path), str(go)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.pending: list[list[str]] = []
        self.expect("started")

    def expect(self, word: str) -> list[int]:
        """The numbers on the next line that starts with ``word`` (lines come in any order)."""
        for line in self.pending:
            if line[0] == word:
                self.pending.remove(line)
                return [int(n) for n in line[1:]]
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline().decode().split()
            assert line, f"the writers' parent ended while {word!r} was expected"
            assert line[0] != "failed", f"writer {line[1]} failed (traceback on stderr)"
            if line[0] == word:
                return [int(n) for n in line[1:]]
            self.pending.append(line)

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{command}\n".encode())
        self.process.stdin.flush()

    def spawn(self, command: str) -> int:
        """Fork a writer process for ``command``; its PID."""
        self.send(command)
        [pid] = self.expect("child")
        return pid

    def reap(self, pid: int) -> int:
        """Wait for writer ``pid`` to end; its wait status."""
        self.send(f"reap {pid}")
        [reaped, status] = self.expect("reaped")
        assert reaped == pid
        return status

    def close(self) -> None:
        self.process.kill()
        self.process.communicate()


@pytest.fixture
def writers(tmp_path: Path) -> Iterator[Writers]:
    """A writers' parent for ``tmp_path/store/secrets.json``, go file ``tmp_path/go``."""
    parent = Writers(tmp_path / "store" / "secrets.json", tmp_path / "go")
    try:
        yield parent
    finally:
        parent.close()


def test_eight_processes_creating_at_once_lose_nothing(tmp_path: Path, writers: Writers) -> None:
    """8 processes (asyncio and trio) creating 25 secrets each at the same time: all 200 are
    there, with their values, in a valid 0600 file."""
    path = tmp_path / "store" / "secrets.json"
    backends = ["asyncio", "trio"] * 4
    pids = [writers.spawn(f"create {backend} p{i} 25") for i, backend in enumerate(backends)]
    (tmp_path / "go").touch()
    done = {writers.expect("done")[0] for _ in pids}
    assert done == set(pids)
    assert [writers.reap(pid) for pid in pids] == [0] * 8

    content = json.loads(path.read_bytes())
    expected = {f"p{i}-{n}": {"value": f"p{i}/{n}"} for i in range(8) for n in range(25)}
    assert content["secrets"] == expected
    assert mode_of(path) == 0o600
    assert temp_files(path.parent) == []


def letter(n: int) -> str:
    return chr(ord("a") + n % 26)


def test_killed_writers_leave_the_old_or_the_new_file(tmp_path: Path, writers: Writers) -> None:
    """A writer of large values killed (SIGKILL) at random moments, 20 times, always leaves a
    whole file, never older than the last one seen; leftover temporary files disturb nothing and
    the next write removes them."""
    path = tmp_path / "store" / "secrets.json"
    size = 300_000
    write_store(path, {"churn": {"n": "0", "blob": ""}})
    # Timing only, not cryptography; the seed is in every failure message to replay a run.
    seed = random.randrange(2**32)  # noqa: S311
    rng = random.Random(seed)  # noqa: S311
    last = 0

    async def read_n() -> int:
        async with FileStore(path) as store:
            return int((await store.get_secret("churn")).values["n"])

    for round_ in range(20):
        pid = writers.spawn(f"churn {['asyncio', 'trio'][round_ % 2]} {size}")
        assert writers.expect("ready") == [pid]
        time.sleep(rng.uniform(0, 0.1))
        os.kill(pid, signal.SIGKILL)
        status = writers.reap(pid)
        assert os.WIFSIGNALED(status)

        churn = json.loads(path.read_bytes())["secrets"]["churn"]
        n = int(churn["n"])
        whole = churn["blob"] == letter(n) * size
        assert whole, f"round {round_} (seed {seed}): value {n} is not whole"
        assert n >= last, f"round {round_} (seed {seed}): went back from {last} to {n}"
        assert anyio.run(read_n) == n
        last = n

    async def write_once() -> None:
        async with FileStore(path) as store:
            await store.create_secret("after", {"k": "v"})

    anyio.run(write_once)
    assert temp_files(path.parent) == []
    assert sorted(json.loads(path.read_bytes())["secrets"]) == ["after", "churn"]
