"""The library's logger, and a structlog processor that redacts known secret values.

stacksecrets never configures logging. Where the application configured structlog, events go
through ``structlog.get_logger("stacksecrets")``; where it did not, they go to the stdlib logger
``stacksecrets`` (silent below WARNING until the application says otherwise), so that step code
and scripts do not get library chatter on stdout. Events are namespaced
(``stacksecrets.fetch.done``) and carry only names, counts, durations and hosts.

Applications that log values of their own can add ``redact_secrets`` to their structlog
processors: every value stacksecrets has read (and its base64, URL-encoded and escaped
forms) is then replaced by ``'**********'`` in their events: in strings, dict keys and values,
any mapping (``secret.values``), lists, exceptions (their repr), objects whose repr holds a value,
and ``exc_info`` tracebacks (rendered to text first, as ``format_exc_info`` does).

stamina's retries: stamina logs each scheduled retry on its own (to standard output when
structlog is not configured). Before its first retry, stacksecrets wraps stamina's retry hooks
so that a retry of a stacksecrets store call becomes an info event
``stacksecrets.retry_scheduled`` of the library's logger (silent unless the application
configured logging); retries of anything else go to the hooks that were in place, unchanged.

Importing this module imports neither structlog nor stamina (importing ``structlog`` imports
rich, when it is installed, for its console renderer): an application that configured structlog
has imported it already, and is found in ``sys.modules``.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import threading
import traceback
import urllib.parse
from collections.abc import Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from ._secret import MASK

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._secret import Secret

_stdlib = logging.getLogger("stacksecrets")

#: ``(level, configure)``: an application (the CLI) that configures structlog only when the
#: first event at ``level`` or above is logged, so a command that logs nothing never imports it.
_deferred: tuple[int, Callable[[], None]] | None = None


def configure_on_first_event(level: int, configure: Callable[[], None] | None) -> None:
    """Call ``configure`` (which configures structlog) before the first event at ``level`` or
    above is logged; ``None`` forgets a configuration not yet made."""
    global _deferred  # noqa: PLW0603 - one process-wide logging set-up, as structlog's own
    _deferred = None if configure is None else (level, configure)


def _structlog_logger() -> Any:
    """structlog's logger when the application configured structlog, else ``None``."""
    structlog = sys.modules.get("structlog")
    if structlog is not None and structlog.is_configured():
        return structlog.get_logger("stacksecrets")
    return None


class _Logger:
    """Chooses structlog or stdlib logging at each call, as described above; values bound
    with ``bind`` go with every event of the logger it returns."""

    def __init__(self, bound: Mapping[str, Any] | None = None) -> None:
        self._bound = dict(bound or {})

    def _log(self, level: int, method: str, event: str, values: dict[str, Any]) -> None:
        deferred = _deferred
        if deferred is not None and level >= deferred[0]:
            configure_on_first_event(0, None)
            deferred[1]()
        values = {**self._bound, **values}
        target = _structlog_logger()
        if target is not None:
            getattr(target, method)(event, **values)
        elif _stdlib.isEnabledFor(level):
            # As structlog's KeyValueRenderer(key_order=["event"], sort_keys=True) writes it.
            pairs = [("event", event), *sorted(values.items())]
            _stdlib.log(level, " ".join(f"{key}={value!r}" for key, value in pairs))

    def bind(self, **values: Any) -> _Logger:
        return _Logger({**self._bound, **values})

    def debug(self, event: str, **values: Any) -> None:
        self._log(logging.DEBUG, "debug", event, values)

    def info(self, event: str, **values: Any) -> None:
        self._log(logging.INFO, "info", event, values)

    def warning(self, event: str, **values: Any) -> None:
        self._log(logging.WARNING, "warning", event, values)


logger = _Logger()

#: Values shorter than this are not redacted: masking "1" or "on" everywhere would destroy logs.
MIN_REDACTED_LENGTH = 4


class SecretRedactor:
    """A structlog processor that masks every registered value in an event dict."""

    def __init__(self) -> None:
        self._forms: set[str] = set()
        self._lock = threading.Lock()
        self._ordered: tuple[str, ...] | None = ()
        #: Values registered whose forms are not computed yet: most are never needed (nothing
        #: is logged), and a validation of 300 secrets spent 4 ms computing them.
        self._pending: set[str] = set()

    def add(self, values: Iterable[str]) -> None:
        """Register values (and their base64 and URL-encoded forms) for redaction."""
        fresh = {value for value in values if len(value) >= MIN_REDACTED_LENGTH}
        with self._lock:
            if not fresh <= self._forms:
                self._pending |= fresh
                self._ordered = None  # sorted again when next needed, not on every read

    @staticmethod
    def _forms_of(value: str) -> set[str]:
        raw = value.encode(errors="surrogatepass")
        return {
            value,
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode(),
            base64.b64encode(raw).decode().rstrip("="),
            urllib.parse.quote(raw, safe=""),
            urllib.parse.quote_plus(raw),
            # As a repr, a traceback or a JSON string shows it: `\` and quotes escaped.
            repr(value)[1:-1],
            repr(value + '"')[1:-2],  # single-quoted with `'` escaped, as in a dict
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
            value.encode("unicode_escape").decode("ascii"),
        }

    def _order(self) -> tuple[str, ...]:
        ordered = self._ordered
        if ordered is None:
            with self._lock:
                for value in self._pending:
                    self._forms |= self._forms_of(value)
                self._pending.clear()
                # Longest first, so a value is masked whole before any part of it.
                ordered = self._ordered = tuple(sorted(self._forms, key=len, reverse=True))
        return ordered

    def add_secret(self, secret: Secret) -> None:
        self.add(secret.values.values())

    def clear(self) -> None:
        with self._lock:
            self._forms.clear()
            self._pending.clear()
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
        exc_info = event_dict.pop("exc_info", None)
        if exc_info:
            # The renderer would format the traceback after us: format it here, then redact.
            event_dict["exception"] = _format_exception(exc_info)
        for key, value in list(event_dict.items()):
            event_dict[key] = self._redact_value(value)
        return event_dict

    def _redact_value(self, value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, (bytes, bytearray)):
            return self.redact(value.decode(errors="replace"))
        if isinstance(value, Mapping):  # dict, mappingproxy (secret.values), ...
            return {self._redact_value(k): self._redact_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self._redact_value(v) for v in value]
        if isinstance(value, BaseException):
            return self.redact(repr(value))
        shown = repr(value)  # any other object is shown by its repr: keep it unless that leaks
        redacted = self.redact(shown)
        return value if redacted == shown else redacted


def _format_exception(exc_info: Any) -> str:
    if isinstance(exc_info, BaseException):
        return "".join(traceback.format_exception(type(exc_info), exc_info, exc_info.__traceback__))
    if not isinstance(exc_info, tuple):
        exc_info = sys.exc_info()
    if exc_info[0] is None:
        return "NoneType: None"
    return "".join(traceback.format_exception(*exc_info))


#: The process-wide redactor: every value stacksecrets reads is registered here.
redactor = SecretRedactor()
#: Add this to your structlog processors (before the renderer) to mask known secret values.
redact_secrets = redactor


# --- stamina's retry events --------------------------------------------------------------------


def _is_ours(error: BaseException) -> bool:
    from ._errors import StackSecretsError

    return isinstance(error, StackSecretsError)


class _RetryHook:
    """stamina's on-retry hook: our retries go to our logger; others to the earlier hooks."""

    def __init__(self, others: tuple[Any, ...]) -> None:
        self.others = others

    def __call__(self, details: Any) -> None:
        if _is_ours(details.caused_by):
            logger.info(
                "stacksecrets.retry_scheduled",
                retry=details.retry_num,
                wait_for=round(details.wait_for, 2),
                waited_so_far=round(details.waited_so_far, 2),
                error=type(details.caused_by).__name__,
                reason=str(details.caused_by),  # our messages hold names and hosts, no values
            )
            from ._observe import timed_wait

            timed_wait(
                f"retry {details.retry_num} after: {details.caused_by}",
                details.wait_for,
            )
            return
        for hook in self.others:
            hook(details)


def install_retry_hook() -> None:
    """Route stamina's retry events of stacksecrets' store calls to the library's logger (see
    above). Called before a retry is scheduled, not on import: reading stamina's hooks makes
    stamina import its defaults (structlog, and rich through it)."""
    from stamina.instrumentation import get_on_retry_hooks, set_on_retry_hooks

    current = tuple(get_on_retry_hooks())
    if not any(isinstance(hook, _RetryHook) for hook in current):
        set_on_retry_hooks([_RetryHook(current)])
