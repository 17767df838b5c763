"""``stacksecrets secret``: create, get, list, update and delete secrets in a store."""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

import click

from ._errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_PROBLEMS,
    ended_input,
    errors_to_exit_codes,
    fail,
)
from ._run import run, store_option, waits_shown
from ._text import shown

if TYPE_CHECKING:
    from .._client import AsyncClient
    from .._secret import Secret


@click.group()
def secret() -> None:
    """Create, read, list, update and delete secrets in a store."""


_EXTRA = {"ignore_unknown_options": True, "allow_extra_args": True}


def parse_pairs(args: Sequence[str]) -> dict[str, str]:
    """``--key=value`` or ``--key value`` pairs, as in ``zenml secret create NAME --k=v``.

    A mistake is shown by position and shape, never by text: a word that is not ``--key=...``
    is most often a value (``--password= hunter2``, a space after ``=``).
    """
    values: dict[str, str] = {}
    items = list(args)
    position = 0
    previous = ""
    while items:
        arg = items.pop(0)
        position += 1
        if not arg.startswith("--") or arg == "--":
            after = f" (after --{previous}=, a space after '='?)" if previous else ""
            raise click.UsageError(
                f"expected --key=value, got a word of {len(arg)} characters as key-value "
                f"argument {position}{after}; it is not shown, as it may be a value"
            )
        key, eq, value = arg[2:].partition("=")
        previous = key if eq and not value else ""
        if not eq:
            if not items:
                raise click.UsageError(f"--{shown(key)} has no value")
            value = items.pop(0)
            position += 1
        if not key:
            raise click.UsageError("a key cannot be empty")
        if key in values:
            raise click.UsageError(f"key {key!r} is given twice")
        values[key] = value
    return values


def _gather_values(args: Sequence[str], values_file: str | None) -> dict[str, str]:
    from .._loaders import load_values_file

    values = load_values_file(values_file) if values_file else {}
    for key, value in parse_pairs(args).items():
        values[key] = value
    return values


interactive_option = click.option(
    "-i",
    "--interactive",
    is_flag=True,
    help="Prompt for keys and values at the terminal; values are hidden, out of shell history.",
)

values_file_option = click.option(
    "--values-file",
    metavar="FILE",
    help="Read key: value pairs from a YAML/JSON file ('-' for stdin), out of shell history; "
    "values are kept exactly as written.",
)


def _prompted(given: dict[str, str]) -> dict[str, str]:
    """Keys and hidden values asked at the terminal (``-i``), besides those ``given``."""
    from ._terminal import prompt_values

    try:
        return prompt_values(given)
    except click.Abort as exc:  # Ctrl-C or the end of input at a prompt: nothing is written
        click.echo("", err=True)
        if ended_input(exc):
            fail("no input: standard input ended at a prompt; nothing was written", EXIT_BAD_INPUT)
        fail("interrupted: nothing was written", EXIT_INTERRUPTED)


def _check_new_name(name: str) -> None:
    """A new secret needs a name that a reference ``{{name.key}}`` can use."""
    from .._references import format_reference, scan

    if name.startswith("-"):
        fail(
            f"a secret name cannot start with '-' (got {shown(name)}); give the name first: "
            "stacksecrets secret create NAME --key=value [--store URL]",
            EXIT_BAD_INPUT,
        )
    found = scan(format_reference(name, "key"))
    if len(found.references) != 1 or found.malformed or found.references[0].reference.name != name:
        fail(
            f"no reference could name a secret called {shown(name)}: a name used as "
            "{{name.key}} has no whitespace, '.', '{' or '}'",
            EXIT_BAD_INPUT,
        )


def check_update(
    name: str,
    current: Mapping[str, str],
    values: Mapping[str, str],
    remove_keys: Collection[str],
) -> dict[str, str]:
    """The values of secret ``name`` after an update, or ``ConfigurationError`` for an update
    that cannot mean what it says (the CLI's rules, stricter than the store contract): a key
    both set and removed, a key to remove that the secret does not have, or removing every key
    (a secret has at least one; delete it instead)."""
    from .._errors import ConfigurationError

    removed = set(remove_keys)
    both = sorted(removed & set(values))
    if both:
        raise ConfigurationError(
            f"secret {name!r}: the key(s) {', '.join(map(repr, both))} are both set and removed"
        )
    absent = sorted(removed - set(current))
    if absent:
        raise ConfigurationError(
            f"secret {name!r} has no key(s) {', '.join(map(repr, absent))} to remove"
        )
    updated = {key: value for key, value in current.items() if key not in removed}
    updated.update(values)
    if not updated:
        raise ConfigurationError(
            f"removing every key would leave secret {name!r} empty; delete the secret instead"
        )
    return updated


@secret.command("create", context_settings=_EXTRA)
@click.argument("name")
@values_file_option
@interactive_option
@store_option
@click.pass_context
def secret_create(
    ctx: click.Context,
    name: str,
    values_file: str | None,
    interactive: bool,
    store: tuple[str, ...],
) -> None:
    """Create secret NAME: stacksecrets secret create NAME --key=value [--key2=value2 ...],
    or -i to be asked for keys and (hidden) values."""
    _check_new_name(name)
    with errors_to_exit_codes():
        values = _gather_values(ctx.args, values_file)
    if interactive:
        values.update(_prompted(values))
    if not values:
        fail("a secret needs at least one --key=value (or --values-file, or -i)", EXIT_BAD_INPUT)
    run(
        store,
        None,
        waits_shown(f"Creating {name!r}", lambda c: c.create_secret(name, values)),
    )
    click.echo(f"Created secret {name!r} with keys: {', '.join(map(shown, sorted(values)))}")


@secret.command("update", context_settings=_EXTRA)
@click.argument("name")
@values_file_option
@interactive_option
@click.option("--remove-key", "remove_keys", multiple=True, help="A key to remove.")
@store_option
@click.pass_context
def secret_update(
    ctx: click.Context,
    name: str,
    values_file: str | None,
    interactive: bool,
    remove_keys: tuple[str, ...],
    store: tuple[str, ...],
) -> None:
    """Set or replace keys of secret NAME (--key=value, or -i to be asked with hidden values),
    or remove some (--remove-key KEY)."""
    with errors_to_exit_codes():
        values = _gather_values(ctx.args, values_file)
    if interactive:
        values.update(_prompted(values))
    if not values and not remove_keys:
        fail("nothing to update: give --key=value, -i or --remove-key KEY", EXIT_BAD_INPUT)

    async def action(client: AsyncClient) -> None:
        if remove_keys:
            # The store contract lets an update remove absent keys, or every key; a user who
            # asks for either has made a mistake, so the CLI reads the keys first and refuses.
            current = await client.get_secret(name)
            check_update(name, current.secret_values, values, remove_keys)
        await client.update_secret(name, values, remove_keys=remove_keys)

    run(store, None, waits_shown(f"Updating {name!r}", action))
    click.echo(f"Updated secret {name!r}")


@secret.command("get")
@click.argument("name")
@click.option("--show-values", is_flag=True, help="Print the values (hidden by default).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@store_option
def secret_get(name: str, show_values: bool, as_json: bool, store: tuple[str, ...]) -> None:
    """Show secret NAME: its keys, and its values only with --show-values."""
    from .._secret import MASK

    found, source = run(store, None, lambda c: _get_with_source(c, name))
    values = {k: v if show_values else MASK for k, v in sorted(found.values.items())}
    values.update(dict.fromkeys(sorted(found.unreadable_keys), "<not readable>"))
    if as_json:
        data: dict[str, object] = {"name": found.name, "values": values}
        if source is not None:
            data["store"] = source
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"Secret {found.name!r}" + (f" (from {source}):" if source else ":"))
    for key, value in values.items():
        click.echo(f"  {shown(key)}: {value}")


async def _get_with_source(client: AsyncClient, name: str) -> tuple[Secret, str | None]:
    """The secret and, from a chain of stores, the store that answered."""
    from ..stores.contract import SupportsSources

    found = await client.get_secret(name)
    store = client.store
    return found, store.source_of(name) if isinstance(store, SupportsSources) else None


@secret.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@store_option
def secret_list(as_json: bool, store: tuple[str, ...]) -> None:
    """List the names of every secret in the store."""
    from ._terminal import is_terminal

    async def action(client: AsyncClient) -> tuple[list[str], str]:
        return await client.list_secrets(), client.store.description

    names, where = run(store, None, action, name_store=not is_terminal(sys.stdout))
    if as_json:
        click.echo(json.dumps(names))
    elif is_terminal(sys.stdout):
        from ._terminal import print_names

        print_names(names, f"{len(names)} secret(s) in {shown(where)}")
    else:
        click.echo("\n".join(map(shown, names)))


@secret.command("delete")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@store_option
def secret_delete(name: str, yes: bool, store: tuple[str, ...]) -> None:
    """Delete secret NAME."""
    try:
        confirmed = yes or click.confirm(f"Delete secret {name!r}?", default=False, err=True)
    except click.Abort as exc:
        if not ended_input(exc):
            raise
        click.echo("", err=True)
        fail(
            "no input: standard input ended before the confirmation; not deleted "
            "(--yes deletes without asking)",
            EXIT_BAD_INPUT,
        )
    if not confirmed:
        fail("not deleted", EXIT_PROBLEMS)
    deleting = waits_shown(f"Deleting {name!r}", lambda c: c.delete_secret(name))
    run(store, None, deleting)
    click.echo(f"Deleted secret {name!r}")
