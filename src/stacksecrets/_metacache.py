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
``$STACKSECRETS_CACHE_DIR/metadata.json``), mode 0600, replaced atomically (temp file and
``os.replace``), changed under a cross-process ``filelock`` and merged on write (the newer read
wins per name). A corrupt or unreadable file is ignored (and rebuilt on the next write); the
cache failing never fails a validation. ``STACKSECRETS_METADATA_CACHE=0`` or the option
``metadata_cache=False`` turns it off; ``stacksecrets cache clear`` deletes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import anyio
import attrs

from ._errors import ConfigurationError
from ._logging import logger
from ._observe import waiting

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
_MAX_LOCK_POLL = 0.05


@attrs.frozen
class SecretStamp:
    """What a store's list answer says of one secret: no value, no key name.

    ``settled``: the store vouches that a read started after this answer sees the secret as
    of ``stamp`` or later, with every change stamped ``stamp`` complete (see the module doc).
    """

    id: str
    stamp: str
    settled: bool = False


@runtime_checkable
class SupportsSecretsMetadata(Protocol):
    """The optional store hook the metadata cache needs (see ``SecretStore``)."""

    @property
    def metadata_scope(self) -> str | None:
        """Who asks where, safe to store: the store and the user (``None``: unknown yet)."""
        ...

    async def secrets_metadata(self, names: Sequence[str]) -> dict[str, SecretStamp]:
        """Id and stamp of each of ``names`` that exists (absent: missing), read no value."""
        ...


def http_date(value: str | None) -> datetime | None:
    """An HTTP ``Date`` header (whole seconds, a lower bound of the server's time), or ``None``."""
    if value is None:
        return None
    import email.utils  # start-up: only with a Date header

    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


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
            _unavailable("read", self.path, exc)
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
        import filelock  # on first use: start-up pays only for what a command uses

        try:
            await anyio.to_thread.run_sync(self._prepare_folder)
            async with _locked(self.path):
                await anyio.to_thread.run_sync(self._merge, scope, dict(entries), set(forget))
        except (OSError, filelock.Timeout) as exc:
            _unavailable("write", self.path, exc)

    async def clear(self) -> bool:
        """Delete the file; whether there was one."""
        if not await anyio.to_thread.run_sync(self.path.exists):
            return False
        async with _locked(self.path):
            await anyio.to_thread.run_sync(lambda: self.path.unlink(missing_ok=True))
        return True

    # -- sync parts, run in a worker thread ----------------------------------------------------

    def _read(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except UnicodeDecodeError:
            text = ""
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            logger.warning("stacksecrets.metacache.corrupt", path=str(self.path))
            return {}
        return document

    def _prepare_folder(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _merge(self, scope: str, entries: dict[str, CachedKeys], forget: set[str]) -> None:
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
        _write_atomically(self.path, {"format": FORMAT, "scopes": scopes})


def _scope_of(document: Mapping[str, Any], scope: str) -> dict[str, Any]:
    scopes = document.get("scopes")
    found = scopes.get(scope) if isinstance(scopes, dict) else None
    return found if isinstance(found, dict) else {}


def _write_atomically(path: Path, document: dict[str, Any]) -> None:
    import tempfile  # start-up: writes only

    data = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:  # mkstemp creates it 0600
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(temp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temp).unlink()
        raise


@contextlib.asynccontextmanager
async def _locked(path: Path) -> Any:
    """The cross-process lock beside the file, polled so that cancellation stays prompt."""
    import filelock

    lock = filelock.FileLock(f"{path}.lock", mode=0o600, thread_local=False)
    delay = 0.001
    told = False  # the observer, that the lock is held by another process
    deadline = time.monotonic() + _LOCK_PATIENCE
    with contextlib.ExitStack() as wait:
        while True:
            try:
                await anyio.to_thread.run_sync(lambda: lock.acquire(blocking=False))
                break
            except filelock.Timeout:
                if time.monotonic() > deadline:
                    raise
                if not told:  # held by another process: say so while waiting
                    told = True
                    wait.enter_context(
                        waiting(f"the metadata cache lock {lock.lock_file} (another process)")
                    )
                await anyio.sleep(delay)
                delay = min(delay * 2, _MAX_LOCK_POLL)
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(lock.release)


def _unavailable(action: str, path: Path, exc: BaseException) -> None:
    reason = getattr(exc, "strerror", None) or type(exc).__name__
    logger.warning(
        "stacksecrets.metacache.unavailable", action=action, path=str(path), error=reason
    )
