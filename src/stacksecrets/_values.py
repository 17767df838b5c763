"""Values files: the keys of one secret (``secret create/update --values-file``) or of many
(``validate --fix --values-file``), each value exactly as written.

Self-contained on purpose (the CLI's values commands are its only users): it reads through the
safe-file room and the YAML parser's events, never a constructor.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import yaml

from . import _files as files
from . import _yaml
from ._describe import quoted
from ._errors import ConfigurationError
from ._yaml import YAML_MAP, YAML_STR

__all__ = ["MAX_VALUES_FILE_BYTES", "load_secrets_values_file", "load_values_file"]

#: A values file larger than this is refused: it holds the keys of one secret, a few KiB at most.
MAX_VALUES_FILE_BYTES = 1024 * 1024

T = TypeVar("T")


def load_values_file(source: str) -> dict[str, str]:
    """The key-value pairs of a values file (``-``: standard input), each value exactly as written.

    The file is one YAML (or JSON) mapping of keys to scalars. Every scalar is kept as the text
    written in the file: ``0123``, ``1_000``, ``12:30:00``, ``3.10``, ``0x1F``, ``yes`` and ``~``
    stay those strings (a quoted scalar is its text without the quotes and with its escapes
    applied). A value that is a mapping or a list, a YAML tag other than ``!!str``, a duplicate
    or empty key, more than ``MAX_VALUES_FILE_BYTES``, or text that is not UTF-8 is a
    ``ConfigurationError`` naming the file, the line and the key; never a value.
    """
    text, where = _read_values_source(source, "a values file holds the keys of one secret")
    return _parse_values(text, where, lambda reader: reader.read())


def load_secrets_values_file(source: str) -> dict[str, dict[str, str]]:
    """The values of many secrets (``-``: standard input): a mapping of secret names to
    mappings of keys to values, each value exactly as written (the rules of
    ``load_values_file``, one level deeper). Used by ``validate --fix``."""
    text, where = _read_values_source(source, "a values file holds the keys to set up")
    return _parse_values(text, where, lambda reader: reader.read_nested())


def _read_values_source(source: str, purpose: str) -> tuple[str, str]:
    where = "stdin" if source == "-" else source
    too_large = False
    try:
        if source == "-":
            raw = sys.stdin.buffer.read(MAX_VALUES_FILE_BYTES + 1)
        else:  # a FIFO or /dev/stdin is fine (``<(...)``): read capped
            raw, _st = files.read_regular(source, max_bytes=MAX_VALUES_FILE_BYTES, streams=True)
    except files.TooLargeError:
        too_large = True
    except files.NotRegularError as exc:
        raise ConfigurationError(f"cannot read values from {where}: it {exc.reason}") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read values from {where}: {exc.strerror}") from None
    if too_large or len(raw) > MAX_VALUES_FILE_BYTES:
        raise ConfigurationError(
            f"values in {where}: larger than {MAX_VALUES_FILE_BYTES // 1024} KiB; {purpose}"
        )
    text = files.utf8_text(raw)
    if isinstance(text, int):
        raise ConfigurationError(f"values in {where}, line {text}: not UTF-8 text")
    return text, where


def _parse_values(text: str, where: str, read: Callable[[_ValuesReader], T]) -> T:
    loader = None
    try:
        loader = _yaml.YamlLoader(text)
        return read(_ValuesReader(loader, where))
    except yaml.YAMLError as exc:
        problem, line = _yaml.yaml_problem(exc, text)
    finally:
        if loader is not None:
            loader.dispose()
    at = "" if line is None else f", line {line}"
    raise ConfigurationError(f"values in {where}{at}: invalid YAML: {problem}")


class _ValuesReader:
    """One flat mapping of scalars, read from parser events (no constructor, no recursion)."""

    def __init__(self, loader: Any, where: str) -> None:
        self._loader = loader
        self._where = where
        self._anchors: dict[str, str] = {}

    def _fail(self, message: str, event: Any) -> NoReturn:
        line = event.start_mark.line + 1
        raise ConfigurationError(f"values in {self._where}, line {line}: {message}")

    def read(self) -> dict[str, str]:
        self._document_start()
        values = self._pairs(None)
        self._document_end()
        return values

    def read_nested(self) -> dict[str, dict[str, str]]:
        """secret name -> key -> value."""
        loader = self._loader
        self._document_start("expected a mapping of secret names to key: value mappings")
        secrets: dict[str, dict[str, str]] = {}
        while not loader.check_event(yaml.MappingEndEvent):
            name_event = loader.get_event()
            name = self._scalar(name_event, None)
            if not name:
                self._fail("a secret name cannot be empty", name_event)
            if name in secrets:
                self._fail(f"the secret {quoted(name)} appears twice", name_event)
            inner = loader.get_event()
            if not isinstance(inner, yaml.MappingStartEvent):
                self._fail(
                    f"secret {quoted(name)} must be a mapping of key: value, one key per line",
                    inner,
                )
            self._check_tag(inner, None, YAML_MAP)
            secrets[name] = self._pairs(name)
        loader.get_event()  # mapping end
        self._document_end()
        return secrets

    def _document_start(
        self, expected: str = "expected a mapping of key: value, one key per line"
    ) -> None:
        loader = self._loader
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            raise ConfigurationError(f"values in {self._where}: empty; expected key: value lines")
        loader.get_event()  # document start
        start = loader.get_event()
        if not isinstance(start, yaml.MappingStartEvent):
            self._fail(expected, start)
        self._check_tag(start, None, YAML_MAP)

    def _pairs(self, secret: str | None) -> dict[str, str]:
        """key: scalar pairs up to the end of the mapping just opened."""
        loader = self._loader
        values: dict[str, str] = {}
        of = "" if secret is None else f" of secret {quoted(secret)}"
        while not loader.check_event(yaml.MappingEndEvent):
            key_event = loader.get_event()
            key = self._scalar(key_event, None)
            if not key:
                self._fail(f"a key{of} cannot be empty", key_event)
            if key in values:
                self._fail(f"the key {quoted(key)}{of} appears twice", key_event)
            values[key] = self._scalar(loader.get_event(), key)
        loader.get_event()  # mapping end
        return values

    def _document_end(self) -> None:
        loader = self._loader
        loader.get_event()  # document end
        if not loader.check_event(yaml.StreamEndEvent):
            extra = loader.peek_event()
            self._fail("expected a single YAML document, found another ('---')", extra)

    def _scalar(self, event: Any, key: str | None) -> str:
        of = "a key" if key is None else f"the value of {quoted(key)}"
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in self._anchors:
                self._fail(f"{of} is an alias with no scalar anchor before it", event)
            return self._anchors[event.anchor]
        if not isinstance(event, yaml.ScalarEvent):
            kind = "a mapping" if isinstance(event, yaml.MappingStartEvent) else "a list"
            self._fail(f"{of} is {kind}; keys and values must be single strings", event)
        self._check_tag(event, key, YAML_STR)
        if event.anchor is not None:
            self._anchors[event.anchor] = event.value
        return str(event.value)

    def _check_tag(self, event: Any, key: str | None, allowed: str) -> None:
        if event.tag in (None, "!", allowed):
            return
        of = "a key" if key is None else f"the value of {quoted(key)}"
        # A tag asks for a conversion (!!bool, !!int, !!timestamp, ...): values are kept as
        # written, so the tag would be silently ignored. Refuse it; never echo the value.
        self._fail(f"{of} has the YAML tag {quoted(event.tag)}; write the value without it", event)
