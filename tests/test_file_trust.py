"""The local store refuses files it cannot trust, and stores refuse to be pickled.

Real files, real FIFOs and devices, real processes: special files (a FIFO, /dev/zero), the
size cap, a plain file in place of an encrypted store and an old ciphertext replayed, a lock
file planted as a symlink, another user's file and a folder anyone can write to, folders made
under ``umask 0``, a named store file that does not exist, and the write rules of update.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from cryptography.fernet import Fernet

from cli_runner import Cli, Ran
from stacksecrets import ConfigurationError, ForbiddenError, StoreCorruptError, StoreError
from stacksecrets.cli._secret import check_update
from stacksecrets.stores import FileStore, MemoryStore, ZenMLStore, _file, open_store

VALUE = "trust-value-never-shown"
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run_cli(*args: str, env: dict[str, str] | None = None) -> Ran:
    """The command in this process (tests/cli_runner.py)."""
    return Cli().invoke(*args, env=env)


def run_process(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    """The command in a real process (where opening a file could block the test)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("STACKSECRETS_", "ZENML_"))}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "stacksecrets", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
        check=False,
    )


async def _read(store: FileStore) -> list[str]:
    async with store:
        return await store.list_secrets()


def read(store: FileStore) -> list[str]:
    return anyio.run(_read, store)


async def _create(store: FileStore, name: str, values: dict[str, str]) -> None:
    async with store:
        await store.create_secret(name, values)


def create(store: FileStore, name: str = "db", values: dict[str, str] | None = None) -> None:
    anyio.run(_create, store, name, values or {"password": VALUE})


# --- special files and the size cap (item 5) ------------------------------------------------


def test_a_fifo_store_path_is_refused_at_once_in_a_real_process(tmp_path: Path):
    """Opening a FIFO with no writer would block forever (no deadline or Ctrl-C helps): it is
    refused as not a regular file, reads and writes alike, and the FIFO is left alone."""
    fifo = tmp_path / "secrets.json"
    os.mkfifo(fifo)
    env = {"STACKSECRETS_STORE": fifo.as_uri()}
    for args in (
        ["secret", "list"],
        ["secret", "create", "db", "--k=v"],
        ["validate", str(EXAMPLES / "stacks")],
    ):
        started = time.monotonic()
        result = run_process(*args, env=env, timeout=30)
        assert time.monotonic() - started < 20
        assert result.returncode == 2, (args, result.stderr)
        assert "is a FIFO (named pipe), not a regular file" in result.stderr
        assert str(fifo) in result.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_store_linked_to_a_device_is_refused_without_reading_it(tmp_path: Path):
    link = tmp_path / "secrets.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(StoreCorruptError, match="is a character device, not a regular file"):
        read(FileStore(link))


def test_a_store_file_over_the_size_cap_is_refused_naming_path_and_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "secrets.json"
    create(FileStore(path, keys=[]))
    monkeypatch.setattr(_file, "MAX_STORE_BYTES", 1024 * 1024)
    with path.open("ab") as file:  # trailing whitespace keeps it valid JSON, just too large
        file.write(b" " * 1024 * 1024)
    with pytest.raises(StoreCorruptError, match=r"larger than 1 MiB") as caught:
        read(FileStore(path, keys=[]))
    assert str(path) in str(caught.value)


# --- encrypted stores: plaintext and replay (item 6) -----------------------------------------


def test_a_plain_file_in_place_of_an_encrypted_store_is_refused_and_kept(tmp_path: Path):
    path = tmp_path / "secrets.json"
    key = Fernet.generate_key().decode()
    create(FileStore(path, keys=[key]))
    planted = json.dumps({"version": 1, "secrets": {"db": {"password": "attacker"}}})
    path.write_text(planted)
    for action in (
        lambda: read(FileStore(path, keys=[key])),
        lambda: create(FileStore(path, keys=[key]), "other"),
    ):
        with pytest.raises(StoreCorruptError, match="STACKSECRETS_FILE_ALLOW_PLAINTEXT=1"):
            action()
    assert path.read_text() == planted  # never re-encrypted silently
    # Saying so on purpose (the variable or the argument) reads it, and the next write encrypts.
    assert read(FileStore(path, keys=[key], allow_plaintext=True)) == ["db"]


def test_the_plaintext_variable_is_honoured_by_the_cli(tmp_path: Path):
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"version": 1, "secrets": {"db": {"password": VALUE}}}))
    env = {
        "STACKSECRETS_STORE": path.as_uri(),
        "STACKSECRETS_FILE_KEY": Fernet.generate_key().decode(),
    }
    refused = run_cli("secret", "list", env=env)
    assert refused.returncode == 2
    assert "not encrypted" in refused.stderr
    allowed = run_cli(
        "secret", "create", "x", "--k=v", env={**env, "STACKSECRETS_FILE_ALLOW_PLAINTEXT": "1"}
    )
    assert allowed.returncode == 0, allowed.stderr
    assert VALUE.encode() not in path.read_bytes()
    assert run_cli("secret", "list", env=env).stdout.split() == ["db", "x"]


def test_an_old_ciphertext_replayed_is_refused(tmp_path: Path):
    """Each write counts a generation inside the ciphertext and in a 0600 side file; a copy
    older than the side file's count is refused (reads and writes) until the side file goes."""
    path = tmp_path / "secrets.json"
    key = Fernet.generate_key().decode()
    create(FileStore(path, keys=[key]), "first")
    old = path.read_bytes()
    create(FileStore(path, keys=[key]), "second")
    side = tmp_path / "secrets.json.generation"
    assert side.read_text().strip() == "2"
    assert stat.S_IMODE(side.stat().st_mode) == 0o600
    path.write_bytes(old)
    for action in (
        lambda: read(FileStore(path, keys=[key])),
        lambda: create(FileStore(path, keys=[key]), "third"),
    ):
        with pytest.raises(StoreCorruptError, match=r"older copy \(generation 1\).*generation 2"):
            action()
    assert path.read_bytes() == old
    side.unlink()  # restored on purpose
    assert read(FileStore(path, keys=[key])) == ["first"]


# --- the writers' lock file (item 8) -------------------------------------------------------


def test_a_lock_file_planted_as_a_symlink_does_not_truncate_its_target(tmp_path: Path):
    """filelock >= 3.20.1 refuses a symlinked lock file (3.20.0 and older truncated the
    target: checked by installing each version); the write fails and the target is intact."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious content\n")
    path = tmp_path / "secrets.json"
    (tmp_path / "secrets.json.lock").symlink_to(victim)
    with pytest.raises(StoreError, match="cannot take the lock file"):
        create(FileStore(path, keys=[]))
    assert victim.read_text() == "precious content\n"
    assert not path.exists()


# --- pickling (item 9) ---------------------------------------------------------------------


def test_stores_refuse_pickling(tmp_path: Path):
    """A pickled store would carry its key, token or the values it read, in the clear."""
    key = Fernet.generate_key().decode()
    file_store = FileStore(tmp_path / "s.json", keys=[key])
    create(FileStore(tmp_path / "s.json", keys=[key]))
    read(file_store)  # a store that has read values
    stores = [
        file_store,
        MemoryStore({"db": {"password": VALUE}}),
        ZenMLStore("http://127.0.0.1:9", username="u", password=VALUE),
    ]
    for store in stores:
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            with pytest.raises(TypeError, match="cannot be pickled") as caught:
                pickle.dumps(store, protocol=protocol)
            assert VALUE not in str(caught.value)
            assert key not in str(caught.value)


# --- owner, folder mode, umask (item 16) ---------------------------------------------------


@pytest.mark.skipif(os.name == "nt", reason="POSIX owners and modes")
def test_folders_are_created_0700_under_umask_zero(tmp_path: Path):
    """Every missing folder, not only the last, whatever the umask (a real process)."""
    path = tmp_path / "a" / "b" / "c" / "secrets.json"
    code = (
        "import os, anyio; os.umask(0)\n"
        "from stacksecrets.stores import FileStore\n"
        "async def main():\n"
        f"    async with FileStore({str(path)!r}, keys=[]) as s:\n"
        "        await s.create_secret('db', {'k': 'v'})\n"
        "anyio.run(main)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    for folder in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_a_store_file_owned_by_another_user_is_refused(tmp_path: Path):
    path = tmp_path / "secrets.json"
    create(FileStore(path, keys=[]))
    os.chown(path, 4242, 4242)
    with pytest.raises(ForbiddenError, match="owned by user id 4242"):
        read(FileStore(path, keys=[]))
    result = run_cli("secret", "list", env={"STACKSECRETS_STORE": path.as_uri()})
    assert result.returncode == 2
    assert "owned by user id 4242" in result.stderr


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_a_store_in_a_world_writable_folder_without_sticky_bit_is_refused(tmp_path: Path):
    folder = tmp_path / "open"
    folder.mkdir()
    path = folder / "secrets.json"
    create(FileStore(path, keys=[]))
    folder.chmod(0o777)
    with pytest.raises(ForbiddenError, match="can be written by every user"):
        read(FileStore(path, keys=[]))
    with pytest.raises(ForbiddenError, match="can be written by every user"):
        create(FileStore(path, keys=[]), "other")
    folder.chmod(0o1777)  # sticky, as /tmp: others cannot replace our file
    assert read(FileStore(path, keys=[])) == ["db"]


# --- a named store file that does not exist (item 18) --------------------------------------


def test_a_named_store_file_that_does_not_exist_is_an_error_for_reads(tmp_path: Path):
    typo = tmp_path / "secrets-typo.json"
    env = {"STACKSECRETS_STORE": typo.as_uri()}
    listed = run_cli("secret", "list", env=env)
    assert listed.returncode == 2
    assert f"the store file {typo} does not exist" in listed.stderr
    assert listed.stdout == ""
    validated = run_cli("validate", str(EXAMPLES / "stacks"), "--store", typo.as_uri())
    assert validated.returncode == 2
    assert "does not exist" in validated.stderr
    assert not typo.exists()
    created = run_cli("secret", "create", "db", "--k=v", env=env)  # a write creates it
    assert created.returncode == 0, created.stderr
    assert run_cli("secret", "list", env=env).stdout == "db\n"


def test_the_default_store_stays_implicitly_empty(tmp_path: Path):
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path)}
    listed = run_cli("secret", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []


def test_the_report_names_the_store_it_checked(tmp_path: Path):
    store = tmp_path / "secrets.json"
    shutil.copy(EXAMPLES / "secrets.json", store)
    store.chmod(0o600)
    text = run_cli("validate", str(EXAMPLES / "stacks"), "--store", store.as_uri())
    assert text.returncode == 0, text.stderr
    assert f"Store: file://{store}" in text.stdout
    as_json = run_cli("validate", str(EXAMPLES / "stacks"), "--store", store.as_uri(), "--json")
    assert json.loads(as_json.stdout)["store"] == f"file://{store}"


def test_open_store_knows_a_named_file_from_the_default(tmp_path: Path):
    named = open_store((tmp_path / "x.json").as_uri(), environ={})
    assert isinstance(named, FileStore)
    assert named.missing_ok is False
    from_env = open_store(None, environ={"STACKSECRETS_STORE": (tmp_path / "y.json").as_uri()})
    assert isinstance(from_env, FileStore)
    assert from_env.missing_ok is False
    default = open_store(None, environ={})
    assert isinstance(default, FileStore)
    assert default.missing_ok is True


# --- update rules (item 22) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "remove", "message"),
    [
        ({"k": "new"}, ["k"], "both set and removed"),
        ({}, ["nokey"], "has no key"),
        ({}, ["k", "j"], "removing every key"),
    ],
)
def test_check_update_refuses_updates_that_cannot_mean_what_they_say(
    values: dict[str, str], remove: list[str], message: str
):
    """The CLI's rules (the store contract itself lets an update remove absent keys)."""
    with pytest.raises(ConfigurationError, match=message):
        check_update("db", {"k": "1", "j": "2"}, values, remove)
    assert check_update("db", {"k": "1", "j": "2"}, {"k": "2"}, ["j"]) == {"k": "2"}


def test_the_cli_refuses_the_same_updates_with_exit_two(tmp_path: Path):
    env = {"STACKSECRETS_STORE": (tmp_path / "s.json").as_uri()}
    assert run_cli("secret", "create", "db", "--k=1", "--j=2", env=env).returncode == 0
    for args, message in (
        (["--k=new", "--remove-key", "k"], "both set and removed"),
        (["--remove-key", "nokey"], "has no key"),
        (["--remove-key", "k", "--remove-key", "j"], "removing every key"),
    ):
        result = run_cli("secret", "update", "db", *args, env=env)
        assert result.returncode == 2, (args, result.stdout)
        assert message in result.stderr
        assert "Updated" not in result.stdout
    shown = run_cli("secret", "get", "db", "--show-values", "--json", env=env)
    assert json.loads(shown.stdout)["values"] == {"j": "2", "k": "1"}


# --- names for writes (item 23) ------------------------------------------------------------


@pytest.mark.parametrize("name", ["a.b", "my secret", "tab\tname", "x}}", "a b.c"])
def test_the_cli_refuses_names_no_reference_can_use(tmp_path: Path, name: str):
    env = {"STACKSECRETS_STORE": (tmp_path / "s.json").as_uri()}
    result = run_cli("secret", "create", name, "--k=v", env=env)
    assert result.returncode == 2
    assert "no reference could name a secret called" in result.stderr
    assert not (tmp_path / "s.json").exists()


def test_a_name_starting_with_a_dash_is_refused_with_a_hint(tmp_path: Path):
    env = {"STACKSECRETS_STORE": (tmp_path / "s.json").as_uri()}
    result = run_cli(
        "secret", "create", "--", "--k=v", "--store", "file:///elsewhere.json", env=env
    )
    assert result.returncode == 2
    assert "cannot start with '-'" in result.stderr
    assert "secret create NAME --key=value" in result.stderr
    assert not Path("/elsewhere.json").exists()


@pytest.mark.parametrize("name", ["db", "aws-prod", "a_b", "ünï", "x/y"])
def test_names_a_reference_can_use_are_created(tmp_path: Path, name: str):
    env = {"STACKSECRETS_STORE": (tmp_path / "s.json").as_uri()}
    result = run_cli("secret", "create", name, "--k=v", env=env)
    assert result.returncode == 0, result.stderr
