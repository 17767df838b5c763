"""The shared metadata cache: unit tests of the engine's use of it with a stamping store, and
of the cache file itself (real files). The real-server evidence is in test_zenml_metacache.py."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import anyio
import pytest
import structlog

from counting_store import CountingStore
from stacksecrets import ClientOptions, Component, ConfigurationError, Stack, ValidationLevel
from stacksecrets._engine import Engine
from stacksecrets._metacache import (
    CachedKeys,
    MetadataCache,
    SecretStamp,
    SupportsSecretsMetadata,
    cache_path,
    switched_on,
)

KEY = ValidationLevel.SECRET_AND_KEY_EXISTS
SEEDED = {
    "db": {"user": "u-value-1", "password": "p-value-1"},
    "api": {"token": "t-value-2"},
    "hidden": {"visible": "v-value-3", "secretkey": "s-value-4"},
}


class StampingStore(CountingStore):
    """The counting store with ids and change stamps: every write bumps the secret's version,
    a delete and create gives a new id. ``settled`` says what the store vouches for."""

    def __init__(self, secrets: Mapping[str, Mapping[str, str]], **kwargs: object) -> None:
        super().__init__(secrets, **kwargs)  # type: ignore[arg-type]
        self.versions = dict.fromkeys(secrets, 1)
        self.ids = {name: f"{name}-1" for name in secrets}
        self.generation = 1
        self.settled = True

    @property
    def metadata_scope(self) -> str:
        return "stamping:// user=tester"

    async def secrets_metadata(self, names: Sequence[str]) -> dict[str, SecretStamp]:
        await self._enter("secrets_metadata", ",".join(names))
        try:
            found = await self.inner.secrets_exist(names)
        finally:
            self.in_flight -= 1
        return {
            name: SecretStamp(self.ids[name], str(self.versions[name]), settled=self.settled)
            for name in found
        }

    async def create_secret(self, name: str, values: Mapping[str, str]) -> None:
        await super().create_secret(name, values)
        self.generation += 1
        self.ids[name] = f"{name}-{self.generation}"
        self.versions[name] = 1

    async def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        await super().update_secret(name, values, remove_keys=remove_keys)
        self.versions[name] += 1


def stacks(*refs: str) -> list[Stack]:
    config = {f"k{i}": "{{" + ref + "}}" for i, ref in enumerate(refs)}
    return [Stack("s", [Component("orchestrator", "x", "o", config)])]


REFS = stacks("db.user", "db.password", "api.token", "api.missing", "hidden.secretkey", "gone.k")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STACKSECRETS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("STACKSECRETS_METADATA_CACHE", raising=False)
    return tmp_path / "cache"


def store() -> StampingStore:
    return StampingStore(SEEDED, unreadable={"hidden": ["secretkey"]})


def problems(report: object) -> set[tuple[str, str | None, str | None]]:
    return {(p.kind.value, p.secret, p.key) for p in report.problems}  # type: ignore[attr-defined]


EXPECTED = {
    ("missing_key", "api", "missing"),
    ("value_not_readable", "hidden", "secretkey"),
    ("missing_secret", "gone", None),
}


def test_the_stamping_store_offers_the_hook():
    assert isinstance(store(), SupportsSecretsMetadata)
    assert not isinstance(CountingStore({}), SupportsSecretsMetadata)


@pytest.mark.anyio
async def test_a_second_engine_answers_key_names_from_the_cache_without_reads():
    """Cold: one stamp call and one read per found secret. Warm (a new engine, as a new
    process has): the stamp call only, the same problems (missing and unreadable keys)."""
    cold_store = store()
    cold = await Engine(cold_store).validate(REFS, KEY)
    assert problems(cold) == EXPECTED
    assert cold_store.calls == {"secrets_metadata": 1, "get_secret": 3}
    assert cold.stats.metadata_hits == 0

    warm_store = store()
    warm = await Engine(warm_store).validate(REFS, KEY)
    assert problems(warm) == EXPECTED
    assert warm_store.calls == {"secrets_metadata": 1}
    assert (warm.stats.metadata_hits, warm.stats.store_calls) == (3, 1)


@pytest.mark.anyio
async def test_only_the_secret_whose_stamp_or_id_changed_is_read():
    await Engine(store()).validate(REFS, KEY)
    changed = store()
    await changed.inner.update_secret("api", {"missing": "now-here"})
    changed.versions["api"] += 1
    changed.ids["db"] = "db-recreated"
    changed.calls.clear()
    report = await Engine(changed).validate(REFS, KEY)
    assert sorted(changed.read_names) == ["api", "db"]
    assert problems(report) == EXPECTED - {("missing_key", "api", "missing")}
    assert report.stats.metadata_hits == 1


@pytest.mark.anyio
async def test_an_unsettled_stamp_is_not_cached():
    """A stamp the store does not vouch for (too recent) leads to a read every time."""
    first = store()
    first.settled = False
    await Engine(first).validate(REFS, KEY)
    second = store()
    await Engine(second).validate(REFS, KEY)
    assert sorted(second.read_names) == ["api", "db", "hidden"]


@pytest.mark.anyio
async def test_resolve_still_reads_every_value():
    await Engine(store()).validate(REFS, KEY)
    warm = store()
    resolved = await Engine(warm).resolve(stacks("db.user", "api.token"))
    assert sorted(warm.read_names) == ["api", "db"]
    value = resolved[0].components[0].configuration["k0"]
    assert value.get_secret_value() == "u-value-1"  # type: ignore[union-attr]


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["option", "variable"])
async def test_the_off_switch_makes_no_stamp_call_and_reads_all(
    how: str, monkeypatch: pytest.MonkeyPatch
):
    await Engine(store()).validate(REFS, KEY)
    options = ClientOptions()
    if how == "option":
        options = ClientOptions(metadata_cache=False)
    else:
        monkeypatch.setenv("STACKSECRETS_METADATA_CACHE", "0")
    off = store()
    report = await Engine(off, options).validate(REFS, KEY)
    assert "secrets_metadata" not in off.calls
    assert sorted(off.read_names) == ["api", "db", "hidden"]
    assert report.stats.metadata_hits == 0


def test_a_bad_switch_value_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="STACKSECRETS_METADATA_CACHE"):
        switched_on(option=True, environ={"STACKSECRETS_METADATA_CACHE": "maybe"})
    assert switched_on(option=True, environ={"STACKSECRETS_METADATA_CACHE": "off"}) is False
    assert switched_on(option=True, environ={}) is True
    with pytest.raises(ConfigurationError, match="metadata_cache"):
        ClientOptions(metadata_cache="yes")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_entries_older_than_the_maximum_age_are_not_trusted():
    await Engine(store()).validate(REFS, KEY)
    aged = store()
    await Engine(aged, ClientOptions(metadata_max_age=0)).validate(REFS, KEY)
    assert sorted(aged.read_names) == ["api", "db", "hidden"]


@pytest.mark.anyio
async def test_the_file_holds_key_names_and_no_value_and_is_private(cache_dir: Path):
    await Engine(store()).validate(REFS, KEY)
    path = cache_dir / "metadata.json"
    text = _read(path)
    for values in SEEDED.values():
        for value in values.values():
            assert value not in text
    entry = json.loads(text)["scopes"]["stamping:// user=tester"]["hidden"]
    assert entry["keys"] == ["secretkey", "visible"]
    assert entry["unreadable"] == ["secretkey"]
    assert _mode(path) == 0o600
    assert _mode(cache_dir) == 0o700


@pytest.mark.anyio
@pytest.mark.parametrize(
    "garbage", [b"{not json", b"\xff\xfe", b"[1, 2]", b'{"format": 1, "scopes": 7}']
)
async def test_a_corrupt_file_is_ignored_and_rebuilt(cache_dir: Path, garbage: bytes):
    _write(cache_dir / "metadata.json", garbage)
    first = store()
    assert problems(await Engine(first).validate(REFS, KEY)) == EXPECTED
    assert sorted(first.read_names) == ["api", "db", "hidden"]
    rebuilt = json.loads(_read(cache_dir / "metadata.json"))
    assert set(rebuilt["scopes"]["stamping:// user=tester"]) == {"api", "db", "hidden"}
    second = store()
    await Engine(second).validate(REFS, KEY)
    assert second.read_names == []


@pytest.mark.anyio
async def test_concurrent_writers_merge_their_entries(cache_dir: Path):
    """Many concurrent saves (threads, each under the file lock) lose no entry."""
    cache = MetadataCache(cache_path(), max_age=60)

    async def save(index: int) -> None:
        entry = CachedKeys(f"id{index}", "1", frozenset({"k"}), frozenset(), cache.clock())
        await cache.save("scope", {f"s{index}": entry})

    async with anyio.create_task_group() as tg:
        for index in range(20):
            tg.start_soon(save, index)
    assert set(await cache.load("scope")) == {f"s{i}" for i in range(20)}
    assert not _temp_files(cache_dir)


@pytest.mark.anyio
async def test_an_unwritable_cache_never_fails_a_validation(cache_dir: Path):
    _write(cache_dir, b"a file where the folder should be")
    report = await Engine(store()).validate(REFS, KEY)
    assert problems(report) == EXPECTED


def test_the_cache_path_follows_the_variable(tmp_path: Path):
    assert cache_path({"STACKSECRETS_CACHE_DIR": str(tmp_path)}) == tmp_path / "metadata.json"
    assert cache_path({}).name == "metadata.json"
    assert cache_path({}).parent.name == "stacksecrets"


def _read(path: Path) -> str:
    return path.read_text()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _temp_files(folder: Path) -> list[Path]:
    return [path for path in folder.iterdir() if path.name.endswith(".tmp")]


# --- trusted like a store file (issue 21, items 1 and 2) ---------------------------------------

#: A user id that is not ours (the tests run as root here: os.chown plays the other user).
OTHER_UID = 54321


def _planted(cache_dir: Path) -> Path:
    """A cache file as another user would plant it: the real ids and stamps (anyone may list
    them) and a key ``api`` lacks, so believing it would be a false pass."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache_dir.chmod(0o700)
    entry = {
        "id": "api-1",
        "stamp": "1",
        "keys": ["missing", "token"],
        "unreadable": [],
        "seen": time.time(),
    }
    document = {"format": 1, "scopes": {"stamping:// user=tester": {"api": entry}}}
    path = cache_dir / "metadata.json"
    _write(path, json.dumps(document).encode())
    path.chmod(0o600)
    return path


def _make_untrusted(path: Path, plant: str) -> None:
    folder = path.parent
    if plant == "file owned by another user":
        os.chown(path, OTHER_UID, OTHER_UID)
    elif plant == "file writable by others":
        path.chmod(0o602)
    elif plant == "file writable by the group":
        path.chmod(0o620)
    elif plant == "folder owned by another user":
        os.chown(folder, OTHER_UID, OTHER_UID)
    else:
        folder.chmod(0o777)


def _warnings(events: list[dict[str, object]]) -> list[str]:
    return [str(e["event"]) for e in events if e.get("log_level") == "warning"]


@pytest.mark.anyio
async def test_a_planted_cache_file_of_our_own_is_believed(cache_dir: Path):
    """The control for the tests below: the same file, ours and private, is used (so the
    planted key really would pass)."""
    _planted(cache_dir)
    report = await Engine(store()).validate(stacks("api.missing"), KEY)
    assert problems(report) == set()
    assert report.stats.metadata_hits == 1


@pytest.mark.anyio
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
@pytest.mark.parametrize(
    "plant",
    [
        "file owned by another user",
        "file writable by others",
        "file writable by the group",
        "folder owned by another user",
        "folder writable by everyone",
    ],
)
async def test_a_cache_others_could_have_written_is_ignored_with_a_warning(
    cache_dir: Path, plant: str
):
    """Issue 21 item 1: another user's cache file (or one others may write, or in a folder
    others own or may write) is never believed: the secret is read, the missing key reported,
    and a warning says why the cache was not used."""
    _make_untrusted(_planted(cache_dir), plant)
    checked = store()
    with structlog.testing.capture_logs() as events:
        report = await Engine(checked).validate(stacks("api.missing"), KEY)
    assert problems(report) == {("missing_key", "api", "missing")}
    assert report.stats.metadata_hits == 0
    assert checked.read_names == ["api"]
    assert "stacksecrets.metacache.unusable" in _warnings(events)


@pytest.mark.anyio
async def test_a_cache_in_a_sticky_shared_folder_of_ours_is_used(tmp_path: Path, monkeypatch):
    """A sticky world-writable folder (like /tmp): others cannot replace our file there."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.setenv("STACKSECRETS_CACHE_DIR", str(shared))
    await Engine(store()).validate(REFS, KEY)
    warm = store()
    await Engine(warm).validate(REFS, KEY)
    assert warm.read_names == []


def _validate_in_a_process(cache_dir: Path) -> subprocess.CompletedProcess[str]:
    """A key-level validation in a real process (a hang is a process-level fault)."""
    code = (
        "import anyio, test_metacache as t\n"
        "from stacksecrets._engine import Engine\n"
        "report = anyio.run(Engine(t.store()).validate, t.REFS, t.KEY)\n"
        "print(sorted(t.problems(report)))\n"
    )
    tests = str(Path(__file__).parent)
    env = {
        **os.environ,
        "STACKSECRETS_CACHE_DIR": str(cache_dir),
        "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_cache_path_that_is_a_fifo_or_dev_zero_is_skipped(cache_dir: Path, kind: str):
    """Issue 21 item 2: a FIFO (no writer: an open would block for good) or ``/dev/zero``
    (never ends) at the cache path: the validation answers (no hang, no MemoryError), reads
    every secret, and warns that the cache is not used."""
    cache_dir.mkdir(parents=True)
    path = cache_dir / "metadata.json"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    done = _validate_in_a_process(cache_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(sorted(EXPECTED))
    assert "metacache.unusable" in done.stderr or "metacache.unusable" in done.stdout
    assert "MemoryError" not in done.stderr
