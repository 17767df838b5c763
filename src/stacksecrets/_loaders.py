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

import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import attrs

from . import _files as files
from . import _strictjson, _yaml
from ._describe import kind_of
from ._errors import StackLoadError
from ._logging import logger
from ._stack import Component, Stack
from ._values import MAX_VALUES_FILE_BYTES, load_secrets_values_file, load_values_file
from ._yaml import Lines as _Lines
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
#: Real stacks hold hundreds; each value may be a reference that is then planned and reported,
#: so the bound is the run configurations' (a few KiB of aliases must not cost a minute).
MAX_VALUES = 100_000
#: Files a folder source contributes (case-insensitive).
STACK_FILE_SUFFIXES = (".json", ".yaml", ".yml")

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
    too_big = f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB"
    try:
        raw, _st = files.read_regular(path, max_bytes=MAX_FILE_BYTES)
    except FileNotFoundError as exc:
        raise StackLoadError("no such file", source=source) from exc
    except files.NotRegularError as exc:
        # FIFOs and devices could block or never end.
        what = (
            "is a folder, not a stack file" if "folder" in exc.reason else "is not a regular file"
        )
        raise StackLoadError(what, source=source) from None
    except files.TooLargeError:
        raise StackLoadError(too_big, source=source) from None
    except OSError as exc:
        raise StackLoadError(f"cannot read the file: {exc.strerror}", source=source) from exc
    text = files.utf8_text(raw)
    if isinstance(text, int):
        raise StackLoadError("the file is not UTF-8 text", source=source, line=text)
    if not text.strip():
        raise StackLoadError("the file is empty", source=source)
    return text


# --- text -> plain data ----------------------------------------------------------------------


def _parse_yaml(text: str, source: str) -> tuple[Any, _Lines]:
    return _yaml.parse_yaml(text, source, max_values=MAX_VALUES, max_depth=MAX_DEPTH)


def _parse_json(text: str, source: str) -> Any:
    data, problem = _strictjson.loads(text)
    if problem is None:
        return _plain(data, source)
    line = None
    if problem.kind == "syntax":
        message, line = f"invalid JSON: {problem.detail} (column {problem.column})", problem.line
    elif problem.kind == "duplicate":
        message = f"invalid JSON: duplicate key {problem.detail!r}"
    elif problem.kind == "depth":
        message = "invalid JSON: nested too deeply"
    else:
        message = "invalid JSON: a number too large to read"
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
