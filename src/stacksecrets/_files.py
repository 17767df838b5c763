"""The safe-file room: every file stacksecrets reads or writes goes through here.

Reading (``read_regular``, ``aread_regular``):

- the file is opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open descriptor, so a
  FIFO never blocks the open and a file swapped after a ``stat`` is not read: only a regular file
  is read (a FIFO, device, socket or folder is ``NotRegularError``), unless the caller reads a
  stream on purpose (``streams=True``: a values file may be ``<(...)``);
- at most ``max_bytes`` are read (``TooLargeError`` past it: ``/dev/zero`` ends there too);
- with ``trust`` set, the owner and mode are checked (``untrusted_problem``): a file owned by
  another user, or in a folder anyone may write to, is ``UntrustedError``; the caller decides
  whether that refuses (a store) or ignores (a cache).

Writing (``awrite_atomically``): a 0600 temporary file in the same folder, flushed and fsynced,
``os.replace``-d onto the target, then the folder is fsynced: a reader sees the old file or the
new one, whole, and a crash leaves one of them.

Locking (``locked``): one cross-process ``filelock`` beside the file, polled with short sleeps so
cancellation (a deadline, Ctrl-C) is prompt; a lock file that is a symlink is refused (``ELOOP``).

Every message here names the path and what is wrong with it, never the file's content. The
exceptions are internal: callers turn them into their own (``StoreCorruptError``,
``StackLoadError``, ``ConfigurationError``, a warning).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal, Protocol

import anyio
import anyio.to_thread

from ._observe import waiting

__all__ = [
    "FILE_MODE",
    "FOLDER_MODE",
    "FileRefusedError",
    "LockBusyError",
    "LockFailedError",
    "NotRegularError",
    "TooLargeError",
    "UntrustedError",
    "aread_regular",
    "awrite_atomically",
    "create_private",
    "file_kind",
    "folder_problem",
    "fsync_folder",
    "locked",
    "open_regular",
    "prepare_target",
    "read_regular",
    "remove_stale_temps",
    "untrusted_problem",
    "utf8_text",
]

FILE_MODE = 0o600
FOLDER_MODE = 0o700
TEMP_SUFFIX = ".tmp"
_KIB = 1024
_MIB = 1024 * 1024
#: The longest sleep between two tries for a lock (tries start at 1 ms and double).
MAX_LOCK_POLL = 0.01

Trust = Literal["owner", "owner-and-mode"]


class FileRefusedError(Exception):
    """The file is not read: ``reason`` says why (never its content)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(path, reason)

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class NotRegularError(FileRefusedError):
    """A FIFO, device, socket or folder: it could block or never end."""


class TooLargeError(FileRefusedError):
    """More than the caller's cap."""


class UntrustedError(FileRefusedError):
    """Owned by another user, or replaceable (or writable) by others."""


class LockBusyError(TimeoutError):
    """Another process held the lock for longer than the caller's patience."""


class LockFailedError(OSError):
    """The lock file cannot be taken (``strerror``: the system's words, e.g. a symlink loop)."""


# --- reading -----------------------------------------------------------------------------------


def file_kind(mode: int) -> str:
    """What a path that is not a regular file is, in words."""
    for test, name in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a folder"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | os.PathLike[str], *, streams: bool = False) -> int:
    """A descriptor of the regular file ``path`` (``FileNotFoundError`` and other ``OSError``
    pass through); ``NotRegularError`` for anything else (``streams``: FIFOs and character
    devices are accepted, opened blocking, for a caller that reads a pipe on purpose)."""
    # O_NONBLOCK: opening a FIFO with no writer would block forever (and a thread cannot be
    # cancelled); for a regular file the flag changes nothing.
    nonblock = 0 if streams else getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | nonblock)
    try:
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise
    mode = st.st_mode
    if not stat.S_ISREG(mode) and not (streams and (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode))):
        os.close(fd)
        raise NotRegularError(os.fspath(path), f"is {file_kind(mode)}, not a regular file")
    return fd


def untrusted_problem(
    st: os.stat_result, path: str | os.PathLike[str], *, trust: Trust = "owner"
) -> str | None:
    """Why the file ``path`` (whose ``fstat`` is ``st``) must not be trusted, or ``None``.

    ``"owner"``: another user owns it, or its (real) folder lets anyone replace it
    (world-writable without the sticky bit). ``"owner-and-mode"``: also the file or its folder
    is writable by group or others, or the folder is owned by another user.
    """
    if os.name == "nt":  # pragma: no cover - no POSIX owners or modes
        return None
    me = os.geteuid()
    if st.st_uid not in (me, 0):  # root's own files are trusted, as ssh does
        return f"it is owned by user id {st.st_uid}, not by you (user id {me})"
    if trust == "owner-and-mode" and stat.S_IMODE(st.st_mode) & 0o022:
        return (
            f"other users may write it (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run: chmod go-w {path}"
        )
    return folder_problem(Path(os.path.realpath(path)).parent, trust=trust)


def folder_problem(folder: Path, *, trust: Trust = "owner") -> str | None:
    """Why files in ``folder`` could be replaced by other users, or ``None``."""
    if os.name == "nt":  # pragma: no cover
        return None
    st = folder.stat()
    folder_mode = st.st_mode
    if folder_mode & stat.S_IWOTH and not folder_mode & stat.S_ISVTX:
        return (
            f"its folder {folder} can be written by every user (mode "
            f"{stat.S_IMODE(folder_mode):04o}, no sticky bit), so anyone could replace it; "
            f"run: chmod o-w {folder}"
        )
    if trust == "owner-and-mode":
        me = os.geteuid()
        if st.st_uid not in (me, 0):
            return f"its folder {folder} is owned by user id {st.st_uid}, not by you (user id {me})"
        if folder_mode & stat.S_IWGRP and not folder_mode & stat.S_ISVTX:
            return (
                f"its folder {folder} can be written by its group (mode "
                f"{stat.S_IMODE(folder_mode):04o}); run: chmod g-w {folder}"
            )
    return None


def read_regular(
    path: str | os.PathLike[str],
    *,
    max_bytes: int,
    trust: Trust | None = None,
    streams: bool = False,
) -> tuple[bytes, os.stat_result]:
    """The bytes of ``path`` and the ``fstat`` of exactly that file (blocking; see the module
    doc). ``FileNotFoundError`` and other ``OSError`` pass through."""
    fd = open_regular(path, streams=streams)
    with os.fdopen(fd, "rb") as file:
        st = os.fstat(fd)
        _check(st, path, max_bytes, trust)
        data = file.read(max_bytes + 1)  # the file may grow after fstat
    if len(data) > max_bytes:
        raise TooLargeError(os.fspath(path), _too_large(max_bytes))
    return data, st


def _check(
    st: os.stat_result, path: str | os.PathLike[str], max_bytes: int, trust: Trust | None
) -> None:
    if trust is not None:
        problem = untrusted_problem(st, path, trust=trust)
        if problem is not None:
            raise UntrustedError(os.fspath(path), problem)
    if stat.S_ISREG(st.st_mode) and st.st_size > max_bytes:
        raise TooLargeError(os.fspath(path), _too_large(max_bytes))


def _too_large(max_bytes: int) -> str:
    for unit, size in (("MiB", _MIB), ("KiB", _KIB)):
        if max_bytes >= size and max_bytes % size == 0:
            return f"it is larger than {max_bytes // size} {unit}"
    return f"it is larger than {max_bytes} bytes"


class _AsyncBinaryFile(Protocol):
    async def read(self, size: int = -1, /) -> bytes: ...
    async def write(self, data: bytes, /) -> int: ...
    async def flush(self) -> None: ...


def _on_asyncio() -> bool:
    try:
        import sniffio
    except ImportError:  # trio depends on sniffio, so without it the loop is asyncio
        return True
    return sniffio.current_async_library() == "asyncio"


@asynccontextmanager
async def _open_fd(fd: int, mode: Literal["rb", "wb"]) -> AsyncIterator[_AsyncBinaryFile]:
    """The one place that chooses the async file API: aiofiles on asyncio, anyio's files on
    trio. The file takes ownership of ``fd`` and closes it."""
    if _on_asyncio():
        import aiofiles

        async with aiofiles.open(fd, mode) as file:
            yield file
    else:
        async with await anyio.open_file(fd, mode) as anyio_file:
            yield anyio_file


async def aread_regular(
    path: Path, *, max_bytes: int, trust: Trust | None = None
) -> tuple[bytes, os.stat_result]:
    """``read_regular`` in one worker thread, on any event loop.

    A whole file of at most ``max_bytes`` is read by one blocking sequence (open, ``fstat``,
    check, one read) whatever API wraps it, so it is one trip to a worker thread, not four
    (an async file's open, ``fstat``, check and read each took one): the store's reads start
    faster and ``aiofiles`` is imported by the first write, not by every validation."""
    return await anyio.to_thread.run_sync(_read_regular_checked, path, max_bytes, trust)


def _read_regular_checked(
    path: Path, max_bytes: int, trust: Trust | None
) -> tuple[bytes, os.stat_result]:
    return read_regular(path, max_bytes=max_bytes, trust=trust)


# --- writing -----------------------------------------------------------------------------------


def create_private(path: Path) -> int:
    """A new file, 0600 whatever the umask, opened for writing (``O_EXCL``)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, FILE_MODE)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, FILE_MODE)  # whatever the umask did
    except BaseException:
        os.close(fd)
        raise
    return fd


def temp_path(target: Path) -> Path:
    """A fresh temporary name beside ``target`` (found again by ``remove_stale_temps``)."""
    import secrets  # for writes only (it imports hashlib and random)

    return target.with_name(f".{target.name}.{secrets.token_hex(8)}{TEMP_SUFFIX}")


def remove_stale_temps(target: Path) -> int:
    """Remove temporary files left by killed writers of ``target``; call it under the lock."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[0-9a-f]{{16}}{re.escape(TEMP_SUFFIX)}")
    removed = 0
    for entry in target.parent.iterdir():
        if pattern.fullmatch(entry.name):
            entry.unlink(missing_ok=True)
            removed += 1
    return removed


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open folders; NTFS journals renames
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # some file systems cannot sync folders
            raise
    finally:
        os.close(fd)


async def awrite_atomically(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` whole, or leave it as it was: a 0600 temporary file in
    the same folder, flushed and fsynced, renamed onto ``target``, then the folder fsynced."""
    temp = temp_path(target)
    fd = await anyio.to_thread.run_sync(create_private, temp)
    try:
        async with _open_fd(fd, "wb") as file:
            await file.write(data)
            await file.flush()
            await anyio.to_thread.run_sync(os.fsync, fd)
        await anyio.to_thread.run_sync(os.replace, temp, target)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(lambda: temp.unlink(missing_ok=True))
        raise
    await anyio.to_thread.run_sync(fsync_folder, target.parent)


# --- locking -----------------------------------------------------------------------------------


@asynccontextmanager
async def locked(lock_path: str, *, patience: float, what: str) -> AsyncIterator[None]:
    """Hold the cross-process lock file ``lock_path``, polling with short sleeps so that
    cancellation is prompt (a blocking ``acquire`` in a worker thread could not be cancelled).

    ``LockBusyError`` after ``patience`` seconds; ``LockFailedError`` when the lock file cannot
    be taken (``ELOOP``: filelock refuses a lock file that is a symlink). While another process
    holds it, the observer is told (``what`` names it).
    """
    import filelock  # start-up: only commands that write take a lock

    lock = filelock.FileLock(lock_path, mode=FILE_MODE, thread_local=False)
    delay = 0.001
    told = False
    with contextlib.ExitStack() as wait:
        with anyio.move_on_after(patience):
            while True:
                try:
                    await anyio.to_thread.run_sync(lambda: lock.acquire(blocking=False))
                except filelock.Timeout:
                    if not told:  # held by another process: say so while waiting
                        told = True
                        wait.enter_context(waiting(what))
                    await anyio.sleep(delay)
                    delay = min(delay * 2, MAX_LOCK_POLL)
                except OSError as exc:
                    reason = exc.strerror or type(exc).__name__
                    raise LockFailedError(exc.errno, reason, lock_path) from None
                else:
                    break
        if not lock.is_locked:
            raise LockBusyError(lock_path)
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(lock.release)


def prepare_target(path: Path) -> Path:
    """The real file to write (through symlinks), with every missing folder created 0700."""
    target = Path(os.path.realpath(path))
    missing = []
    folder = target.parent
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):  # outermost first; `mkdir(parents=True)` would use umask
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # made by another writer meanwhile: left as that writer made it
        folder.chmod(FOLDER_MODE)  # whatever the umask did
    return target


def utf8_text(raw: bytes) -> str | int:
    """The text of ``raw`` (a BOM dropped), or the 1-based line of its first byte that is not
    UTF-8. The decode error, which holds all of ``raw``, never leaves: callers raise outside."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start
    return raw.count(b"\n", 0, start) + 1
