"""A definition cache shared by processes: stack components and flavor schemas read from a
ZenML server, by their change stamps.

``validate --zenml-stack`` reads each stack live (one list call gives every stack with its
components' ids and ``updated`` stamps), and reads a component's configuration, or a flavor's
config schema, only when its (id, stamp) is not what this cache holds. A warm run with nothing
changed so costs one round trip for any number of stacks.

What an entry holds: a component's type, flavor, name, the ids of its attached secrets, and
its configuration, settings and environment with every string that holds no ``{{`` blanked
(``""``): what a validation judges (references, their places, the attributes' types), never a
plain value someone put in a component; a flavor's config schema. **Never a secret value.**

When an entry is trusted, as the metadata cache's (``_metacache``):

- only if its id and stamp equal the server's current answer (every change through ZenML
  bumps ``updated``; a deleted and re-created component has a new id);
- only if it was written from a read the server vouched for: its ``Date`` at least
  ``STAMP_RESOLUTION_SECONDS + STAMP_SETTLE_SECONDS`` past the stamp, so two changes within
  one tick of a coarse clock lead to another read, never to a stale definition;
- only for ``metadata_max_age`` seconds after the read (changes made behind ZenML's back).

The file is ``stacks.json`` beside ``metadata.json`` (``$STACKSECRETS_CACHE_DIR`` or the
user's cache directory), with the same trust rules: mode 0600, written atomically under a
cross-process lock and merged; another user's file, or one others may write, is ignored
(never believed), a corrupt one ignored and rebuilt; the cache failing never fails a
validation. Scoped by server and user (``ZenMLStore.metadata_scope``).
``STACKSECRETS_METADATA_CACHE=0`` (or ``metadata_cache=False``) turns it off with the metadata
cache; ``stacksecrets cache clear`` deletes it too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import attrs

from ._metacache import (
    FORMAT,
    PRUNE_AFTER,
    cache_path,
    locked,
    read_document,
    unavailable,
    write_merged,
)

__all__ = [
    "CachedComponent",
    "CachedFlavor",
    "CachedStack",
    "Definitions",
    "StackCache",
    "blank_plain",
    "stack_cache_path",
]

FILE_NAME = "stacks.json"


def stack_cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """``stacks.json`` beside the metadata cache file."""
    return cache_path(environ).with_name(FILE_NAME)


def blank_plain(value: Any) -> Any:
    """``value`` with every string that holds no ``{{`` (no reference, nothing malformed)
    replaced by ``""``; mappings, lists and other scalars kept as they are."""
    if isinstance(value, str):
        return value if "{{" in value else ""
    if isinstance(value, Mapping):
        return {str(k): blank_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [blank_plain(v) for v in value]
    return value


@attrs.frozen
class CachedComponent:
    """One component as read at ``seen`` (wall-clock seconds), its plain strings blanked."""

    id: str
    stamp: str
    type: str
    flavor: str
    name: str
    configuration: dict[str, Any]
    settings: dict[str, Any]
    environment: dict[str, Any]
    secrets: tuple[str, ...]
    seen: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stamp": self.stamp,
            "type": self.type,
            "flavor": self.flavor,
            "name": self.name,
            "configuration": blank_plain(self.configuration),
            "settings": blank_plain(self.settings),
            "environment": blank_plain(self.environment),
            "secrets": list(self.secrets),
            "seen": self.seen,
        }

    @classmethod
    def from_dict(cls, data: object) -> CachedComponent | None:
        """The entry, or ``None`` for anything malformed."""
        if not isinstance(data, dict):
            return None
        texts = [data.get(k) for k in ("id", "stamp", "type", "flavor", "name")]
        mappings = [data.get(k) for k in ("configuration", "settings", "environment")]
        secrets, seen = data.get("secrets"), data.get("seen")
        if (
            not all(isinstance(t, str) for t in texts)
            or not all(isinstance(m, dict) for m in mappings)
            or not isinstance(secrets, list)
            or not all(isinstance(s, str) for s in secrets)
            or isinstance(seen, bool)
            or not isinstance(seen, (int, float))
        ):
            return None
        ident, stamp, kind, flavor, name = (str(t) for t in texts)
        configuration, settings, environment = (dict(m) for m in mappings if isinstance(m, dict))
        return cls(
            ident,
            stamp,
            kind,
            flavor,
            name,
            configuration,
            settings,
            environment,
            tuple(secrets),
            float(seen),
        )


@attrs.frozen
class CachedFlavor:
    """A flavor's config schema (``None``: the server holds none) as read at ``seen``."""

    id: str
    stamp: str
    schema: dict[str, Any] | None
    seen: float

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "stamp": self.stamp, "schema": self.schema, "seen": self.seen}

    @classmethod
    def from_dict(cls, data: object) -> CachedFlavor | None:
        if not isinstance(data, dict):
            return None
        ident, stamp, schema, seen = (data.get(k) for k in ("id", "stamp", "schema", "seen"))
        if (
            not isinstance(ident, str)
            or not isinstance(stamp, str)
            or not (schema is None or isinstance(schema, dict))
            or isinstance(seen, bool)
            or not isinstance(seen, (int, float))
        ):
            return None
        return cls(ident, stamp, schema, float(seen))


@attrs.frozen
class CachedStack:
    """The component ids a stack had when read at ``seen``: a hint only (which secrets its
    validation will ask about, asked early); stacks themselves are always read live."""

    components: tuple[str, ...]
    seen: float

    def to_dict(self) -> dict[str, Any]:
        return {"components": list(self.components), "seen": self.seen}

    @classmethod
    def from_dict(cls, data: object) -> CachedStack | None:
        if not isinstance(data, dict):
            return None
        components, seen = data.get("components"), data.get("seen")
        if (
            not isinstance(components, list)
            or not all(isinstance(c, str) for c in components)
            or isinstance(seen, bool)
            or not isinstance(seen, (int, float))
        ):
            return None
        return cls(tuple(components), float(seen))


@attrs.frozen
class Definitions:
    """One scope's entries: components by id, flavors by ``"type/flavor"``, stacks' last
    compositions by name."""

    components: dict[str, CachedComponent] = attrs.field(factory=dict)
    flavors: dict[str, CachedFlavor] = attrs.field(factory=dict)
    stacks: dict[str, CachedStack] = attrs.field(factory=dict)


_KINDS: dict[str, Callable[[object], CachedComponent | CachedFlavor | CachedStack | None]] = {
    "components": CachedComponent.from_dict,
    "flavors": CachedFlavor.from_dict,
    "stacks": CachedStack.from_dict,
}


class StackCache:
    """The shared ``stacks.json``. Every method is safe to call from many processes at once."""

    def __init__(
        self, path: Path, *, max_age: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.max_age = max_age
        self.clock = clock

    def __repr__(self) -> str:
        return f"<StackCache {self.path}>"

    async def clear(self) -> bool:
        """Delete the file; whether there was one."""
        if not await anyio.to_thread.run_sync(self.path.exists):
            return False
        async with locked(self.path):
            await anyio.to_thread.run_sync(lambda: self.path.unlink(missing_ok=True))
        return True

    async def load(self, scope: str) -> Definitions:
        """The entries of ``scope`` younger than ``max_age``; none when the file is absent,
        corrupt, unreadable or not to be trusted."""
        try:
            document = await anyio.to_thread.run_sync(read_document, self.path)
        except OSError as exc:
            unavailable("read", self.path, exc)
            return Definitions()
        now = self.clock()
        found = Definitions()
        mine = _scope_of(document, scope)
        for kind, parse in _KINDS.items():
            raw = mine.get(kind)
            kept: dict[str, Any] = getattr(found, kind)
            for key, data in (raw if isinstance(raw, dict) else {}).items():
                entry = parse(data)
                if entry is not None and 0 <= now - entry.seen < self.max_age:
                    kept[str(key)] = entry
        return found

    async def save(self, scope: str, fresh: Definitions, forget: Definitions) -> None:
        """Merge ``fresh`` into the file (the newer read wins per key) and drop the keys of
        ``forget`` (entries read too soon after a change to vouch for)."""
        if not any(getattr(fresh, kind) or getattr(forget, kind) for kind in _KINDS):
            return
        await write_merged(self.path, lambda: self._merge(scope, fresh, forget))

    def _merge(self, scope: str, fresh: Definitions, forget: Definitions) -> bytes:
        document = read_document(self.path)
        raw_scopes = document.get("scopes")
        scopes: dict[str, dict[str, Any]] = (
            {k: v for k, v in raw_scopes.items() if isinstance(v, dict)}
            if isinstance(raw_scopes, dict)
            else {}
        )
        mine = scopes.setdefault(scope, {})
        for kind, parse in _KINDS.items():
            held = mine.get(kind)
            entries: dict[str, Any] = held if isinstance(held, dict) else {}
            mine[kind] = entries
            for key in getattr(forget, kind):
                entries.pop(key, None)
            for key, entry in getattr(fresh, kind).items():
                present = parse(entries.get(key))
                if present is None or present.seen <= entry.seen:
                    entries[key] = entry.to_dict()
        now = self.clock()
        for name in list(scopes):
            for kind, parse in _KINDS.items():
                held = scopes[name].get(kind)
                kept = {
                    key: data
                    for key, data in (held if isinstance(held, dict) else {}).items()
                    if (entry := parse(data)) is not None and now - entry.seen < PRUNE_AFTER
                }
                if kept:
                    scopes[name][kind] = kept
                else:
                    scopes[name].pop(kind, None)
            scopes[name] = {k: v for k, v in scopes[name].items() if k in _KINDS}
            if not scopes[name]:
                del scopes[name]
        return json.dumps(
            {"format": FORMAT, "scopes": scopes}, separators=(",", ":"), sort_keys=True
        ).encode()


def _scope_of(document: Mapping[str, Any], scope: str) -> dict[str, Any]:
    scopes = document.get("scopes")
    found = scopes.get(scope) if isinstance(scopes, dict) else None
    return found if isinstance(found, dict) else {}
