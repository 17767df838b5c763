"""A proposed change to ``ZenMLStore``, measured here before it is made in ``src/``.

``ZenMLStore.get_secret(name)`` costs two calls: a list filtered by exact name (to find the
id, public before private) and a read by id. At the key level the engine has just asked
``secrets_exist`` for the same names with batched ``oneof:`` list calls, whose items already
carry the ids; remembering them makes every read one call, which halves the calls of a
key-level validation and so the load on a server that is the bottleneck.

This subclass remembers the id of each name seen in a ``/secrets`` list (public first, as
ZenML resolves) and uses it once; a read by a remembered id that answers 404 (the secret was
deleted or re-created meanwhile) falls back to the look-up by name.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from stacksecrets import Secret, SecretNotFoundError
from stacksecrets.stores._zenml import ZenMLStore, _is_private, _name, _uuid


class IdReusingZenMLStore(ZenMLStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._known_ids: dict[str, uuid.UUID] = {}
        self._hinted: set[str] = set()

    async def _list_all(self, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        items = await super()._list_all(path, params)
        if path == "/secrets" and str(params.get("name", "")).startswith("oneof:"):
            for item in sorted(items, key=_is_private, reverse=True):  # public last: it wins
                self._known_ids[_name(item)] = _uuid(item.get("id"), self._host)
        return items

    async def _find_secret_id(self, name: str) -> uuid.UUID:
        known = self._known_ids.pop(name, None)
        if known is not None:
            self._hinted.add(name)
            return known
        return await super()._find_secret_id(name)

    async def get_secret(self, name: str) -> Secret:
        try:
            return await super().get_secret(name)
        except SecretNotFoundError:
            if name not in self._hinted:
                raise
            self._hinted.discard(name)
            return await super().get_secret(name)  # the remembered id was stale
        finally:
            self._hinted.discard(name)
