"""A metadata cache shared by processes: which keys a secret had at which change stamp.

It holds, per store scope (the store and the user it acts as) and secret name, the secret's id,
its change stamp, its key names (readable and not) and when they were read. **Never a value.**
A key-level validation asks the store for ids and stamps (the list calls its existence check
makes anyway) and reads only the secrets whose (id, stamp) differ from the cached ones.

When an entry is trusted (see ``docs/engine.md``):

- only if its id and stamp equal the store's current answer (a deleted and re-created secret
  has a new id; a store puts whatever else decides the answer, e.g. ZenML's private flag, into
  the stamp);
- only if it was written from a read that the store said was *settled*: the stamp was older,
  by more than its resolution and the store's settle margin, than a moment the store vouched
  for before the read began. A stamp too coarse to tell two changes apart, or a change still
  being written when the read ran, so leads to another read, never to a stale answer;
- only for ``metadata_max_age`` seconds after the read (changes made behind the store's back).

The cache is one JSON file, ``<user cache dir>/stacksecrets/metadata.json`` (or
``$STACKSECRETS_CACHE_DIR/metadata.json``), mode 0600, read and written through the safe-file
room (``_files``): replaced atomically (temp file, fsync, ``os.replace``, folder fsync), changed
under a cross-process ``filelock`` and merged on write (the newer read wins per name). It is
trusted like a store file: a cache file owned by another user or writable by group or others,
or a folder owned by another user or writable by others (without the sticky bit), is ignored
with a warning (never believed: planted entries would be a false pass). A corrupt, unreadable,
oversized or non-regular file (a FIFO, ``/dev/zero``) is ignored (and rebuilt on the next write)
without waiting on it; the cache failing never fails a validation.
``STACKSECRETS_METADATA_CACHE=0`` or the option ``metadata_cache=False`` turns it off;
``stacksecrets cache clear`` deletes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import attrs

from . import _files as files
from . import _strictjson
from ._errors import ConfigurationError
from ._logging import logger
from .stores._base import SecretStamp, SupportsSecretsMetadata

__all__ = [
    "CACHE_DIR_VARIABLE",
    "SWITCH_VARIABLE",
    "CachedKeys",
    "MetadataCache",
    "SecretStamp",
    "SupportsSecretsMetadata",
    "cache_path",
    "switched_on",
]

CACHE_DIR_VARIABLE = "STACKSECRETS_CACHE_DIR"
SWITCH_VARIABLE = "STACKSECRETS_METADATA_CACHE"
FILE_NAME = "metadata.json"
FORMAT = 1
#: Entries older than this are dropped from the file on any write, whatever a reader's max age.
PRUNE_AFTER = 7 * 24 * 3600.0
_OFF = frozenset({"0", "false", "no", "off"})
_ON = frozenset({"", "1", "true", "yes", "on"})
_LOCK_PATIENCE = 5.0
#: A larger cache file is ignored (and rebuilt): thousands of entries are a few hundred KiB.
MAX_CACHE_BYTES = 16 * 1024 * 1024


def is_settled(changed: datetime | None, answered_at: datetime | None, margin: float) -> bool:
    """Whether a store's answer at ``answered_at`` vouches for a stamp changed at ``changed``:
    at least ``margin`` seconds (the stamp's resolution and the store's settle time) later."""
    if changed is None or answered_at is None:
        return False
    return (answered_at - changed).total_seconds() >= margin


@attrs.frozen
class CachedKeys:
    """The key names of one secret as read at ``seen`` (wall-clock seconds)."""

    id: str
    stamp: str
    keys: frozenset[str]
    unreadable: frozenset[str]
    seen: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stamp": self.stamp,
            "keys": sorted(self.keys),
            "unreadable": sorted(self.unreadable),
            "seen": self.seen,
        }

    @classmethod
    def from_dict(cls, data: object) -> CachedKeys | None:
        """The entry, or ``None`` for anything malformed."""
        if not isinstance(data, dict):
            return None
        ident, stamp, keys = data.get("id"), data.get("stamp"), data.get("keys")
        unreadable, seen = data.get("unreadable", []), data.get("seen")
        if (
            not isinstance(ident, str)
            or not isinstance(stamp, str)
            or not isinstance(keys, list)
            or not isinstance(unreadable, list)
            or not _all_str(keys)
            or not _all_str(unreadable)
            or isinstance(seen, bool)
            or not isinstance(seen, (int, float))
        ):
            return None
        return cls(ident, stamp, frozenset(keys), frozenset(unreadable), float(seen))


def _all_str(items: list[Any]) -> bool:
    return all(isinstance(item, str) for item in items)


def cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """The cache file: ``$STACKSECRETS_CACHE_DIR/metadata.json``, else under the user's cache
    directory (``platformdirs.user_cache_dir("stacksecrets")``)."""
    env = os.environ if environ is None else environ
    folder = env.get(CACHE_DIR_VARIABLE, "").strip()
    if folder:
        return Path(folder).expanduser() / FILE_NAME
    import platformdirs  # on first use: start-up pays only for what a command uses

    return Path(platformdirs.user_cache_dir("stacksecrets", appauthor=False)) / FILE_NAME


def switched_on(*, option: bool, environ: Mapping[str, str] | None = None) -> bool:
    """The option, unless ``STACKSECRETS_METADATA_CACHE`` turns the cache off."""
    env = os.environ if environ is None else environ
    raw = env.get(SWITCH_VARIABLE)
    if raw is None:
        return option
    value = raw.strip().lower()
    if value in _OFF:
        return False
    if value in _ON:
        return option
    raise ConfigurationError(
        f"{SWITCH_VARIABLE}={raw[:20]!r} is not a switch: use 0/false/off or 1/true/on"
    )


class MetadataCache:
    """The shared cache file. Every method is safe to call from many processes at once."""

    def __init__(
        self,
        path: Path,
        *,
        max_age: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.max_age = max_age
        self.clock = clock

    async def load(self, scope: str) -> dict[str, CachedKeys]:
        """The entries of ``scope`` younger than ``max_age``; empty when the file is absent,
        corrupt or unreadable."""
        try:
            document = await anyio.to_thread.run_sync(self._read)
        except OSError as exc:
            unavailable("read", self.path, exc)
            return {}
        now = self.clock()
        entries = {}
        for name, raw in _scope_of(document, scope).items():
            entry = CachedKeys.from_dict(raw)
            if entry is not None and 0 <= now - entry.seen < self.max_age:
                entries[name] = entry
        return entries

    async def save(
        self, scope: str, entries: Mapping[str, CachedKeys], forget: Collection[str] = ()
    ) -> None:
        """Merge ``entries`` into the file (the newer read wins per name) and drop ``forget``."""
        if not entries and not forget:
            return
        await write_merged(self.path, lambda: self._merge(scope, dict(entries), set(forget)))

    async def clear(self) -> bool:
        """Delete the file; whether there was one."""
        if not await anyio.to_thread.run_sync(self.path.exists):
            return False
        async with locked(self.path):
            await anyio.to_thread.run_sync(lambda: self.path.unlink(missing_ok=True))
        return True

    # -- sync parts, run in a worker thread ----------------------------------------------------

    def _read(self) -> dict[str, Any]:
        return read_document(self.path)

    def _merge(self, scope: str, entries: dict[str, CachedKeys], forget: set[str]) -> bytes:
        """The file's new content: what it holds, with ``entries`` merged in."""
        document = self._read()
        scopes = document.get("scopes")
        scopes = (
            {k: v for k, v in scopes.items() if isinstance(v, dict)}
            if isinstance(scopes, dict)
            else {}
        )
        now = self.clock()
        mine = scopes.setdefault(scope, {})
        for name in forget:
            mine.pop(name, None)
        for name, entry in entries.items():
            present = CachedKeys.from_dict(mine.get(name))
            if present is None or present.seen <= entry.seen:
                mine[name] = entry.to_dict()
        for key in list(scopes):
            kept = {}
            for name, raw in scopes[key].items():
                kept_entry = CachedKeys.from_dict(raw)
                if kept_entry is not None and now - kept_entry.seen < PRUNE_AFTER:
                    kept[name] = raw
            if kept:
                scopes[key] = kept
            else:
                del scopes[key]
        document = {"format": FORMAT, "scopes": scopes}
        return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def read_document(path: Path) -> dict[str, Any]:
    """A cache file's JSON document (blocking), or ``{}`` when it is absent, corrupt, of
    another format, or not to be trusted (see the module doc)."""
    try:
        # Trusted like a store file: another user's file, or one others may write, could
        # hold planted entries (a false pass), so it is ignored, never believed.
        raw, _st = files.read_regular(path, max_bytes=MAX_CACHE_BYTES, trust="owner-and-mode")
    except FileNotFoundError:
        return {}
    except files.FileRefusedError as exc:  # a FIFO, a device, too large: never wait on it
        logger.warning("stacksecrets.metacache.unusable", path=str(path), reason=exc.reason)
        return {}
    try:
        document, _problem = _strictjson.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        document = None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        logger.warning("stacksecrets.metacache.corrupt", path=str(path))
        return {}
    return document


def prepare_folder(path: Path) -> None:
    """Make the cache file's folder (0700); refuse one others could swap the file in."""
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    problem = files.folder_problem(folder, trust="owner-and-mode")
    if problem is not None:  # others could swap the file we write: do not feed them
        raise files.UntrustedError(str(path), problem)


async def write_merged(path: Path, merge: Callable[[], bytes]) -> None:
    """Write a cache file anew under its lock: ``merge`` (run in a worker thread, under the
    lock) reads what the file holds and returns its new content. A cache that cannot be
    written is a warning, never an error: the next run reads the store again."""
    try:
        await anyio.to_thread.run_sync(prepare_folder, path)
        async with locked(path):
            data = await anyio.to_thread.run_sync(merge)
            await files.awrite_atomically(path, data)
    except (OSError, files.LockBusyError) as exc:
        unavailable("write", path, exc)
    except files.FileRefusedError as exc:
        logger.warning("stacksecrets.metacache.unusable", path=str(path), reason=exc.reason)


def _scope_of(document: Mapping[str, Any], scope: str) -> dict[str, Any]:
    scopes = document.get("scopes")
    found = scopes.get(scope) if isinstance(scopes, dict) else None
    return found if isinstance(found, dict) else {}


@contextlib.asynccontextmanager
async def locked(path: Path) -> AsyncIterator[None]:
    """The cross-process lock beside the file (see ``_files.locked``)."""
    lock_file = f"{path}.lock"
    what = f"the cache lock {lock_file} (another process)"
    async with files.locked(lock_file, patience=_LOCK_PATIENCE, what=what):
        yield


def unavailable(action: str, path: Path, exc: BaseException) -> None:
    reason = getattr(exc, "strerror", None) or type(exc).__name__
    logger.warning(
        "stacksecrets.metacache.unavailable", action=action, path=str(path), error=reason
    )
