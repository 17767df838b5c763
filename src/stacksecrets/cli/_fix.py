"""Fix what a validation found: create the missing secrets and add the missing keys, as
``zenml stack register-secrets`` does (``stacksecrets validate --fix``, and its ZenML-named
twin ``stacksecrets register-secrets``).

Three phases, so that no prompt waits inside the event loop (asyncio's runner turns a first
Ctrl-C into a cancellation of its task, which a blocking prompt would not notice):

1. the validation (the ``validate`` command's own);
2. the plan, from its ``missing_secret`` and ``missing_key`` problems and every reference in
   the stacks, then every value: asked with hidden input, each with where it is used, or read
   from a values file (every value the plan needs must be there). Nothing is written until
   every value is known and passes the store rules;
3. one pass of writes, one per secret in name order: a new secret is created with all its
   keys, an existing one gets only the keys it lacks (read again first: a key that appeared
   since the validation is left as it is). A write under way finishes before a Ctrl-C is taken;
   a failed write leaves the others done, and the summary names every write still to do.
   Then the stacks are validated again.

No value is ever printed, logged or put in a message.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

import anyio
import attrs
import click

from .._client import AsyncClient
from .._errors import ConfigurationError, SecretExistsError, SecretNotFoundError, StackSecretsError
from .._levels import ValidationLevel
from .._logging import logger
from .._plan import collect
from .._references import format_reference, scan
from .._report import ProblemKind, ValidationReport
from .._stack import Stack, Usage
from ..stores._base import check_write
from ._errors import NoInputError, ended_input
from ._text import quoted as _q
from ._text import shown

T = TypeVar("T")

#: How many places a prompt lists before "and N more".
_SHOWN_USAGES = 5

#: Runs one async action on a fresh client of the command's store (the CLI's ``_run``).
Runner = Callable[[Callable[[AsyncClient], Coroutine[Any, Any, Any]]], Any]


@attrs.frozen
class Need:
    """One key to set: the key, and every place a reference to it is used."""

    key: str
    usages: tuple[Usage, ...]


@attrs.frozen
class Write:
    """One write of the plan: a new secret with its keys, or keys added to an existing one."""

    secret: str
    create: bool
    needs: tuple[Need, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(need.key for need in self.needs)

    def describe(self, *, done: bool = False) -> str:
        """``create secret 'a' with key(s) 'x'``, or ``Created ...`` once ``done``."""
        keys = ", ".join(map(_q, self.keys))
        if self.create:
            return f"{'Created' if done else 'create'} secret {_q(self.secret)} with key(s) {keys}"
        return f"{'Added' if done else 'add'} key(s) {keys} to secret {_q(self.secret)}"


@attrs.frozen
class Plan:
    """Every write a fix makes, in name order, and what it refuses to create."""

    writes: tuple[Write, ...]
    #: (secret, key) pairs no reference could ever use: never created.
    refused: tuple[tuple[str, str], ...] = ()


def reference_could_use(name: str, key: str) -> bool:
    """Whether ``{{name.key}}`` reads back as exactly this secret and key (the rule
    ``secret create`` applies to a new name)."""
    found = scan(format_reference(name, key))
    if len(found.references) != 1 or found.malformed:
        return False
    reference = found.references[0].reference
    return reference.name == name and reference.key == key


def plan_fix(report: ValidationReport, stacks: Sequence[Stack]) -> Plan:
    """The writes that fix the report's missing secrets and keys.

    A missing secret gets every key any reference in ``stacks`` names; a missing key is added
    to its existing secret. Other problems are not a fix's business and stay in the report.
    """
    references = collect(stacks, zenml_runtime_check=False).secrets
    wanted: dict[tuple[str, bool], dict[str, tuple[Usage, ...]]] = {}
    for problem in report.problems:
        if problem.secret is None:
            continue
        if problem.kind is ProblemKind.MISSING_SECRET:
            keys = references.get(problem.secret, {})
            wanted.setdefault((problem.secret, True), {}).update(keys)
        elif problem.kind is ProblemKind.MISSING_KEY and problem.key is not None:
            wanted.setdefault((problem.secret, False), {})[problem.key] = problem.usages
    writes: list[Write] = []
    refused: list[tuple[str, str]] = []
    for (name, create), keys in sorted(wanted.items()):
        needs = []
        for key, usages in sorted(keys.items()):
            if reference_could_use(name, key):
                needs.append(Need(key, usages))
            else:
                refused.append((name, key))
        if needs:
            writes.append(Write(name, create, tuple(needs)))
    return Plan(tuple(writes), tuple(refused))


@attrs.frozen
class Fixer:
    """What ``--fix`` was asked to do; built before the validation, so bad input fails first."""

    dry_run: bool
    as_json: bool
    #: secret -> key -> value from the values file; ``None``: ask on the terminal.
    values: Mapping[str, Mapping[str, str]] | None = attrs.field(repr=False)
    source: str | None
    #: The command as typed, for messages: ``validate --fix`` or ``register-secrets``.
    command: str = "validate --fix"

    @classmethod
    def from_options(
        cls,
        *,
        fix: bool,
        dry_run: bool,
        values_file: str | None,
        as_json: bool,
        command: str = "validate --fix",
    ) -> Fixer | None:
        """``None`` without ``--fix``; ``ConfigurationError`` for options that cannot work.
        Whether values can be asked (a terminal) is checked once there is something to ask:
        with nothing to fix, no terminal is needed (CI)."""
        if not fix:
            if dry_run or values_file is not None:
                used = "--dry-run" if dry_run else "--values-file"
                raise ConfigurationError(f"{used} goes with --fix: validate --fix {used} ...")
            return None
        values = None
        if values_file is not None:
            from .._loaders import load_secrets_values_file

            values = load_secrets_values_file(values_file)
        source = None if values_file is None else "stdin" if values_file == "-" else values_file
        return cls(dry_run=dry_run, as_json=as_json, values=values, source=source, command=command)

    def level(self, given: str | None) -> ValidationLevel:
        """The level of a fix: keys are checked unless ``--level`` says otherwise (the level
        variables are ignored: a ZenML user's ``ZENML_SECRET_VALIDATION_LEVEL=NONE`` would
        leave a fix nothing to find)."""
        if given is None:
            return ValidationLevel.SECRET_AND_KEY_EXISTS
        level = ValidationLevel.parse(given)
        if level is ValidationLevel.NONE:
            raise ConfigurationError(
                f"{self.command} needs a level that looks secrets up: SECRET_EXISTS or "
                f"SECRET_AND_KEY_EXISTS (the default with {self.command})"
            )
        return level

    def _say(self, text: str) -> None:
        # With --json, stdout holds the report only.
        click.echo(text, err=self.as_json)

    def run(
        self, report: ValidationReport, stacks: Sequence[Stack], run: Runner
    ) -> ValidationReport:
        """Plan, gather the values, write, validate again; the report to print."""
        plan = plan_fix(report, stacks)
        for name, key in plan.refused:
            click.echo(
                f"stacksecrets: not created: secret {_q(name)} key {_q(key)}: no reference "
                "could use it as written",
                err=True,
            )
        if not plan.writes:
            if not report.ok:
                self._say("Nothing to create: no secret or key is missing.")
            return report
        if self.dry_run:
            self._say(_dry_run_text(plan, self.values, self.source, self.command))
            return report
        if self.values is None and not sys.stdin.isatty():
            raise ConfigurationError(
                f"{self.command} asks for each value on a terminal, and standard input is not "
                "one: give the values with --values-file FILE (or --values-file - for "
                "standard input), or see what would be created with --dry-run"
            )
        target = run(_write_target)
        if target is None:
            raise ConfigurationError(f"the store {report.store} is read-only: nothing to fix")
        values = self._values(plan)
        self._say(f"Writing to {target}")
        fixed: ValidationReport = run(
            lambda client: _apply(client, plan, values, report.level, stacks, self._say)
        )
        return fixed

    def _values(self, plan: Plan) -> dict[str, dict[str, str]]:
        values = self._from_file(plan) if self.values is not None else _prompt_values(plan)
        for write in plan.writes:
            check_write(write.secret, values[write.secret])  # the store rules, before any write
        return values

    def _from_file(self, plan: Plan) -> dict[str, dict[str, str]]:
        given = self.values or {}
        values: dict[str, dict[str, str]] = {}
        missing = []
        for write in plan.writes:
            chosen = values.setdefault(write.secret, {})
            for key in write.keys:
                if key in given.get(write.secret, {}):
                    chosen[key] = given[write.secret][key]
                else:
                    missing.append(f"{_q(write.secret)} key {_q(key)}")
        if missing:
            raise ConfigurationError(
                f"the values in {self.source} have no value for {', '.join(missing)}; "
                "nothing was written"
            )
        unused = [
            f"{_q(name)} key {_q(key)}"
            for name, keys in given.items()
            for key in keys
            if key not in values.get(name, {})
        ]
        if unused:
            click.echo(
                f"stacksecrets: not used from {self.source} (nothing is missing there): "
                + ", ".join(unused),
                err=True,
            )
        return values


def _dry_run_text(
    plan: Plan,
    given: Mapping[str, Mapping[str, str]] | None,
    source: str | None,
    command: str = "validate --fix",
) -> str:
    lines = [f"{command} would make {len(plan.writes)} write(s):"]
    for write in plan.writes:
        lines.append(f"  {write.describe()}")
        for need in write.needs:
            if given is None:
                where = ""
            elif need.key in given.get(write.secret, {}):
                where = f" (value from {source})"
            else:
                where = f" (no value in {source})"
            lines.append(f"    {_q(need.key)}{where} used in:")
            lines.extend(f"      {line}" for line in _usage_lines(need.usages))
    lines.append("Nothing was written (--dry-run).")
    return "\n".join(lines)


def _usage_lines(usages: Sequence[Usage]) -> list[str]:
    lines = [str(usage) for usage in usages[:_SHOWN_USAGES]]
    if len(usages) > _SHOWN_USAGES:
        lines.append(f"and {len(usages) - _SHOWN_USAGES} more")
    return lines


def _prompt_values(plan: Plan) -> dict[str, dict[str, str]]:
    """Each value from the terminal, hidden; Ctrl-C stops with nothing written."""
    count = sum(len(write.needs) for write in plan.writes)
    click.echo(f"{count} value(s) to enter; the input is hidden.", err=True)
    values: dict[str, dict[str, str]] = {}
    try:
        for write in plan.writes:
            new = " (a new secret)" if write.create else ""
            for need in write.needs:
                click.echo(
                    f"Secret {_q(write.secret)}{new}, key {_q(need.key)}, used in:", err=True
                )
                for line in _usage_lines(need.usages):
                    click.echo(f"    {line}", err=True)
                prompt = f"Value of {_q(write.secret)} key {_q(need.key)}"
                values.setdefault(write.secret, {})[need.key] = click.prompt(
                    prompt, hide_input=True, err=True, type=str
                )
    except click.Abort as exc:
        # click turns Ctrl-C and end of input at a prompt into Abort.
        click.echo("", err=True)
        if ended_input(exc):
            raise NoInputError(
                "no input: standard input ended at a prompt; nothing was written"
            ) from None
        raise KeyboardInterrupt from None
    return values


async def _write_target(client: AsyncClient) -> str | None:
    """The store the writes go to (a chain's first), or ``None`` when it is read-only."""
    if not client.store.capabilities.writable:
        return None
    stores = getattr(client.store, "stores", None)
    return str(stores[0].description) if stores else client.store.description


async def _apply(
    client: AsyncClient,
    plan: Plan,
    values: Mapping[str, Mapping[str, str]],
    level: ValidationLevel,
    stacks: Sequence[Stack],
    say: Callable[[str], None],
) -> ValidationReport:
    """The writes, one at a time, then the validation again.

    Ctrl-C (SIGINT) during the writes lets the write under way finish, then stops: its
    handler is ours for this phase, as a cancellation could cut a write short and leave the
    summary unsure of it. A second Ctrl-C stops at once.
    """
    writes = _Writes(list(plan.writes))
    async with anyio.create_task_group() as group:
        group.start_soon(_watch_interrupts, writes, group.cancel_scope)
        try:
            for write in plan.writes:
                if writes.stop:
                    break
                writes.current = write
                error = await _write(client, write, values[write.secret])
                writes.current = None
                writes.pending.remove(write)
                if error is None:
                    writes.done += 1
                    say(write.describe(done=True))
                else:
                    writes.failed.append((write, error))
        finally:
            group.cancel_scope.cancel()
            _summary(len(plan.writes), writes)
    if writes.stop:
        raise KeyboardInterrupt
    report = await client.validate_stacks(stacks, level=level)
    return attrs.evolve(report, store=client.store.description)


@attrs.define
class _Writes:
    """Where the pass of writes is."""

    pending: list[Write]
    failed: list[tuple[Write, str]] = attrs.field(factory=list)
    done: int = 0
    current: Write | None = None
    stop: bool = False


async def _watch_interrupts(writes: _Writes, scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGINT) as received:
        async for _signal in received:
            if writes.stop:
                scope.cancel()
                return
            writes.stop = True
            click.echo(
                "\nstacksecrets: stopping after the write under way (Ctrl-C again: at once)",
                err=True,
            )


async def _write(client: AsyncClient, write: Write, values: Mapping[str, str]) -> str | None:
    """One write; ``None`` when it is done, else why not (never a value)."""
    logger.info("stacksecrets.fix.write", secret=write.secret, create=write.create)
    try:
        if write.create:
            await client.create_secret(write.secret, values)
            return None
        client.invalidate(write.secret)
        present = (await client.get_secret(write.secret)).keys
        elsewhere = _held_elsewhere(client, write.secret)
        if elsewhere is not None:
            return elsewhere
        added = {key: value for key, value in values.items() if key not in present}
        if added:
            await client.update_secret(write.secret, added)
    except SecretExistsError:
        return "it was created since the validation: run the fix again to add its missing keys"
    except SecretNotFoundError:
        return "it was deleted since the validation: run the fix again to create it"
    except StackSecretsError as exc:
        return str(exc)
    return None


def _held_elsewhere(client: AsyncClient, name: str) -> str | None:
    """Why a key cannot be added to ``name`` here: in a chain, the secret is held by a later
    store, and writes go to the first (an update there finds no such secret)."""
    from ..stores.contract import SupportsSources

    store = client.store
    stores = getattr(store, "stores", None)
    if not stores or not isinstance(store, SupportsSources):
        return None
    source = store.source_of(name)
    first = stores[0].description
    if source is None or source == first:
        return None
    return (
        f"it is held by {source}, and writes go to the first store of the chain, {first}: "
        f"add the key there with `stacksecrets secret update {shown(name)} --KEY=VALUE "
        "--store URL` (its URL), or create the whole secret in the first store"
    )


def _summary(total: int, writes: _Writes) -> None:
    if not writes.failed and not writes.pending:
        return
    lines = [f"stacksecrets: {writes.done} of {total} write(s) done; still to do:"]
    lines.extend(f"  {write.describe()}: {reason}" for write, reason in writes.failed)
    for write in writes.pending:
        if write is writes.current:
            reason = "stopped while under way: it may or may not have been written"
        else:
            reason = "not tried (interrupted)"
        lines.append(f"  {write.describe()}: {reason}")
    click.echo("\n".join(lines), err=True)
