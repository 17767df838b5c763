"""From stacks to the set of referenced secrets: each unique name, its keys, every usage."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

from ._describe import attrs_repr
from ._references import scan
from ._report import Problem, ProblemKind
from ._stack import Stack, Usage
from ._zenml.rules import attached, unresolvable

#: The key under which ``References.secrets`` holds the places a secret is attached to a
#: component or stack, or listed in a run configuration's or step's ``secrets``: no key is
#: named there, the secret's values are injected whole. No reference can have an empty key.
ATTACHED = ""

#: How much of an invalid reference's shape a report shows.
_SHAPE_LENGTH = 40


@attrs.frozen(repr=False)
class InvalidUse:
    """A malformed reference and the place it was written.

    ``text`` is what was written, which may be a credential typed where a reference belongs:
    reports show ``shape`` instead.
    """

    __repr__ = attrs_repr

    usage: Usage
    text: str = attrs.field(repr=False)
    reason: str

    @property
    def shape(self) -> str:
        """The text's structure without its content: braces, dots and spaces kept, every
        other character shown as ``x`` (``{{q7Lp.Secr3t`` becomes ``{{xxxx.xxxxxx``)."""
        text = self.text[:_SHAPE_LENGTH]
        shown = "".join(c if c in "{}." else " " if c.isspace() else "x" for c in text)
        return shown + ("..." if len(self.text) > _SHAPE_LENGTH else "")


@attrs.frozen(repr=False)
class Unresolvable:
    """A place where ZenML's run time would not resolve a reference, and why."""

    __repr__ = attrs_repr

    usage: Usage
    reason: str


@attrs.frozen(repr=False)
class References:
    """Every reference in a set of stacks, grouped by secret name then key."""

    __repr__ = attrs_repr

    #: secret name -> key -> every usage, in a stable order. Key ``ATTACHED`` (``""``) holds
    #: the places the secret is attached or listed (``secrets`` of a component, stack, run
    #: configuration or step), in stacks that ZenML runs.
    secrets: Mapping[str, Mapping[str, tuple[Usage, ...]]]
    invalid: tuple[InvalidUse, ...]
    #: How many references were written (each occurrence counts).
    count: int
    stacks: tuple[str, ...]
    #: Places in stacks that ZenML runs where its run time would not resolve a reference.
    unresolvable: tuple[Unresolvable, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.secrets)

    def usages_of(self, name: str) -> tuple[Usage, ...]:
        """Every usage of any key of secret ``name``."""
        keys = self.secrets.get(name, {})
        return tuple(dict.fromkeys(u for usages in keys.values() for u in usages))


def collect(stacks: Iterable[Stack], *, zenml_runtime_check: bool = True) -> References:
    """Find every reference, whole or embedded, in every string leaf of every stack.

    With ``zenml_runtime_check``, also every place in a stack that ZenML runs
    (``stack.runtime == "zenml"``) where ZenML's run time would not resolve a reference, and
    every secret attached or listed there (``secrets``), under key ``ATTACHED``.
    """
    grouped: dict[str, dict[str, list[Usage]]] = {}
    invalid: list[InvalidUse] = []
    places: list[Unresolvable] = []
    count = 0
    names: list[str] = []
    for stack in stacks:
        names.append(stack.name)
        if zenml_runtime_check and stack.runtime == "zenml":
            places.extend(Unresolvable(usage, reason) for usage, reason in unresolvable(stack))
            for usage, name in attached(stack):
                grouped.setdefault(name, {}).setdefault(ATTACHED, []).append(usage)
                count += 1
        for component in stack.components:
            for path, value in component.string_leaves():
                found = scan(value)
                if not found.references and not found.malformed:
                    continue
                usage = Usage(stack.name, component.type, component.name, path, stack.kind)
                for occurrence in found.references:
                    ref = occurrence.reference
                    grouped.setdefault(ref.name, {}).setdefault(ref.key, []).append(usage)
                    count += 1
                invalid.extend(InvalidUse(usage, bad.text, bad.reason) for bad in found.malformed)
    secrets = MappingProxyType(
        {
            name: MappingProxyType(
                # Usages stay in the order the walk met them (stacks, components, paths);
                # a leaf that repeats a reference counts once.
                {key: tuple(dict.fromkeys(us)) for key, us in sorted(keys.items())}
            )
            for name, keys in sorted(grouped.items())
        }
    )
    return References(
        secrets,
        tuple(sorted(invalid, key=_invalid_order)),
        count,
        tuple(names),
        tuple(dict.fromkeys(places)),
    )


def _invalid_order(item: InvalidUse) -> tuple[tuple[str, str, str, str], str]:
    return (item.usage.sort_key(), item.text)


def attached_details(
    problems: list[Problem], refs: References, known: Iterable[str]
) -> list[Problem]:
    """Missing secrets that are attached or listed get what ZenML would do instead: skip them
    with only a warning, or (its look-up matches any name that contains the one given) inject
    a different secret, named when the validation saw one."""
    names = sorted(set(known))
    out = []
    for problem in problems:
        name = problem.secret
        if (
            problem.kind is ProblemKind.MISSING_SECRET
            and name is not None
            and ATTACHED in refs.secrets.get(name, {})
        ):
            others = [other for other in names if name in other and other != name]
            if len(others) == 1:
                detail = (
                    f"attached or listed: ZenML's look-up matches any name containing "
                    f"{name!r} and would inject {others[0]!r} instead"
                )
            else:
                detail = (
                    "attached or listed: ZenML skips a secret it cannot find with only a "
                    "warning, and the run goes on without its environment variables"
                )
            out.append(attrs.evolve(problem, detail=detail))
            continue
        out.append(problem)
    return out
