"""What a validation found: every problem, each with every place it is used, and stats."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs

from ._describe import attrs_repr
from ._errors import SecretValidationError
from ._levels import ValidationLevel
from ._stack import Usage


class ProblemKind(str, enum.Enum):
    """What is wrong with a reference."""

    INVALID_REFERENCE = "invalid_reference"
    MISSING_SECRET = "missing_secret"
    MISSING_KEY = "missing_key"
    VALUE_NOT_READABLE = "value_not_readable"
    FORBIDDEN = "forbidden"
    STORE_ERROR = "store_error"
    #: A reference that ZenML's run time would not resolve, in a stack that ZenML runs.
    ZENML_UNRESOLVABLE = "zenml_unresolvable"

    def __str__(self) -> str:
        return self.value


#: "missing_secret" is titled "missing secret" in the text report.
_TITLES = {kind: kind.value.replace("_", " ") for kind in ProblemKind}
_TITLES[ProblemKind.ZENML_UNRESOLVABLE] = "not resolved by ZenML"
_KIND_ORDER = {kind: i for i, kind in enumerate(ProblemKind)}


def _sorted_usages(usages: Sequence[Usage]) -> tuple[Usage, ...]:
    return tuple(sorted(set(usages), key=Usage.sort_key))


@attrs.frozen(repr=False)
class Problem:
    """One problem: its kind, the secret and key (when known), where it is used, and detail.

    ``detail`` never holds a secret value: for an invalid reference it is the reason and the
    text as written in the configuration; for store errors, the store's sanitized message.
    ``suggestion`` is a close name for a missing secret or key ("did you mean"): a secret name
    or a key name the validation found, never a value.
    """

    __repr__ = attrs_repr

    kind: ProblemKind
    secret: str | None
    key: str | None
    usages: tuple[Usage, ...] = attrs.field(converter=_sorted_usages)
    detail: str = ""
    suggestion: str | None = None

    @property
    def subject(self) -> str:
        if self.secret is None:
            return self.detail
        if self.key is None:
            return repr(self.secret)
        return f"{self.secret!r} key {self.key!r}"

    def sort_key(self) -> tuple[str, str, int, str, tuple[tuple[str, str, str, str], ...]]:
        usages = tuple(usage.sort_key() for usage in self.usages)
        return (self.secret or "", self.key or "", _KIND_ORDER[self.kind], self.detail, usages)

    def to_text(self) -> str:
        lines = [f"{_TITLES[self.kind]}: {self.subject}"]
        if self.secret is not None and self.detail:
            lines[0] += f" ({self.detail})"
        if self.suggestion is not None:
            lines[0] += f"; did you mean {self.suggestion!r}?"
        lines.extend(f"    used in {usage}" for usage in self.usages)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "secret": self.secret,
            "key": self.key,
            "detail": self.detail,
            "suggestion": self.suggestion,
            "usages": [usage.to_dict() for usage in self.usages],
        }


@attrs.frozen(repr=False)
class Stats:
    """Counts and timing of one validation."""

    __repr__ = attrs_repr

    stacks: int = 0
    references: int = 0
    unique_secrets: int = 0
    store_calls: int = 0
    cache_hits: int = 0
    seconds: float = 0.0
    #: Secrets whose key names came from the shared metadata cache (no read).
    metadata_hits: int = 0
    #: Answers where the store said slow down (its rate limit or quota), and retries of any
    #: transient failure (throttled ones included).
    throttled: int = 0
    retries: int = 0

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _sorted_problems(problems: Sequence[Problem]) -> tuple[Problem, ...]:
    return tuple(sorted(problems, key=Problem.sort_key))


def _count(number: int, noun: str, plural: str | None = None) -> str:
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def _sorted_sources(sources: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(sorted(sources.items())))


def _tuple_of_str(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(items)


def _report_from_fields(fields: dict[str, Any]) -> ValidationReport:
    return ValidationReport(**fields)


@attrs.frozen(repr=False)
class ValidationReport:
    """Every problem of a validation in a stable order, and its stats.

    ``store`` is where the secrets were looked up (the store's description: no credential);
    empty when not known.

    ``sources``: with a chain of stores, which store (its description, without credentials)
    answered for each secret that was found; empty for a single store.
    """

    __repr__ = attrs_repr

    level: ValidationLevel
    problems: tuple[Problem, ...] = attrs.field(converter=_sorted_problems)
    stats: Stats = attrs.field(factory=Stats)
    stacks: tuple[str, ...] = ()
    #: The store the validation asked (its description: no credentials), when known.
    store: str = ""
    sources: Mapping[str, str] = attrs.field(factory=dict, converter=_sorted_sources)
    #: What the validation could not check, said once each (never a secret value): e.g. the
    #: components whose attribute types were not known, so their references were not
    #: checked against the type ZenML gives the attribute.
    notes: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable (SecretValidationError carries it between processes): the read-only
        # ``sources`` view cannot be pickled, so the report is rebuilt from plain fields.
        fields = {field.name: getattr(self, field.name) for field in attrs.fields(type(self))}
        fields["sources"] = dict(self.sources)
        return (_report_from_fields, (fields,))

    @property
    def ok(self) -> bool:
        """No problem; or the level is NONE, which turns validation off (ZenML's meaning):
        what was found without a store call (malformed references, references ZenML's run
        time will not resolve) is then a warning, listed but not failing."""
        return not self.problems or self.level is ValidationLevel.NONE

    def raise_for_problems(self) -> ValidationReport:
        """Raise ``SecretValidationError`` carrying this report unless it is ok."""
        if not self.ok:
            raise SecretValidationError(self)
        return self

    def title(self) -> str:
        """The report's first line: OK, or how many problems (and which stacks)."""
        stacks = ", ".join(repr(name) for name in self.stacks) or "no stacks"
        if self.problems and self.level is ValidationLevel.NONE:
            count = len(self.problems)
            noun = "warning" if count == 1 else "warnings"
            return (
                f"Secret validation is off (level NONE): {count} {noun}, found without a "
                f"store call ({stacks}):"
            )
        if self.ok:
            return f"Secret references OK at level {self.level} ({stacks})."
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        return f"Secret validation at level {self.level} found {count} {noun} ({stacks}):"

    def summary(self) -> str:
        """The report's last lines: counts, timing and the store."""
        s = self.stats
        summary = (
            f"{_count(s.references, 'reference')} to {_count(s.unique_secrets, 'secret')} in "
            f"{_count(s.stacks, 'stack')}; {_count(s.store_calls, 'store call')}, "
            f"{_count(s.cache_hits, 'cache hit')}, {s.seconds:.3f} s"
        )
        if s.metadata_hits:
            summary += f"; {_count(s.metadata_hits, 'secret')} answered from the metadata cache"
        if s.throttled or s.retries:
            throttled = _count(s.throttled, "throttled answer")
            summary += f"; {throttled}, {_count(s.retries, 'retry', 'retries')}"
        if self.store:
            shown = self.store if self.store.isprintable() else repr(self.store)
            summary += f"\nStore: {shown}"
        summary += "".join(f"\nNote: {note}" for note in self.notes)
        return "\n".join([*self._sources_text(), summary])

    def to_text(self) -> str:
        lines = [self.title()]
        lines.extend("  " + problem.to_text() for problem in self.problems)
        lines.append(self.summary())
        return "\n".join(lines)

    def _sources_text(self) -> list[str]:
        """``answered by STORE: 'a', 'b'``, one line per store, in the order first used."""
        by_store: dict[str, list[str]] = {}
        for name, store in self.sources.items():
            by_store.setdefault(store, []).append(repr(name))
        return [f"answered by {store}: {', '.join(names)}" for store, names in by_store.items()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "level": self.level.value,
            "stacks": list(self.stacks),
            "store": self.store,
            "problems": [problem.to_dict() for problem in self.problems],
            "sources": dict(self.sources),
            "stats": self.stats.to_dict(),
            "notes": list(self.notes),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)
