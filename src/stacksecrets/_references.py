"""The ``{{name.key}}`` grammar.

Two readings of a string value:

*Whole value* (``parse_reference``), exactly as ZenML 0.98 reads it: the value must match
``\\{\\{\\s*\\S+?\\.\\S+\\s*\\}\\}`` as a whole; the braces are dropped, the rest split on the
FIRST ``.`` and stripped. So ``{{ a.b }}`` is ``a``/``b``, ``{{a.b.c}}`` is ``a``/``b.c``,
``{{a..b}}`` is ``a``/``.b``, ``{{{a.b}}`` is ``{a``/``b`` and ``{{a.b}}}`` is ``a``/``b}``.
Two exceptions, where ZenML's reading is a bug and stacksecrets is stricter:

- where that body itself contains ``}}`` (``{{a.b}}{{c.d}}``, which ZenML reads as key
  ``b}}{{c.d``), stacksecrets reads the value as text holding several references;
- where the name is empty (``{{.a.b}}``, which ZenML reads as secret ``''`` and key ``a.b``),
  stacksecrets reports a malformed reference: no secret can have an empty name.

``is_secret_reference`` keeps ZenML's answer in both cases (it says what ZenML would do).

*Embedded* (``scan``): references anywhere inside a longer string, each with its span, such as
``postgresql://{{db.user}}:{{db.password}}@host/x``. Inside text a reference is
``{{``, optional whitespace, a *name* of one or more characters other than whitespace, ``.``,
``{`` and ``}``, then ``.``, then a *key* of one or more characters other than whitespace,
``{`` and ``}`` (a key may contain dots), optional whitespace, ``}}``. Extra opening braces
before a reference are literal text (``x{{{a.b}}`` is ``x{`` then ``{{a.b}}``).

Every other unescaped ``{{`` is *malformed* (``{{ }}``, ``{{name}}``, ``{{.key}}``,
``{{name.}}``, ``{{a b.c}}``, ``{{a.b`` with no ``}}``) and is reported with its span and a
reason, never silently kept as text.

Escape: ``\\{{`` stands for a literal ``{{``. It is never a reference, and resolving a value
turns it into ``{{``. ZenML has no escape and keeps such a value unchanged.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import attrs

from ._describe import attrs_repr

_EMBEDDED = re.compile(r"\{\{\s*([^\s.{}]+)\.([^\s{}]+)\s*\}\}")
_OPENERS = re.compile(r"\\\{\{|\{\{")
_ESCAPE = "\\{{"


@attrs.frozen(order=True, repr=False)
class SecretReference:
    """A reference to key ``key`` of the secret named ``name``."""

    __repr__ = attrs_repr

    name: str
    key: str

    def __str__(self) -> str:
        return format_reference(self.name, self.key)


@attrs.frozen(repr=False)
class Occurrence:
    """A reference found in a value, at ``value[start:end]``."""

    __repr__ = attrs_repr

    reference: SecretReference
    start: int
    end: int


@attrs.frozen(repr=False)
class Malformed:
    """Text at ``value[start:end]`` that opens a reference but is not one."""

    __repr__ = attrs_repr

    text: str
    start: int
    end: int
    reason: str


@attrs.frozen(repr=False)
class Scan:
    """Everything the grammar found in one string value."""

    __repr__ = attrs_repr

    references: tuple[Occurrence, ...] = ()
    malformed: tuple[Malformed, ...] = ()
    escaped: bool = False
    #: True when the value is exactly one reference and nothing else.
    whole: bool = False

    @property
    def is_literal(self) -> bool:
        """True when the value needs no change at all when resolved."""
        return not self.references and not self.malformed and not self.escaped


_EMPTY = Scan()


def format_reference(name: str, key: str) -> str:
    """The reference text for ``name`` and ``key``: ``{{name.key}}``."""
    return "{{" + name + "." + key + "}}"


def _zenml_whole(value: str) -> bool:
    # The strings ZenML's regex above fullmatches, in linear time: the regex backtracks
    # quadratically on a long run of non-blank text with dots (64 kB took 30 s). The middle
    # is blanks, one run of non-blank text with a '.' neither first nor last, blanks; ``\s``,
    # ``str.isspace`` and ``str.strip`` agree on what a blank is.
    if not (value.startswith("{{") and value.endswith("}}")):
        return False
    core = value[2:-2].strip()
    return "." in core[1:-1] and not any(ch.isspace() for ch in core)


def is_secret_reference(value: object) -> bool:
    """Whether ZenML would treat ``value`` as a reference (whole-value reading)."""
    return isinstance(value, str) and _zenml_whole(value)


def parse_reference(value: str) -> SecretReference | None:
    """Read a whole value as ZenML does; ``None`` when it is not exactly one reference.

    Also ``None`` where ZenML's reading is a bug (see the module docs): a body holding
    ``}}``, or an empty secret name.
    """
    if not _zenml_whole(value):
        return None
    body = value[2:-2]
    if "}}" in body:
        # ZenML's reading here is a bug; ``scan`` reads the references in it.
        return None
    name, _, key = body.partition(".")
    name = name.strip()
    if not name:
        # ZenML would look up a secret named ''; ``scan`` reports it as malformed.
        return None
    return SecretReference(name, key.strip())


def scan(value: str) -> Scan:
    """Find every reference and every malformed one in ``value``."""
    if "{{" not in value:
        return _EMPTY
    return _scan(value)


# Many stacks repeat the same values ("{{aws.key}}" in fifty stacks); a scan is immutable.
@functools.lru_cache(maxsize=65536)
def _scan(value: str) -> Scan:
    whole = parse_reference(value)
    if whole is not None:
        return Scan(references=(Occurrence(whole, 0, len(value)),), whole=True)

    references: list[Occurrence] = []
    malformed: list[Malformed] = []
    escaped = False
    pos = 0
    while True:
        opener = _OPENERS.search(value, pos)
        if opener is None:
            break
        start = opener.start()
        if opener.group() == _ESCAPE:
            escaped = True
            pos = opener.end()
            continue
        if value.startswith("{", start + 2):
            pos = start + 1  # an extra opening brace is literal text
            continue
        match = _EMBEDDED.match(value, start)
        if match is not None:
            ref = SecretReference(match.group(1), match.group(2))
            references.append(Occurrence(ref, start, match.end()))
            pos = match.end()
            continue
        bad = _malformed_at(value, start)
        malformed.append(bad)
        pos = bad.end
    return Scan(tuple(references), tuple(malformed), escaped)


def _malformed_at(value: str, start: int) -> Malformed:
    # Look for '}}' only up to the next opener, so that many unclosed '{{' stay linear.
    reopen = _OPENERS.search(value, start + 2)
    limit = len(value) if reopen is None else reopen.start()
    close = value.find("}}", start + 2, limit)
    if close == -1:
        return Malformed(value[start:limit], start, limit, "'{{' is not closed by '}}'")
    end = close + 2
    body = value[start + 2 : close].strip()
    name, dot, key = body.partition(".")
    if not body:
        reason = "empty reference: expected {{secret_name.key}}"
    elif not dot:
        reason = "no '.' between the secret name and the key"
    elif not name:
        reason = "missing secret name before '.'"
    elif not key:
        reason = "missing key after '.'"
    elif any(ch.isspace() for ch in body):
        reason = "whitespace inside the secret name or key"
    else:
        reason = "'{' or '}' inside the secret name or key"
    return Malformed(value[start:end], start, end, reason)


def substitute(value: str, found: Scan, lookup: Callable[[SecretReference], str]) -> str:
    """``value`` with each reference replaced by ``lookup(reference)`` and escapes undone.

    Malformed parts are kept as written; callers refuse to resolve them beforehand.
    """
    if found.is_literal:
        return value
    parts: list[str] = []
    pos = 0
    for occurrence in found.references:
        parts.append(_unescape(value[pos : occurrence.start]))
        parts.append(lookup(occurrence.reference))
        pos = occurrence.end
    parts.append(_unescape(value[pos:]))
    return "".join(parts)


def _unescape(text: str) -> str:
    return text.replace(_ESCAPE, "{{")
