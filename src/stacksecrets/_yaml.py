"""The YAML event reader shared by stack files, run configurations, values files and ZenML's
own ``config.yaml``/``credentials.yaml``.

PyYAML's parser only produces events here; ``YamlBuilder`` builds plain data (``dict``/``list``/
scalars with string keys) straight from them, without recursion and without a node tree,
recording the line of every value. Every cap is checked as the events arrive: depth, the number
of values (an alias counts as everything it repeats, so a "billion laughs" file stops), and
explicit tags (a tag that does not construct, such as ``!!int`` on a word, is an error naming the
line, never the text). Duplicate keys, non-string keys and merge keys are refused.

Errors are ``StackLoadError`` naming the source and line; callers reading other files turn them
into their own errors. ``yaml_problem`` describes a PyYAML error without quoting the file.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

import yaml

from ._describe import kind_of, quoted
from ._errors import StackLoadError

__all__ = ["Lines", "YamlBuilder", "YamlLoader", "parse_yaml", "yaml_problem"]

# libyaml's parser is several times faster; the pure-Python one is the fallback where PyYAML
# was built without it. Both only produce events here: nothing recurses per nesting level.
YamlLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

YAML_MAP = "tag:yaml.org,2002:map"
YAML_SEQ = "tag:yaml.org,2002:seq"
YAML_MERGE = "tag:yaml.org,2002:merge"
YAML_STR = "tag:yaml.org,2002:str"


def parse_yaml(text: str, source: str, *, max_values: int, max_depth: int) -> tuple[Any, Lines]:
    """The plain data of one YAML document and where its values are; ``StackLoadError``
    (naming ``source`` and the line, never the text) for anything refused."""
    loader = None
    try:
        loader = YamlLoader(text)  # the pure-Python reader checks characters right here
        return YamlBuilder(loader, source, max_values=max_values, max_depth=max_depth).build()
    except yaml.YAMLError as exc:
        problem, line = yaml_problem(exc, text)
    finally:
        if loader is not None:
            loader.dispose()
    # Raised outside the handler, so that no exception holding the text is chained to ours.
    raise StackLoadError(f"invalid YAML: {problem}", source=source, line=line)


class Lines:
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


class _Open:
    """A mapping or list whose end event has not come yet. (A plain class: built at every
    start-up, where an attrs class costs half a millisecond, and only ever read and set.)"""

    __slots__ = ("anchor", "container", "height", "key", "key_line", "size")

    def __init__(self, container: dict[str, Any] | list[Any], anchor: str | None) -> None:
        self.container = container
        self.anchor = anchor
        self.key: object = _NO_KEY  # in a mapping: the key whose value comes next
        self.key_line = 0
        self.size = 1  # values inside, itself included (what an alias of it expands to)
        self.height = 1  # levels of mappings and lists, itself included (a scalar has none)


class YamlBuilder:
    """Builds plain data straight from parser events, recording the line of every value.

    No node tree and no recursion: memory is the data itself, and every cap is checked as the
    events arrive. An alias shares the anchored value (it is not copied) and counts as the
    number of values it stands for, so a "billion laughs" file stops at ``max_values``.
    """

    def __init__(self, loader: Any, source: str, *, max_values: int, max_depth: int) -> None:
        self._loader = loader
        self._source = source
        self._max_values = max_values
        self._max_depth = max_depth
        self._lines = Lines()
        self._open: list[_Open] = []
        self._anchors: dict[str, tuple[Any, int, int]] = {}  # value, size, height
        self._values = 0
        self._root: Any = None

    def build(self) -> tuple[Any, Lines]:
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
        if self._values > self._max_values:
            self._fail(
                f"more than {self._max_values} keys and values (an alias counts as all it repeats)",
                line,
            )

    def _start(self, event: Any, line: int) -> None:
        self._count(1, line)
        if len(self._open) >= self._max_depth:
            self._fail(f"nested deeper than {self._max_depth} levels", line)
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
        if tag is not None and tag not in ("!", YAML_MAP if is_mapping else YAML_SEQ):
            self._fail(f"unsupported YAML tag {quoted(tag)}", line)
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
        if len(self._open) - 1 + parent.height > self._max_depth:  # an alias of a deep value
            self._fail(f"nested deeper than {self._max_depth} levels", line)
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
        if scalar is not None and scalar[0] == YAML_MERGE:
            self._fail("YAML merge keys ('<<') are not supported; write the keys out", line)
        if not isinstance(value, str):
            shown = f" {quoted(scalar[1])}" if scalar is not None else ""
            self._fail(
                f"key{shown} is read as {kind_of(value)}, but keys must be strings; quote it", line
            )
        if value in container:
            first = self._lines.of(container, value)
            self._fail(f"duplicate key {quoted(value)} (first at line {first})", line)
        return value

    def _resolve(self, event: Any) -> str:
        if event.tag is None or event.tag == "!":
            return str(self._loader.resolve(yaml.ScalarNode, event.value, event.implicit))
        return str(event.tag)

    def _scalar(self, event: Any, tag: str, line: int) -> Any:  # noqa: RET503 - _fail raises
        if tag == YAML_STR:  # most values: no node, no constructor
            return event.value
        if tag == YAML_MERGE:
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
