"""The embedded default store: one JSON file per store (``file://``).

See ``docs/file-store.md`` for the format, URL forms and guarantees. In short: reads never take
a lock (writes replace the file atomically, so a reader sees the old or the new file, whole);
writes are read-modify-write under a cross-process ``filelock`` beside the store file, go to a
0600 temporary file in the same folder, are flushed and fsynced, then ``os.replace``-d onto the
store file, and the folder is fsynced. A file that cannot be parsed is never overwritten.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import anyio
import anyio.to_thread

from .. import _files as files
from .. import _strictjson
from .._describe import kind_of
from .._errors import (
    ConfigurationError,
    ForbiddenError,
    SecretExistsError,
    SecretNotFoundError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from .._logging import logger
from .._secret import Secret
from ._base import StoreBase, StoreCapabilities, check_write, merge_update
from ._crypto import KEY_VARIABLE, SCHEME, FileCrypto, keys_from_env
from ._urls import StoreURL, parse_store_url

FORMAT_VERSION = 1
#: A read is reused only when the file's ctime is older than this at the time of the read:
#: file timestamps are coarse (a jiffy on Linux, up to 2 s elsewhere), so a change made in the
#: same tick as the read would leave every stat field as it was.
_TRUSTED_AGE_NS = 2_000_000_000
#: Errors worth asking again for: the engine retries ``StoreUnavailableError``.
_TRANSIENT_ERRNOS = frozenset(
    {errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.ESTALE}
)
#: A store file larger than this is refused (``StoreCorruptError``) before it is parsed: a
#: store of 10,000 secrets with a few keys each is about 2 MiB.
MAX_STORE_BYTES = 64 * 1024 * 1024
#: Set to 1 to read a plain store file although ``STACKSECRETS_FILE_KEY`` is set (once, to
#: encrypt a plain store: the next write encrypts it).
ALLOW_PLAINTEXT_VARIABLE = "STACKSECRETS_FILE_ALLOW_PLAINTEXT"
#: Beside an encrypted store: the highest generation written or read, to refuse an older copy.
_GENERATION_SUFFIX = ".generation"


# --- The document ----------------------------------------------------------------------------


# Plain classes: built at every start-up (an attrs class costs half a millisecond to build),
# never compared, and their reprs show no secret.


class _Document:
    """The parsed store file. ``extra`` keeps top-level fields this version does not use."""

    __slots__ = ("extra", "generation", "secrets")

    def __init__(
        self,
        secrets: dict[str, dict[str, str]] | None = None,
        extra: dict[str, Any] | None = None,
        generation: int | None = None,
    ) -> None:
        self.secrets: dict[str, dict[str, str]] = {} if secrets is None else secrets
        self.extra: dict[str, Any] = {} if extra is None else extra
        #: For an encrypted file: how many writes made it (inside the ciphertext), else ``None``.
        self.generation = generation

    def __repr__(self) -> str:
        return f"_Document(generation={self.generation!r})"


class _Snapshot:
    """The last read: reused while the file's identity and timestamps are unchanged."""

    __slots__ = ("document", "key", "trusted")

    def __init__(self, key: tuple[int, ...], trusted: bool, document: _Document) -> None:
        self.key = key
        self.trusted = trusted
        self.document = document

    def __repr__(self) -> str:
        return f"_Snapshot(key={self.key!r}, trusted={self.trusted!r})"


def _stat_key(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _kind(value: object) -> str:
    """The JSON type of ``value``, for messages that must not show the value itself."""
    return kind_of(value, mapping="an object", sequence="an array")


def _load_json(data: bytes) -> tuple[Any, str | None]:
    """The parsed JSON, or what is wrong with it (no exception leaves holding the file)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = exc.start
        return None, f"it is not UTF-8 text (bad byte at offset {start})"
    raw, problem = _strictjson.loads(text)
    if problem is None:
        return raw, None
    if problem.kind == "duplicate":
        return None, f"the name or key {problem.detail!r} appears twice in one object"
    if problem.kind == "syntax":
        return (
            None,
            f"invalid JSON ({problem.detail} at line {problem.line} column {problem.column})",
        )
    if problem.kind == "depth":
        return None, "invalid JSON (nested too deeply)"
    return None, "invalid JSON (a number too large to read)"


def _parse(
    data: bytes,
    path: Path,
    crypto: FileCrypto | None = None,
    *,
    allow_plaintext: bool = True,
    _inner: bool = False,
) -> _Document:
    """The document in ``data``; else ``StoreCorruptError`` saying what is wrong, never content.

    An encrypted file (see ``_crypto.py``) is decrypted with ``crypto`` first. With ``crypto``
    and not ``allow_plaintext``, a plain file is refused: it may have replaced an encrypted one.
    """

    def corrupt(problem: str) -> StoreCorruptError:
        return StoreCorruptError(
            f"the store file {path} is not a valid stacksecrets store: {problem}. "
            "stacksecrets will not overwrite it; fix or move it."
        )

    if not data.strip():
        return _Document()  # an empty file (``touch``) holds no secrets: an empty store
    raw, problem = _load_json(data)
    if problem is not None:
        raise corrupt(problem)
    if not isinstance(raw, dict):
        raise corrupt(f"the top level must be an object, found {_kind(raw)}")
    if "encryption" in raw and not _inner:
        return _parse(_decrypted(raw, path, crypto, corrupt), path, _inner=True)
    if crypto is not None and not allow_plaintext:
        raise StoreCorruptError(
            f"the store file {path} is not encrypted, but {KEY_VARIABLE} is set: it may have "
            "replaced the encrypted store. stacksecrets will not read or overwrite it. To "
            f"encrypt a plain store on purpose, set {ALLOW_PLAINTEXT_VARIABLE}=1 for one write "
            "(or pass allow_plaintext=True)."
        )
    generation = raw.pop("generation", None) if _inner else None
    if _inner and (type(generation) is not int or generation < 0):
        generation = 0  # written before generations were counted
    version = raw.pop("version", None)
    if type(version) is not int or version != FORMAT_VERSION:
        if type(version) is int and version > FORMAT_VERSION:
            raise corrupt(
                f"it has format version {version}, newer than this stacksecrets reads "
                f"({FORMAT_VERSION}); upgrade stacksecrets"
            )
        raise corrupt(f'"version" must be {FORMAT_VERSION}')
    stored = raw.pop("secrets", {})
    if not isinstance(stored, dict):
        raise corrupt(f'"secrets" must be an object, found {_kind(stored)}')
    for name, values in stored.items():
        if not isinstance(values, dict):
            raise corrupt(
                f"the secret {name!r} must be an object of strings, found {_kind(values)}"
            )
        for key, value in values.items():
            if not isinstance(value, str):
                raise corrupt(
                    f"the key {key!r} of secret {name!r} holds {_kind(value)}, not a string"
                )
    return _Document(stored, raw, generation)


def _decrypted(
    raw: dict[str, Any],
    path: Path,
    crypto: FileCrypto | None,
    corrupt: Callable[[str], StoreCorruptError],
) -> bytes:
    token = raw.get("ciphertext")
    if raw.get("encryption") != SCHEME or not isinstance(token, str):
        raise corrupt(f'"encryption" must be "{SCHEME}", with the "ciphertext" a string')
    if crypto is None:
        raise ConfigurationError(
            f"the store file {path} is encrypted: set {KEY_VARIABLE} to its key"
        )
    plain = crypto.decrypt(token)
    if plain is None:
        raise StoreCorruptError(
            f"the store file {path} cannot be decrypted with the key(s) in {KEY_VARIABLE}: "
            "a wrong key, or the file was changed. stacksecrets will not overwrite it."
        )
    return plain


def _dump(document: _Document, crypto: FileCrypto | None = None) -> bytes:
    # ASCII escapes keep any Python string (lone surrogates too) round-tripping exactly.
    # Sorted names and keys keep diffs and backups of the file stable.
    stored = {
        name: dict(sorted(document.secrets[name].items())) for name in sorted(document.secrets)
    }
    content: dict[str, Any] = {"version": FORMAT_VERSION}
    if crypto is not None:
        content["generation"] = document.generation or 0
    content.update(document.extra)
    content["secrets"] = stored
    plain = (json.dumps(content, indent=2, ensure_ascii=True) + "\n").encode()
    if crypto is None:
        return plain
    envelope = {
        "version": FORMAT_VERSION,
        "encryption": SCHEME,
        "ciphertext": crypto.encrypt(plain),
    }
    return (json.dumps(envelope, indent=2) + "\n").encode()


# --- Blocking helpers, run in worker threads --------------------------------------------------


def _generation_path(target: Path) -> Path:
    return target.with_name(target.name + _GENERATION_SUFFIX)


def _read_generation(path: Path) -> tuple[int | None, Path]:
    """The generation last written beside the store file ``path`` (``None``: no side file; 0:
    the side file is unusable), and the side file's path."""
    side = _generation_path(Path(os.path.realpath(path)))
    try:
        text, _st = files.read_regular(side, max_bytes=32)
    except FileNotFoundError:
        return None, side
    except files.FileRefusedError:
        return 0, side
    try:
        return max(int(text.decode("ascii").strip()), 0), side
    except (UnicodeDecodeError, ValueError):
        return 0, side


# --- File operations ---------------------------------------------------------------------------


async def _read_file(path: Path) -> tuple[bytes, os.stat_result] | None:
    """The file's bytes and the stat of exactly that file; ``None`` when it does not exist.

    Only a regular file owned by the user (or root), in a folder others cannot write to, of at
    most ``MAX_STORE_BYTES``, is read; anything else is a ``StoreCorruptError`` or
    ``ForbiddenError`` naming the path.
    """
    try:
        return await files.aread_regular(path, max_bytes=MAX_STORE_BYTES, trust="owner")
    except FileNotFoundError:
        return None
    except files.NotRegularError as exc:
        raise StoreCorruptError(
            f"the store file {path} {exc.reason}; stacksecrets reads only regular files"
        ) from None
    except files.UntrustedError as exc:
        raise ForbiddenError(
            f"stacksecrets will not use the store file {path}: {exc.reason}"
        ) from None
    except files.TooLargeError:
        raise StoreCorruptError(
            f"the store file {path} is larger than {MAX_STORE_BYTES // (1024 * 1024)} MiB, "
            "the most stacksecrets reads"
        ) from None


@asynccontextmanager
async def _writers_lock(target: Path, *, patience: float, path: Path) -> AsyncIterator[None]:
    """The cross-process writers' lock beside the store file, as the store's errors."""
    lock_file = f"{target}.lock"
    what = f"the lock file {lock_file} (another writer holds it)"
    try:
        async with files.locked(lock_file, patience=patience, what=what):
            yield
    except files.LockBusyError:
        raise StoreUnavailableError(
            f"the store file {path} stayed locked by another writer for {patience:g} s "
            f"(lock file {lock_file})"
        ) from None
    except files.LockFailedError as exc:  # e.g. ELOOP: filelock refuses a symlink lock file
        raise StoreError(
            f"cannot take the lock file {lock_file} of the store file {path}: {exc.strerror}"
        ) from None


def _os_error(action: str, path: Path, exc: OSError) -> StoreError:
    """Our error for a file-system failure: names the path, never content."""
    reason = exc.strerror or type(exc).__name__
    message = f"cannot {action} the store file {path}: {reason}"
    if isinstance(exc, PermissionError):
        return ForbiddenError(message)
    if exc.errno in _TRANSIENT_ERRNOS:
        return StoreUnavailableError(message)
    return StoreError(message)


# --- The store ---------------------------------------------------------------------------------


class FileStore(StoreBase):
    """Secrets in one local JSON file, private to the user (0600, in a 0700 folder).

    ``lock_timeout`` bounds the wait for another writer's lock; past it a write raises
    ``StoreUnavailableError``. ``keys`` are Fernet keys for encryption at rest (the first one
    writes, all read); ``None`` takes them from ``STACKSECRETS_FILE_KEY``, an empty list
    means a plain file. With keys, a plain store file is refused unless ``allow_plaintext``
    (``None``: ``STACKSECRETS_FILE_ALLOW_PLAINTEXT=1``). With ``missing_ok=False`` a read of a
    store file that does not exist is a ``StoreCorruptError`` (a typo in a named path), not an
    empty store; writes create it either way.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lock_timeout: float = 30.0,
        keys: Sequence[str] | None = None,
        allow_plaintext: bool | None = None,
        missing_ok: bool = True,
    ) -> None:
        self._path = _checked_path(os.fspath(path))
        self._crypto = FileCrypto.from_env() if keys is None else FileCrypto(keys) if keys else None
        if allow_plaintext is None:
            allow_plaintext = _plaintext_allowed(os.environ)
        self.allow_plaintext = allow_plaintext
        self.missing_ok = missing_ok
        self.lock_timeout = lock_timeout
        self._write_lock = anyio.Lock()
        self._read_lock = anyio.Lock()
        self._snapshot: _Snapshot | None = None
        self._warned: tuple[int, int] | None = None

    @classmethod
    def from_url(
        cls,
        url: str | StoreURL,
        /,
        *,
        environ: Mapping[str, str] | None = None,
        lock_timeout: float = 30.0,
        missing_ok: bool = False,
    ) -> FileStore:
        """The store for ``file:///abs/path.json``, ``file://relative/path.json`` or ``file://~/...``.

        Everything after ``file://`` is the path, percent-decoded (as ``Path.as_uri()`` writes it).
        The keys come from ``STACKSECRETS_FILE_KEY`` in ``environ`` (default ``os.environ``).
        A file named by URL must exist for reads (a typo is not an empty store; the first write
        creates it); ``open_store``'s default store passes ``missing_ok=True``.
        """
        parsed = parse_store_url(url) if isinstance(url, str) else url
        if parsed.scheme != "file":
            raise ConfigurationError(
                f"not a file store URL (scheme {parsed.scheme!r}); use file:///absolute/path/secrets.json"
            )
        path = unquote(parsed.path)
        if os.name == "nt" and re.match(r"/[A-Za-z]:[/\\]", path):
            path = path[1:]  # file:///C:/x is C:/x
        keys = None if environ is None else keys_from_env(environ)
        plaintext = None if environ is None else _plaintext_allowed(environ)
        return cls(
            path,
            lock_timeout=lock_timeout,
            keys=keys,
            allow_plaintext=plaintext,
            missing_ok=missing_ok,
        )

    @property
    def path(self) -> Path:
        """The store file (absolute, with ``~`` expanded)."""
        return self._path

    @property
    def capabilities(self) -> StoreCapabilities:
        return StoreCapabilities(batched_exists=True, writable=True)

    @property
    def description(self) -> str:
        return f"file://{self._path}"

    # -- reads

    async def get_secret(self, name: str) -> Secret:
        document = await self._read()
        try:
            return Secret(name, document.secrets[name])
        except KeyError:
            raise SecretNotFoundError(name, store=self.description) from None

    async def secrets_exist(self, names: Sequence[str]) -> frozenset[str]:
        document = await self._read()
        return frozenset(name for name in names if name in document.secrets)

    async def list_secrets(self) -> list[str]:
        return sorted((await self._read()).secrets)

    async def _read(self) -> _Document:
        self._check_open()
        async with self._read_lock:
            try:
                return await self._read_unlocked()
            except StoreError:
                raise
            except OSError as exc:
                raise _os_error("read", self._path, exc) from exc

    async def _read_unlocked(self) -> _Document:
        path = self._path
        cached = self._snapshot
        if cached is not None and cached.trusted:
            try:
                st = await anyio.to_thread.run_sync(os.stat, path)
            except FileNotFoundError:
                st = None
            if st is not None and _stat_key(st) == cached.key:
                return cached.document
        # The side file first: writers write the store file, then the side file, so a side file
        # read before the store file never holds a generation newer than the store file's,
        # unless the store file was really replaced by an older copy.
        generation = await self._generation_seen()
        loaded = await _read_file(path)
        if loaded is None:
            self._snapshot = None
            if not self.missing_ok:
                # StoreCorruptError: the engine fails a validation as a whole on it (CLI exit 2).
                raise StoreCorruptError(
                    f"the store file {path} does not exist: check the path (a new store is "
                    "created by its first write, e.g. stacksecrets secret create)"
                )
            return _Document()
        data, st = loaded
        document = self._checked_parse(data, generation)
        self._check_mode(st)
        trusted = st.st_ctime_ns + _TRUSTED_AGE_NS <= time.time_ns()
        self._snapshot = _Snapshot(_stat_key(st), trusted, document)
        return document

    async def _generation_seen(self) -> tuple[int | None, Path] | None:
        """For an encrypted store, what the generation side file says (see ``_checked_parse``)."""
        if self._crypto is None:
            return None
        return await anyio.to_thread.run_sync(_read_generation, self._path)

    def _checked_parse(self, data: bytes, generation: tuple[int | None, Path] | None) -> _Document:
        """Parse; for an encrypted store, refuse a generation older than the one last seen
        (``generation``: the side file, read *before* ``data``) and an emptied file."""
        seen, side = generation if generation is not None else (None, self._path)
        if self._crypto is not None and seen is not None and not data.strip():
            raise StoreCorruptError(
                f"the store file {self._path} is empty, but encrypted writes were made here "
                f"(generation {seen} in {side}): it was truncated or replaced. stacksecrets "
                "will not read or overwrite it. If you emptied it on purpose, delete "
                f"{side} and try again."
            )
        document = _parse(data, self._path, self._crypto, allow_plaintext=self.allow_plaintext)
        if document.generation is not None and seen is not None and document.generation < seen:
            raise StoreCorruptError(
                f"the store file {self._path} is an older copy (generation "
                f"{document.generation}) than one already written here (generation {seen}): "
                "the file was replaced or restored. stacksecrets will not read or overwrite "
                f"it. If you restored it on purpose, delete {side} and try again."
            )
        return document

    def _check_mode(self, st: os.stat_result) -> None:
        mode = stat.S_IMODE(st.st_mode)
        if os.name == "nt" or not mode & 0o077 or self._warned == (st.st_ino, mode):
            return
        self._warned = (st.st_ino, mode)
        logger.warning(
            "stacksecrets.file.permissions",
            path=str(self._path),
            mode=f"{mode:04o}",
            hint=f"other users may read this store; run: chmod 600 {self._path}",
        )

    # -- writes

    async def create_secret(self, name: str, values: Mapping[str, str]) -> None:
        self._check_open()
        new, _ = check_write(name, values)

        def change(stored: dict[str, dict[str, str]]) -> None:
            if name in stored:
                raise SecretExistsError(name)
            stored[name] = new

        await self._modify("create", name, change)

    async def update_secret(
        self, name: str, values: Mapping[str, str], *, remove_keys: Collection[str] = ()
    ) -> None:
        self._check_open()
        new, removed = check_write(name, values, remove_keys)

        def change(stored: dict[str, dict[str, str]]) -> None:
            if name not in stored:
                raise SecretNotFoundError(name, store=self.description)
            stored[name] = merge_update(stored[name], new, removed)

        await self._modify("update", name, change)

    async def delete_secret(self, name: str) -> None:
        def change(stored: dict[str, dict[str, str]]) -> None:
            if stored.pop(name, None) is None:
                raise SecretNotFoundError(name, store=self.description)

        await self._modify("delete", name, change)

    async def reencrypt(self) -> None:
        """Write the store again, with the first key (after a key rotation, or to encrypt a
        plain store once a key is set)."""
        await self._modify("reencrypt", "", lambda _stored: None)

    async def _modify(
        self, action: str, name: str, change: Callable[[dict[str, dict[str, str]]], None]
    ) -> None:
        self._check_open()
        started = time.perf_counter()
        async with self._write_lock:
            self._snapshot = None
            try:
                await self._modify_locked(change)
            except StoreError:
                raise
            except OSError as exc:
                raise _os_error("write", self._path, exc) from exc
        logger.debug(
            "stacksecrets.file.write",
            action=action,
            secret=name,
            path=str(self._path),
            seconds=round(time.perf_counter() - started, 6),
        )

    async def _modify_locked(self, change: Callable[[dict[str, dict[str, str]]], None]) -> None:
        target = await anyio.to_thread.run_sync(files.prepare_target, self._path)
        problem = await anyio.to_thread.run_sync(files.folder_problem, target.parent)
        if problem is not None:
            raise ForbiddenError(f"stacksecrets will not write the store file {target}: {problem}")
        async with _writers_lock(target, patience=self.lock_timeout, path=self._path):
            removed = await anyio.to_thread.run_sync(files.remove_stale_temps, target)
            side = _generation_path(target)
            removed += await anyio.to_thread.run_sync(files.remove_stale_temps, side)
            if removed:
                logger.debug(
                    "stacksecrets.file.stale_temp_removed", path=str(target), count=removed
                )
            generation = await self._generation_seen()
            loaded = await _read_file(target)
            document = _Document() if loaded is None else self._checked_parse(loaded[0], generation)
            change(document.secrets)
            if generation is not None:
                document.generation = max(document.generation or 0, generation[0] or 0) + 1
            await files.awrite_atomically(target, _dump(document, self._crypto))
            if self._crypto is not None:
                number = f"{document.generation}\n".encode()
                await files.awrite_atomically(_generation_path(target), number)


def _checked_path(raw: str) -> Path:
    fix = "name the store file, e.g. file:///home/me/.local/share/stacksecrets/secrets.json"
    if not raw.strip():
        raise ConfigurationError(f"the file store needs a path; {fix}")
    if "\0" in raw:
        raise ConfigurationError(f"the file store path contains a NUL character; {fix}")
    if raw.endswith(("/", os.sep)):
        raise ConfigurationError(f"the file store path {raw!r} names a folder; {fix}")
    path = Path(os.path.normpath(Path(raw).expanduser().absolute()))
    if path.is_dir():
        raise ConfigurationError(f"the file store path {str(path)!r} is a folder; {fix}")
    return path


def _plaintext_allowed(environ: Mapping[str, str]) -> bool:
    return environ.get(ALLOW_PLAINTEXT_VARIABLE, "").strip() == "1"
