"""The safe-file room (``stacksecrets._files``) on its own: what it reads, what it refuses, and
how it writes. The stores' and loaders' own tests show each caller's policy on top of it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import anyio
import pytest

from stacksecrets import _files as files

OTHER_UID = 54321


def test_a_regular_file_is_read_with_its_fstat(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"data")
    data, st = files.read_regular(path, max_bytes=10)
    assert data == b"data"
    assert stat.S_ISREG(st.st_mode)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "folder"])
def test_anything_but_a_regular_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    """A FIFO with no writer (a blocking open would never return), a device, a folder."""
    path = tmp_path / "f"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    with pytest.raises(files.NotRegularError, match="not a regular file"):
        files.read_regular(path, max_bytes=10)


def test_a_stream_is_read_capped_when_the_caller_asks(tmp_path: Path) -> None:
    """``streams=True`` (values files: ``<(...)``): a device is read up to the cap only."""
    with pytest.raises(files.TooLargeError, match="larger than 1 KiB"):
        files.read_regular("/dev/zero", max_bytes=1024, streams=True)


def test_a_file_over_the_cap_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 11)
    with pytest.raises(files.TooLargeError, match="larger than 10 bytes"):
        files.read_regular(path, max_bytes=10)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_owner_and_mode_are_checked_as_the_caller_asks(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    path.chmod(0o666)
    assert files.read_regular(path, max_bytes=10, trust="owner")[0] == b"x"
    with pytest.raises(files.UntrustedError, match="other users may write it"):
        files.read_regular(path, max_bytes=10, trust="owner-and-mode")
    path.chmod(0o600)
    os.chown(path, OTHER_UID, OTHER_UID)
    with pytest.raises(files.UntrustedError, match=f"owned by user id {OTHER_UID}"):
        files.read_regular(path, max_bytes=10, trust="owner")
    assert files.read_regular(path, max_bytes=10)[0] == b"x"  # no trust asked: read


@pytest.mark.anyio
async def test_an_atomic_write_is_private_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    await files.awrite_atomically(target, b"first")
    await files.awrite_atomically(target, b"second")
    assert await anyio.Path(target).read_bytes() == b"second"
    assert stat.S_IMODE((await anyio.Path(target).stat()).st_mode) == 0o600
    assert [p.name async for p in anyio.Path(tmp_path).iterdir()] == ["out.json"]


@pytest.mark.anyio
async def test_a_held_lock_is_waited_for_then_given_up(tmp_path: Path) -> None:
    lock_file = str(tmp_path / "x.lock")
    async with files.locked(lock_file, patience=1, what="test"):
        with pytest.raises(files.LockBusyError):
            async with files.locked(lock_file, patience=0.05, what="test"):
                pass  # pragma: no cover
    async with files.locked(lock_file, patience=1, what="test"):
        pass  # released: taken again at once
