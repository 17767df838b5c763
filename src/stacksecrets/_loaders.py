"""Stacks from files: the native YAML/JSON format, ``zenml stack export`` files and ZenML run
configurations.

The format is told apart by the top-level keys, never by a flag: a mapping with ``stack_name``
(or ``zenml_version``) is a ZenML export; one with a key of a ZenML run configuration
(``settings``, ``steps``, ``run_name``, ...: see ``_zenml.runconfig``) and none of a stack file is a
run configuration; anything else is the native format described in ``docs/stack-format.md``.
``.json`` files are read as JSON, every other file as YAML.

Reading happens in three steps, each bounded so that hostile input ends in a result or a
``StackLoadError`` in bounded time and memory:

1. bytes: at most ``MAX_FILE_BYTES``, a regular file, UTF-8.
2. plain data (``dict``/``list``/scalars with string keys, at most ``MAX_DEPTH`` deep and
   ``MAX_VALUES`` values): YAML is built straight from the parser's events, without recursion,
   recording the line of every value; an alias shares its anchor's value and counts as every
   value it repeats.
3. stacks: ``_Reader`` checks the shape and names the path and, where known, the line of the
   offending item.

Error messages name files, lines, paths and keys; they never echo a configuration value.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import attrs
import yaml

from ._describe import kind_of
from ._errors import ConfigurationError, StackLoadError
from ._logging import logger
from ._stack import Component, Stack
from ._zenml.runconfig import is_run_config, read_run_config

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_VALUES",
    "MAX_VALUES_FILE_BYTES",
    "STACK_FILE_SUFFIXES",
    "load_secrets_values_file",
    "load_stack_file",
    "load_stacks",
    "load_values_file",
    "stack_from_dict",
]

#: Larger files are refused before they are parsed. Stack files are a few KiB; reading YAML
#: costs a few seconds per MiB on a busy small machine, so this and MAX_VALUES bound a load to
#: seconds, not minutes.
MAX_FILE_BYTES = 16 * 1024 * 1024
#: Mappings and lists nested deeper than this are refused (configuration needs a handful).
MAX_DEPTH = 100
#: At most this many keys and values (mappings, lists and scalars) in one file or object; a
#: YAML alias counts as everything it repeats, so a "billion laughs" file stops here too.
MAX_VALUES = 1_000_000
#: A values file (``secret create --values-file``) larger than this is refused: it holds the
#: keys of one secret, a few KiB at most.
MAX_VALUES_FILE_BYTES = 1024 * 1024

T = TypeVar("T")
#: Files a folder source contributes (case-insensitive).
STACK_FILE_SUFFIXES = (".json", ".yaml", ".yml")

# libyaml's parser is several times faster; the pure-Python one is the fallback where PyYAML
# was built without it. Both only produce events here: nothing recurses per nesting level.
_YamlLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_YAML_MAP = "tag:yaml.org,2002:map"
_YAML_SEQ = "tag:yaml.org,2002:seq"
_YAML_MERGE = "tag:yaml.org,2002:merge"
_YAML_STR = "tag:yaml.org,2002:str"

_NATIVE_TOP_KEYS = ("stacks", "stack", "name")
_STACK_KEYS = frozenset({"name", "components"})
_EXTENSION_PREFIX = "x-"
_COMPONENT_KEYS = frozenset({"type", "flavor", "name", "configuration", "settings"})


def load_stacks(*sources: str | os.PathLike[str]) -> list[Stack]:
    """Every stack in the given files and folders, in the order given.

    A folder contributes its ``.yaml``, ``.yml`` and ``.json`` files (not those in sub-folders,
    not hidden ones), sorted by name. A file named twice (directly or through its folder) is
    read once. Two stacks with one name are an error that names both places.
    """
    stacks: list[Stack] = []
    first_seen: dict[str, str] = {}
    for path in _stack_files(sources):
        for stack, line in _load_located(path):
            where = str(path) if line is None else f"{path}:{line}"
            if stack.name in first_seen:
                raise StackLoadError(
                    f"stack {stack.name!r} is defined twice: here and at {first_seen[stack.name]}",
                    source=str(path),
                    line=line,
                )
            first_seen[stack.name] = where
            stacks.append(stack)
    return stacks


def load_stack_file(path: str | os.PathLike[str]) -> list[Stack]:
    """The stacks in one file (native format or a ``zenml stack export`` file), in file order."""
    return [stack for stack, _line in _load_located(Path(path))]


def stack_from_dict(data: Mapping[str, Any], *, source: str = "<dict>") -> Stack:
    """One stack from Python objects shaped like a stack file, checked the same way.

    ``data`` may use any form a file may (``stacks:`` with one stack, ``stack:``, ``name:`` +
    ``components:``, or a ZenML export). ``source`` names it in error messages. The result
    holds copies: later changes to ``data`` do not reach it.
    """
    stacks = _Reader(source, _Lines()).read(_plain(data, source))
    if len(stacks) != 1:
        raise StackLoadError(
            f"expected exactly one stack, found {len(stacks)}; use load_stacks for several",
            source=source,
        )
    return stacks[0][0]


# --- sources -> files ------------------------------------------------------------------------


def _stack_files(sources: Iterable[str | os.PathLike[str]]) -> list[Path]:
    files: list[Path] = []
    seen: set[str] = set()
    for source in sources:
        path = Path(source)
        if path.is_dir():
            try:
                found = sorted(
                    (
                        entry
                        for entry in path.iterdir()
                        if entry.suffix.lower() in STACK_FILE_SUFFIXES
                        and not entry.name.startswith(".")
                        and entry.is_file()
                    ),
                    key=lambda entry: entry.name,
                )
            except OSError as exc:
                raise StackLoadError(
                    f"cannot list the folder: {exc.strerror}", source=str(path)
                ) from exc
            if not found:
                raise StackLoadError(
                    "the folder holds no .yaml, .yml or .json files", source=str(path)
                )
        elif path.exists():
            found = [path]
        else:
            raise StackLoadError("no such file or folder", source=str(path))
        for file in found:
            key = os.path.realpath(file)
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files


def _load_located(path: Path) -> list[tuple[Stack, int | None]]:
    source = str(path)
    started = time.perf_counter()
    text = _read_text(path)
    if path.suffix.lower() == ".json":
        data, lines = _parse_json(text, source), _Lines()
    else:
        data, lines = _parse_yaml(text, source)
    stacks = _Reader(source, lines).read(data)
    logger.debug(
        "stacksecrets.load.file",
        source=source,
        stacks=len(stacks),
        seconds=round(time.perf_counter() - started, 6),
    )
    return stacks


def _read_text(path: Path) -> str:
    source = str(path)
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise StackLoadError("no such file", source=source) from exc
    except OSError as exc:
        raise StackLoadError(f"cannot read the file: {exc.strerror}", source=source) from exc
    if stat.S_ISDIR(info.st_mode):
        raise StackLoadError("is a folder, not a stack file", source=source)
    if not stat.S_ISREG(info.st_mode):
        # FIFOs and devices could block or never end.
        raise StackLoadError("is not a regular file", source=source)
    too_big = f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB"
    if info.st_size > MAX_FILE_BYTES:
        raise StackLoadError(too_big, source=source)
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_FILE_BYTES + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise StackLoadError(f"cannot read the file: {exc.strerror}", source=source) from exc
    if len(raw) > MAX_FILE_BYTES:
        raise StackLoadError(too_big, source=source)
    text = _utf8(raw)
    if isinstance(text, int):
        raise StackLoadError("the file is not UTF-8 text", source=source, line=text)
    if not text.strip():
        raise StackLoadError("the file is empty", source=source)
    return text


# --- text -> plain data ----------------------------------------------------------------------


class _Lines:
    """Where each mapping, list and key of the plain data was in the file (1-based lines)."""

    def __init__(self) -> None:
        self._starts: dict[int, int] = {}
        self._members: dict[int, dict[object, int]] = {}
        self.top: int | None = None  # where the document's value starts

    def add(self, container: object, line: int) -> None:
        self._starts[id(container)] = line

    def add_member(self, container: object, key: object, line: int) -> None:
        self._members.setdefault(id(container), {})[key] = line

    def of(self, container: object, key: object = None) -> int | None:
        if key is not None:
            line = self._members.get(id(container), {}).get(key)
            if line is not None:
                return line
        return self._starts.get(id(container))


def _parse_yaml(text: str, source: str) -> tuple[Any, _Lines]:
    loader = None
    try:
        loader = _YamlLoader(text)  # the pure-Python reader checks characters right here
        return _YamlBuilder(loader, source).build()
    except yaml.YAMLError as exc:
        problem, line = yaml_problem(exc, text)
    finally:
        if loader is not None:
            loader.dispose()
    # Raised outside the handler, so that no exception holding the text is chained to ours.
    raise StackLoadError(f"invalid YAML: {problem}", source=source, line=line)


#: Quoted text longer than this in a PyYAML message is replaced: it is text from the file.
_QUOTED = re.compile(r"'[^'\n]{4,}'|\"[^\"\n]{4,}\"")


def yaml_problem(exc: yaml.YAMLError, text: str) -> tuple[str, int | None]:
    """What is wrong (with the column) and the 1-based line, never the text of the file.

    ``str(exc)`` quotes the offending line (the pure-Python loader) and messages such as
    "found undefined tag handle '!x!'" quote the file; quoted parts longer than three characters
    are replaced by ``'...'`` (a single character such as ``'\\t'`` stays: it says what is wrong).
    """
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = ", ".join(part for part in (exc.context, exc.problem) if part)
        what = _QUOTED.sub("'...'", what) or type(exc).__name__
        if mark is None:
            return what, None
        return f"{what} (column {mark.column + 1})", mark.line + 1
    if isinstance(exc, yaml.reader.ReaderError):
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        line = text.count("\n", 0, exc.position) + 1
        reason = _QUOTED.sub("'...'", str(exc.reason))
        return f"{reason}: character #x{code:04x}", line
    return type(exc).__name__, None


_NO_KEY = object()


@attrs.define
class _Open:
    """A mapping or list whose end event has not come yet."""

    container: dict[str, Any] | list[Any]
    anchor: str | None
    key: object = _NO_KEY  # in a mapping: the key whose value comes next
    key_line: int = 0
    size: int = 1  # values inside, itself included (what an alias of it expands to)
    height: int = 1  # levels of mappings and lists, itself included (a scalar has none)


class _YamlBuilder:
    """Builds plain data straight from parser events, recording the line of every value.

    No node tree and no recursion: memory is the data itself, and every cap is checked as the
    events arrive. An alias shares the anchored value (it is not copied) and counts as the
    number of values it stands for, so a "billion laughs" file stops at ``MAX_VALUES``.
    """

    def __init__(self, loader: Any, source: str) -> None:
        self._loader = loader
        self._source = source
        self._lines = _Lines()
        self._open: list[_Open] = []
        self._anchors: dict[str, tuple[Any, int, int]] = {}  # value, size, height
        self._values = 0
        self._root: Any = None

    def build(self) -> tuple[Any, _Lines]:
        loader = self._loader
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            raise StackLoadError("the file is empty (only comments)", source=self._source)
        loader.get_event()  # document start
        while True:
            event = loader.get_event()
            line = int(event.start_mark.line) + 1
            if isinstance(event, yaml.ScalarEvent):
                self._count(1, line)
                tag = self._resolve(event)
                value = self._scalar(event, tag, line)
                self._remember(event.anchor, value, 1, 0)
                self._add(value, line, 1, 0, (tag, event.value))
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                self._start(event, line)
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                done = self._open.pop()
                self._remember(done.anchor, done.container, done.size, done.height)
                self._add(
                    done.container, self._lines.of(done.container) or line, done.size, done.height
                )
            elif isinstance(event, yaml.AliasEvent):
                self._alias(event, line)
            if not self._open:
                break
        loader.get_event()  # document end
        if not loader.check_event(yaml.StreamEndEvent):
            extra = loader.peek_event()
            self._fail(
                "expected a single YAML document, found another ('---')",
                int(extra.start_mark.line) + 1,
            )
        return self._root, self._lines

    def _fail(self, message: str, line: int) -> NoReturn:
        raise StackLoadError(message, source=self._source, line=line)

    def _count(self, values: int, line: int) -> None:
        self._values += values
        if self._values > MAX_VALUES:
            self._fail(
                f"more than {MAX_VALUES} keys and values (an alias counts as all it repeats)",
                line,
            )

    def _start(self, event: Any, line: int) -> None:
        self._count(1, line)
        if len(self._open) >= MAX_DEPTH:
            self._fail(f"nested deeper than {MAX_DEPTH} levels", line)
        is_mapping = isinstance(event, yaml.MappingStartEvent)
        if (
            self._open
            and self._open[-1].key is _NO_KEY
            and isinstance(self._open[-1].container, dict)
        ):
            if is_mapping:
                self._fail(
                    "a mapping cannot be a key; is a secret reference unquoted? "
                    "Write '{{name.key}}' in quotes",
                    line,
                )
            self._fail("a list cannot be a key; keys must be strings", line)
        tag = event.tag
        if tag is not None and tag not in ("!", _YAML_MAP if is_mapping else _YAML_SEQ):
            self._fail(f"unsupported YAML tag {tag[:80]!r}", line)
        container: dict[str, Any] | list[Any] = {} if is_mapping else []
        self._lines.add(container, line)
        self._open.append(_Open(container, event.anchor))

    def _alias(self, event: Any, line: int) -> None:
        if any(frame.anchor == event.anchor for frame in self._open):
            self._fail("an alias (*name) refers to a value that contains it", line)
        if event.anchor not in self._anchors:
            self._fail("an alias (*name) has no anchor (&name) before it", line)
        value, size, height = self._anchors[event.anchor]
        self._count(size, line)
        self._add(value, line, size, height)

    def _remember(self, anchor: str | None, value: Any, size: int, height: int) -> None:
        if anchor is not None:
            self._anchors[anchor] = (value, size, height)

    def _add(
        self, value: Any, line: int, size: int, height: int, scalar: tuple[str, str] | None = None
    ) -> None:
        # `scalar` is (tag, text as written) when the value is a scalar: keys need both.
        if not self._open:
            self._root = value
            self._lines.top = line
            return
        parent = self._open[-1]
        parent.size += size
        parent.height = max(parent.height, height + 1)
        if len(self._open) - 1 + parent.height > MAX_DEPTH:  # an alias of a deep value
            self._fail(f"nested deeper than {MAX_DEPTH} levels", line)
        container = parent.container
        if isinstance(container, list):
            self._lines.add_member(container, len(container), line)
            container.append(value)
        elif parent.key is _NO_KEY:
            parent.key = self._key(value, line, scalar, container)
            parent.key_line = line
        else:
            container[parent.key] = value  # type: ignore[index]
            self._lines.add_member(container, parent.key, parent.key_line)
            parent.key = _NO_KEY

    def _key(
        self, value: Any, line: int, scalar: tuple[str, str] | None, container: dict[str, Any]
    ) -> str:
        if scalar is not None and scalar[0] == _YAML_MERGE:
            self._fail("YAML merge keys ('<<') are not supported; write the keys out", line)
        if not isinstance(value, str):
            shown = f" {scalar[1][:80]!r}" if scalar is not None else ""
            self._fail(
                f"key{shown} is read as {_kind(value)}, but keys must be strings; quote it", line
            )
        if value in container:
            first = self._lines.of(container, value)
            self._fail(f"duplicate key {value[:80]!r} (first at line {first})", line)
        return value

    def _resolve(self, event: Any) -> str:
        if event.tag is None or event.tag == "!":
            return str(self._loader.resolve(yaml.ScalarNode, event.value, event.implicit))
        return str(event.tag)

    def _scalar(self, event: Any, tag: str, line: int) -> Any:  # noqa: RET503 - _fail raises
        if tag == _YAML_STR:  # most values: no node, no constructor
            return event.value
        if tag == _YAML_MERGE:
            return "<<"  # refused by _key, where it means something
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            return self._loader.construct_object(node)
        except Exception:  # noqa: BLE001, S110 - `!!bool x` is a KeyError, `!!int x` a ValueError:
            pass  # each holds the text, so ours is raised below, outside the handler, unchained
        finally:
            self._loader.constructed_objects.pop(node, None)
        if tag not in type(self._loader).yaml_constructors:
            self._fail(f"invalid YAML: could not determine a constructor for the tag {tag!r}", line)
        self._fail(f"invalid YAML: cannot read this {tag.rsplit(':', 1)[-1]}", line)


class _DuplicateKeyError(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


def _parse_json(text: str, source: str) -> Any:
    # Every error is raised outside its handler: JSONDecodeError.doc holds the whole file.
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        message, line = f"invalid JSON: {exc.msg} (column {exc.colno})", exc.lineno
    except _DuplicateKeyError as exc:
        message, line = f"invalid JSON: duplicate key {exc.key!r}", None
    except RecursionError:
        message, line = "invalid JSON: nested too deeply", None
    except ValueError:  # e.g. an integer with more digits than Python converts
        message, line = "invalid JSON: a number too large to read", None
    else:
        return _plain(data, source)
    raise StackLoadError(message, source=source, line=line)


def _plain(value: object, source: str) -> Any:
    """A copy of ``value`` as dicts with string keys, lists and leaves; depth and size capped."""
    nodes = 0

    def count() -> None:
        nonlocal nodes
        nodes += 1
        if nodes > MAX_VALUES:
            raise StackLoadError(f"more than {MAX_VALUES} keys and values", source=source)

    def start(item: object, path: str, depth: int) -> Any:
        count()
        if not isinstance(item, (Mapping, list, tuple)):
            return item
        if depth > MAX_DEPTH:
            raise StackLoadError(f"{path}: nested deeper than {MAX_DEPTH} levels", source=source)
        out: dict[str, Any] | list[Any] = {} if isinstance(item, Mapping) else []
        pending.append((item, out, path, depth))
        return out

    pending: list[tuple[Any, dict[str, Any] | list[Any], str, int]] = []
    result = start(value, "", 1)
    while pending:
        item, out, path, depth = pending.pop()
        if isinstance(out, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise StackLoadError(
                        f"{_where(path)}: keys must be strings, found {_kind(key)}", source=source
                    )
                count()
                out[key] = start(child, _member(path, key), depth + 1)
        else:
            out.extend(start(child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
    return result


# --- plain data -> stacks --------------------------------------------------------------------


def _kind(value: object) -> str:
    return kind_of(value)


def _member(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _where(path: str) -> str:
    return path or "top level"


class _Reader:
    """Checks the shape of plain data and makes stacks of it, naming path and line on error."""

    def __init__(self, source: str, lines: _Lines) -> None:
        self._source = source
        self._lines = lines

    def _fail(self, message: str, container: object, key: object = None) -> NoReturn:
        raise StackLoadError(message, source=self._source, line=self._lines.of(container, key))

    def read(self, data: Any) -> list[tuple[Stack, int | None]]:
        if not isinstance(data, dict):
            raise StackLoadError(
                f"the top level must be a mapping, not {_kind(data)}",
                source=self._source,
                line=self._lines.top,
            )
        if "stack_name" in data or "zenml_version" in data:
            stacks = [self._zenml_export(data)]
        elif is_run_config(data):
            stacks = [(read_run_config(data, self._source, self._lines.of), self._lines.top)]
        else:
            stacks = self._native(data)
        first: dict[str, int | None] = {}
        for stack, line in stacks:
            if stack.name in first:
                at = "" if first[stack.name] is None else f" (first at line {first[stack.name]})"
                raise StackLoadError(
                    f"stack {stack.name!r} is defined twice in this file{at}",
                    source=self._source,
                    line=line,
                )
            first[stack.name] = line
        return stacks

    # The native format: `stacks: [...]`, `stack: {...}`, or the stack itself at the top.
    def _native(self, data: dict[str, Any]) -> list[tuple[Stack, int | None]]:
        if not any(key in data for key in _NATIVE_TOP_KEYS):
            self._fail(
                "no stack found: expected 'stacks' (a list), 'stack' (a mapping) or 'name' and "
                "'components' (see docs/stack-format.md), or 'stack_name' (a zenml stack export)",
                data,
            )
        if "stacks" in data:
            self._only_keys(data, {"stacks"}, "")
            items = data["stacks"]
            if not isinstance(items, list):
                self._fail(f"stacks: must be a list, not {_kind(items)}", data, "stacks")
            return [self._stack(item, items, i, f"stacks[{i}]") for i, item in enumerate(items)]
        if "stack" in data:
            self._only_keys(data, {"stack"}, "")
            return [self._stack(data["stack"], data, "stack", "stack")]
        self._only_keys(data, _STACK_KEYS, "")
        return [self._stack(data, None, None, "")]

    def _stack(self, item: Any, parent: object, key: object, path: str) -> tuple[Stack, int | None]:
        if not isinstance(item, dict):
            self._fail(f"{_where(path)}: a stack must be a mapping, not {_kind(item)}", parent, key)
        self._only_keys(item, _STACK_KEYS, path)
        name = self._name(item, "name", path, "stack")
        if "components" not in item:
            self._fail(f"{_where(path)}: stack {name!r} has no 'components'", item)
        components = self._components(item["components"], item, _member(path, "components"))
        return self._make_stack(name, components, item), self._lines.of(item)

    # `zenml stack export`: stack_name, components {type: [component, ...] | component}.
    def _zenml_export(self, data: dict[str, Any]) -> tuple[Stack, int | None]:
        name = self._name(data, "stack_name", "", "zenml stack export")
        if "components" not in data:
            self._fail(f"stack {name!r} has no 'components'", data)
        components = data["components"]
        if not isinstance(components, dict):
            self._fail(
                f"components: must be a mapping of component type to components in a zenml "
                f"stack export, not {_kind(components)}",
                data,
                "components",
            )
        made = self._components_by_type(components, "components", zenml=True)
        stack = self._make_stack(name, made, data)
        return attrs.evolve(stack, runtime="zenml"), self._lines.of(data)

    def _components(self, value: Any, parent: object, path: str) -> list[tuple[Component, Any]]:
        if isinstance(value, dict):
            return self._components_by_type(value, path, zenml=False)
        if not isinstance(value, list):
            self._fail(
                f"{path}: must be a list of components or a mapping of type to components, "
                f"not {_kind(value)}",
                parent,
                "components",
            )
        return [
            self._component(item, value, i, f"{path}[{i}]", None, zenml=False)
            for i, item in enumerate(value)
        ]

    def _components_by_type(
        self, by_type: dict[str, Any], path: str, *, zenml: bool
    ) -> list[tuple[Component, Any]]:
        made: list[tuple[Component, Any]] = []
        for component_type, value in by_type.items():
            here = _member(path, component_type)
            if isinstance(value, list):
                made.extend(
                    self._component(item, value, i, f"{here}[{i}]", component_type, zenml=zenml)
                    for i, item in enumerate(value)
                )
            else:  # one component instead of a list, as `zenml stack import` accepts
                made.append(
                    self._component(
                        value, by_type, component_type, here, component_type, zenml=zenml
                    )
                )
        return made

    def _component(
        self,
        item: Any,
        parent: object,
        key: object,
        path: str,
        type_from_key: str | None,
        *,
        zenml: bool,
    ) -> tuple[Component, Any]:
        if not isinstance(item, dict):
            self._fail(f"{path}: a component must be a mapping, not {_kind(item)}", parent, key)
        if not zenml:  # a typo must not silently drop settings; exports may grow new keys
            self._only_keys(item, _COMPONENT_KEYS, path)
        if type_from_key is None:
            component_type = self._name(item, "type", path, "component")
        else:
            component_type = type_from_key
            if "type" in item and item["type"] != type_from_key:
                self._fail(
                    f"{path}: component type does not match the key {type_from_key!r} it is "
                    "listed under",
                    item,
                    "type",
                )
        name = self._name(item, "name", path, "component")
        flavor = item.get("flavor", "")
        if not isinstance(flavor, str):
            self._fail(f"{path}.flavor: must be a string, not {_kind(flavor)}", item, "flavor")
        component = Component(
            type=component_type,
            flavor=flavor,
            name=name,
            configuration=self._mapping(item, "configuration", path),
            settings=self._mapping(item, "settings", path),
        )
        return component, item

    def _make_stack(
        self, name: str, components: list[tuple[Component, Any]], where: object
    ) -> Stack:
        first: dict[tuple[str, str], Any] = {}
        for component, item in components:
            ident = (component.type, component.name)
            if ident in first:
                line = self._lines.of(first[ident])
                at = "" if line is None else f" (the first at line {line})"
                self._fail(
                    f"stack {name!r} has two {component.type} components named "
                    f"{component.name!r}{at}",
                    item,
                )
            first[ident] = item
        try:
            return Stack(name=name, components=[component for component, _item in components])
        except ValueError as exc:  # the model's own checks, should they grow
            self._fail(str(exc), where)

    def _name(self, item: dict[str, Any], key: str, path: str, what: str) -> str:
        if key not in item:
            self._fail(f"{_where(path)}: {what} has no {key!r}", item)
        value = item[key]
        if not isinstance(value, str):
            self._fail(f"{_member(path, key)}: must be a string, not {_kind(value)}", item, key)
        if not value.strip():
            self._fail(f"{_member(path, key)}: must not be empty", item, key)
        return value

    def _mapping(self, item: dict[str, Any], key: str, path: str) -> dict[str, Any]:
        value = item.get(key)
        if value is None:  # absent, or `configuration:` with nothing after it
            return {}
        if not isinstance(value, dict):
            self._fail(f"{_member(path, key)}: must be a mapping, not {_kind(value)}", item, key)
        return value

    def _only_keys(self, item: dict[str, Any], allowed: Iterable[str], path: str) -> None:
        allowed = sorted(allowed)
        for key in item:
            # Top-level `x-...` keys are free for the user, e.g. to hold YAML anchors.
            if key not in allowed and not (path == "" and key.startswith(_EXTENSION_PREFIX)):
                self._fail(
                    f"{_where(path)}: unknown key {key!r} (expected {', '.join(allowed)})",
                    item,
                    key,
                )


# --- values files (secret create/update --values-file) -----------------------------------------


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
    try:
        if source == "-":
            raw = sys.stdin.buffer.read(MAX_VALUES_FILE_BYTES + 1)
        else:
            with Path(source).open("rb") as file:  # a FIFO or /dev/stdin is fine: read capped
                raw = file.read(MAX_VALUES_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"cannot read values from {where}: {exc.strerror}") from None
    if len(raw) > MAX_VALUES_FILE_BYTES:
        raise ConfigurationError(
            f"values in {where}: larger than {MAX_VALUES_FILE_BYTES // 1024} KiB; {purpose}"
        )
    text = _utf8(raw)
    if isinstance(text, int):
        raise ConfigurationError(f"values in {where}, line {text}: not UTF-8 text")
    return text, where


def _parse_values(text: str, where: str, read: Callable[[_ValuesReader], T]) -> T:
    loader = None
    try:
        loader = _YamlLoader(text)
        return read(_ValuesReader(loader, where))
    except yaml.YAMLError as exc:
        problem, line = yaml_problem(exc, text)
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
                self._fail(f"the secret {_shown(name)} appears twice", name_event)
            inner = loader.get_event()
            if not isinstance(inner, yaml.MappingStartEvent):
                self._fail(
                    f"secret {_shown(name)} must be a mapping of key: value, one key per line",
                    inner,
                )
            self._check_tag(inner, None, _YAML_MAP)
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
        self._check_tag(start, None, _YAML_MAP)

    def _pairs(self, secret: str | None) -> dict[str, str]:
        """key: scalar pairs up to the end of the mapping just opened."""
        loader = self._loader
        values: dict[str, str] = {}
        of = "" if secret is None else f" of secret {_shown(secret)}"
        while not loader.check_event(yaml.MappingEndEvent):
            key_event = loader.get_event()
            key = self._scalar(key_event, None)
            if not key:
                self._fail(f"a key{of} cannot be empty", key_event)
            if key in values:
                self._fail(f"the key {_shown(key)}{of} appears twice", key_event)
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
        of = "a key" if key is None else f"the value of {_shown(key)}"
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in self._anchors:
                self._fail(f"{of} is an alias with no scalar anchor before it", event)
            return self._anchors[event.anchor]
        if not isinstance(event, yaml.ScalarEvent):
            kind = "a mapping" if isinstance(event, yaml.MappingStartEvent) else "a list"
            self._fail(f"{of} is {kind}; keys and values must be single strings", event)
        self._check_tag(event, key, _YAML_STR)
        if event.anchor is not None:
            self._anchors[event.anchor] = event.value
        return str(event.value)

    def _check_tag(self, event: Any, key: str | None, allowed: str) -> None:
        if event.tag in (None, "!", allowed):
            return
        of = "a key" if key is None else f"the value of {_shown(key)}"
        # A tag asks for a conversion (!!bool, !!int, !!timestamp, ...): values are kept as
        # written, so the tag would be silently ignored. Refuse it; never echo the value.
        self._fail(f"{of} has the YAML tag {event.tag[:80]!r}; write the value without it", event)


def _shown(key: str) -> str:
    return repr(key[:80])


def _utf8(raw: bytes) -> str | int:
    """The text of ``raw`` (a BOM dropped), or the line of its first byte that is not UTF-8.
    The decode error, which holds all of ``raw``, never leaves: callers raise outside it."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start
    return raw.count(b"\n", 0, start) + 1
