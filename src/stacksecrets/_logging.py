"""The library's logger, and a structlog processor that redacts known secret values.

stacksecrets never configures logging. Where the application configured structlog, events go
through ``structlog.get_logger("stacksecrets")``; where it did not, they go to the stdlib logger
``stacksecrets`` (silent below WARNING until the application says otherwise), so that step code
and scripts do not get library chatter on stdout. Events are namespaced
(``stacksecrets.fetch.done``) and carry only names, counts, durations and hosts.

Applications that log values of their own can add ``redact_secrets`` to their structlog
processors: every value stacksecrets has read (and its base64 and URL-encoded forms) is then
replaced by ``'**********'`` in their events.
"""

from __future__ import annotations

import base64
import logging
import threading
import urllib.parse
from collections.abc import Iterable, MutableMapping
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    from ._secret import Secret

_stdlib_logger: Any = structlog.wrap_logger(
    logging.getLogger("stacksecrets"),
    wrapper_class=structlog.stdlib.BoundLogger,
    processors=[
        structlog.stdlib.filter_by_level,
        structlog.processors.KeyValueRenderer(key_order=["event"], sort_keys=True),
    ],
)


class _Logger:
    """Chooses structlog or stdlib logging at each call, as described above."""

    def _target(self) -> Any:
        if structlog.is_configured():
            return structlog.get_logger("stacksecrets")
        return _stdlib_logger

    def bind(self, **values: Any) -> Any:
        return self._target().bind(**values)

    def debug(self, event: str, **values: Any) -> None:
        self._target().debug(event, **values)

    def info(self, event: str, **values: Any) -> None:
        self._target().info(event, **values)

    def warning(self, event: str, **values: Any) -> None:
        self._target().warning(event, **values)


logger = _Logger()

MASK = "**********"
#: Values shorter than this are not redacted: masking "1" or "on" everywhere would destroy logs.
MIN_REDACTED_LENGTH = 4


class SecretRedactor:
    """A structlog processor that masks every registered value in an event dict."""

    def __init__(self) -> None:
        self._forms: set[str] = set()
        self._lock = threading.Lock()
        self._ordered: tuple[str, ...] | None = ()

    def add(self, values: Iterable[str]) -> None:
        """Register values (and their base64 and URL-encoded forms) for redaction."""
        forms = set()
        for value in values:
            if len(value) < MIN_REDACTED_LENGTH:
                continue
            raw = value.encode()
            forms.update(
                {
                    value,
                    base64.b64encode(raw).decode(),
                    base64.urlsafe_b64encode(raw).decode(),
                    base64.b64encode(raw).decode().rstrip("="),
                    urllib.parse.quote(value, safe=""),
                    urllib.parse.quote_plus(value),
                }
            )
        with self._lock:
            if not forms <= self._forms:
                self._forms |= forms
                self._ordered = None  # sorted again when next needed, not on every read

    def _order(self) -> tuple[str, ...]:
        ordered = self._ordered
        if ordered is None:
            with self._lock:
                # Longest first, so a value is masked whole before any part of it.
                ordered = self._ordered = tuple(sorted(self._forms, key=len, reverse=True))
        return ordered

    def add_secret(self, secret: Secret) -> None:
        self.add(secret.values.values())

    def clear(self) -> None:
        with self._lock:
            self._forms.clear()
            self._ordered = ()

    def redact(self, text: str) -> str:
        for form in self._order():
            if form in text:
                text = text.replace(form, MASK)
        return text

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if not self._order():
            return event_dict
        for key, value in list(event_dict.items()):
            event_dict[key] = self._redact_value(value)
        return event_dict

    def _redact_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, (bytes, bytearray)):
            return self.redact(value.decode(errors="replace"))
        if isinstance(value, dict):
            return {k: self._redact_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self._redact_value(v) for v in value]
        if isinstance(value, BaseException):
            return self.redact(repr(value))
        return value


#: The process-wide redactor: every value stacksecrets reads is registered here.
redactor = SecretRedactor()
#: Add this to your structlog processors (before the renderer) to mask known secret values.
redact_secrets = redactor
