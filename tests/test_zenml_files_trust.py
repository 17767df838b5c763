"""ZenML's own files (``config.yaml``, ``credentials.yaml``) are read through the safe-file room
and the shared YAML reader (issue 21, item 3): tags, depth, devices and FIFOs end in a clean
error naming the file, with no traceback and no text of the file in any message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stacksecrets import ConfigurationError
from stacksecrets.stores._discovery import discover, saved_login

SERVER = "http://127.0.0.1:8237"
CREDENTIAL = "ZENKEY_credential_do_not_show_42"


def _config(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(f"store:\n  type: rest\n  url: {SERVER}\n")
    return folder


def _messages(error: BaseException) -> str:
    """Every message in the chain (cause and context), as a traceback would show them."""
    seen: list[str] = []
    current: BaseException | None = error
    while current is not None:
        seen.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\n".join(seen)


@pytest.mark.parametrize("tag", ["!!int", "!!float", "!!bool", "!!timestamp"])
def test_a_yaml_tag_on_a_credential_is_a_clean_error_without_the_credential(
    tmp_path: Path, tag: str
) -> None:
    folder = _config(tmp_path / "z")
    (folder / "credentials.yaml").write_text(f"{SERVER}:\n  api_key: {tag} {CREDENTIAL}\n")
    with pytest.raises(ConfigurationError) as caught:
        saved_login(SERVER, {"ZENML_CONFIG_PATH": str(folder)})
    assert "credentials.yaml" in str(caught.value)
    assert "line 2" in str(caught.value)
    assert CREDENTIAL not in _messages(caught.value)
    assert "ZENKEY" not in _messages(caught.value)


@pytest.mark.parametrize("name", ["config.yaml", "credentials.yaml"])
def test_a_file_nested_fifty_thousand_deep_is_a_clean_error(tmp_path: Path, name: str) -> None:
    folder = _config(tmp_path / "z")
    deep = "[" * 50_000 + "]" * 50_000
    text = f"{SERVER}:\n  api_key: {deep}\n" if name == "credentials.yaml" else f"x: {deep}\n"
    (folder / name).write_text(text)
    # libyaml stops at 1,000 flow levels itself, the pure-Python parser at our cap of 100.
    with pytest.raises(ConfigurationError, match=rf"{name} is not valid YAML.*(nest|deeper)"):
        saved_login(SERVER, {"ZENML_CONFIG_PATH": str(folder)})


def _cli_in_a_process(folder: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STACKSECRETS_STORE", "ZENML_STORE", "VAULT_", "AWS_"))
    }
    env.update({"ZENML_CONFIG_PATH": str(folder), "HOME": str(home)})
    command = [sys.executable, "-m", "stacksecrets", "--deadline", "5", "secret", "list"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=90, check=False)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
@pytest.mark.parametrize("name", ["config.yaml", "credentials.yaml"])
def test_a_fifo_or_dev_zero_is_a_clean_error_not_a_hang(tmp_path: Path, kind: str, name: str):
    """A real process: the command ends (no hang on the FIFO, no MemoryError on /dev/zero)
    with an error naming the file and what it is, and no traceback."""
    folder = _config(tmp_path / "z")
    path = folder / name
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    done = _cli_in_a_process(folder, tmp_path)
    assert done.returncode != 0
    assert name in done.stderr
    assert ("FIFO" if kind == "fifo" else "character device") in done.stderr
    assert "Traceback" not in done.stderr
    assert "MemoryError" not in done.stderr


def test_discovery_still_reads_what_zenml_writes(tmp_path: Path) -> None:
    """The control: a plain config and a login with an expiry timestamp (as ZenML writes)."""
    folder = _config(tmp_path / "z")
    (folder / "credentials.yaml").write_text(
        f"{SERVER}:\n  api_key: {CREDENTIAL}\n  expires_at: 2030-01-01 00:00:00\n"
    )
    env = {"ZENML_CONFIG_PATH": str(folder)}
    assert discover(env).url is not None
    login = saved_login(SERVER, env)
    assert login is not None
    assert login.api_key == CREDENTIAL
