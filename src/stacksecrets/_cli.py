"""The ``stacksecrets`` command line.

Exit codes: 0 all good; 1 problems found (or the secret asked for does not exist); 2 bad input
or configuration; 3 the store could not be reached; 130 interrupted.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Coroutine, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import anyio
import attrs
import click
import structlog

from ._client import AsyncClient
from ._errors import (
    ConfigurationError,
    ForbiddenError,
    SecretExistsError,
    SecretNotFoundError,
    StackLoadError,
    StackSecretsError,
    StoreCorruptError,
    StoreUnavailableError,
)
from ._fix import Fixer, fix_options, register_secrets_command
from ._levels import ValidationLevel
from ._logging import logger, redact_secrets
from ._options import ClientOptions, OptionOverrides
from ._references import format_reference, scan
from ._report import ProblemKind, ValidationReport
from ._secret import MASK
from ._stack import Stack
from .stores._base import check_update

T = TypeVar("T")

EXIT_OK, EXIT_PROBLEMS, EXIT_BAD_INPUT, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def _configure_logging(verbose: int) -> None:
    """The CLI is an application: it, not the library, decides where events go (stderr).

    At the default verbosity only warnings show; ``-v`` adds what the command does (the store
    used, files loaded, retries scheduled), ``-vv`` every debug event.
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    structlog.configure(
        processors=[
            redact_secrets,
            structlog.processors.add_log_level,
            _escape_controls,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level, stream=sys.stderr)


def _escaped(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every non-printable character as a Python escape (``\\x1b``, ``\\n``)."""
    if text.isprintable():
        return text
    return "".join(
        char
        if char.isprintable() or (keep_newlines and char == "\n")
        else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def _escape_controls(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: strings print as they are, so a name from a stack file could send
    terminal escapes or forge lines; escape what is not printable (tracebacks keep newlines)."""
    for key, value in list(event_dict.items()):
        if isinstance(value, str):
            event_dict[key] = _escaped(value, keep_newlines=key in {"exception", "stack"})
    return event_dict


def _shown(text: str) -> str:
    """``text`` when printable, else its repr: a name cannot forge lines or send escapes."""
    return text if text.isprintable() else repr(text)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"stacksecrets: error: {message}", err=True)
    sys.exit(code)


@contextmanager
def _errors_to_exit_codes() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    except (StackLoadError, ConfigurationError, StoreCorruptError, ForbiddenError) as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    except StoreUnavailableError as exc:
        _fail(str(exc), EXIT_UNREACHABLE)
    except (SecretNotFoundError, SecretExistsError) as exc:
        _fail(str(exc), EXIT_PROBLEMS)
    except StackSecretsError as exc:
        _fail(str(exc), EXIT_UNREACHABLE)


def _run(
    store: str | None,
    options: ClientOptions,
    action: Callable[[AsyncClient], Coroutine[Any, Any, T]],
    *,
    level: ValidationLevel | None = None,
) -> T:
    async def main() -> T:
        async with AsyncClient(store, level=level, options=options) as client:
            logger.info("stacksecrets.cli.store", store=client.store.description)
            return await action(client)

    with _errors_to_exit_codes():
        return anyio.run(main)
    raise AssertionError  # pragma: no cover


store_option = click.option(
    "--store",
    "store",
    envvar="STACKSECRETS_STORE",
    metavar="URL",
    help="Secret store: file:///path.json, memory://, zenml+https://host "
    "[env STACKSECRETS_STORE; default: the local file store].",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Log to stderr: -v the store used and each retry, -vv every debug event.",
)
@click.version_option(package_name="stacksecrets")
def cli(verbose: int) -> None:
    """Secret references ({{name.key}}) in stack configuration: validate them, manage secrets."""
    _configure_logging(verbose)


# -- validate ------------------------------------------------------------------------------


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@store_option
@click.option(
    "--level",
    metavar="LEVEL",
    help="NONE, SECRET_EXISTS or SECRET_AND_KEY_EXISTS (default) "
    "[env STACKSECRETS_VALIDATION_LEVEL, ZENML_SECRET_VALIDATION_LEVEL].",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1024),
    help=f"Most store calls in flight at once [default: {ClientOptions().max_concurrency}].",
)
@click.option("--deadline", type=click.FloatRange(min=0, min_open=True), help="Seconds in all.")
@click.option("--zenml-stack", "zenml_stacks", multiple=True, help="A stack on the ZenML server.")
@click.option("--all-zenml-stacks", is_flag=True, help="Every stack on the ZenML server.")
@click.option(
    "--no-zenml-runtime-check",
    "no_zenml_runtime_check",
    is_flag=True,
    help="Do not report references ZenML's run time would not resolve (in stacks from a "
    "ZenML server or export, and run configurations): for stacks stacksecrets resolves.",
)
@click.option(
    "--active-stack",
    is_flag=True,
    help="The stack ZenML would run now [env ZENML_ACTIVE_STACK_ID, else ZenML's config].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@fix_options
def validate(
    paths: tuple[Path, ...],
    store: str | None,
    level: str | None,
    concurrency: int | None,
    deadline: float | None,
    zenml_stacks: tuple[str, ...],
    as_json: bool,
    all_zenml_stacks: bool,
    no_zenml_runtime_check: bool,
    active_stack: bool,
    fix: bool = False,
    dry_run: bool = False,
    values_file: str | None = None,
) -> None:
    """Check every secret reference in the stacks in PATHS (files or folders, including ZenML
    run configurations) and/or on a ZenML server. Every problem is reported at once, with
    every place it is used."""
    with _errors_to_exit_codes():
        fixer = Fixer.from_options(
            fix=fix, dry_run=dry_run, values_file=values_file, as_json=as_json
        )
        if fixer is not None:
            chosen = fixer.level(level)
        else:
            chosen = ValidationLevel.from_env() if level is None else ValidationLevel.parse(level)
        stacks: list[Stack] = []
        if paths:
            from ._loaders import load_stacks

            stacks.extend(load_stacks(*paths))
    if not paths and not zenml_stacks and not all_zenml_stacks and not active_stack:
        _fail(
            "nothing to validate: give stack files or folders, --zenml-stack NAME or "
            "--active-stack",
            EXIT_BAD_INPUT,
        )
    overrides: OptionOverrides = {}
    if concurrency is not None:
        overrides["max_concurrency"] = concurrency
    if deadline is not None:
        overrides["deadline"] = deadline
    if no_zenml_runtime_check:
        overrides["zenml_runtime_check"] = False
    options = ClientOptions().with_overrides(overrides)

    async def action(client: AsyncClient) -> ValidationReport:
        if zenml_stacks or all_zenml_stacks:
            stacks.extend(await _server_stacks(client, zenml_stacks, all_zenml_stacks))
        if active_stack:
            found = await _active_stack(client)
            if found.name not in {stack.name for stack in stacks}:
                stacks.append(found)
        _check_stack_names(stacks)
        with _progress(len(stacks)):
            report = await client.validate_stacks(stacks, level=chosen)
        return attrs.evolve(report, store=client.store.description)

    report = _run(store, options, action)
    if fixer is not None:
        with _errors_to_exit_codes():
            report = fixer.run(report, stacks, lambda act: _run(store, options, act))
    click.echo(report.to_json() if as_json else report.to_text())
    if report.ok:
        sys.exit(EXIT_OK)
    unreachable = any(p.kind is ProblemKind.STORE_ERROR for p in report.problems)
    sys.exit(EXIT_UNREACHABLE if unreachable else EXIT_PROBLEMS)


cli.add_command(register_secrets_command(validate))


async def _server_stacks(client: AsyncClient, names: Sequence[str], every: bool) -> list[Stack]:
    from .stores._zenml import ZenMLStore  # httpx only when stacks come from a server

    if not isinstance(client.store, ZenMLStore):
        raise ConfigurationError(
            "--zenml-stack and --all-zenml-stacks need a ZenML store: "
            "--store zenml+https://host (or STACKSECRETS_STORE)"
        )
    return await client.store.stacks.get_stacks(None if every else list(names))


async def _active_stack(client: AsyncClient) -> Stack:
    import os

    from .stores._discovery import active_stack_id
    from .stores._zenml import ZenMLStore

    stack_id, source = active_stack_id(os.environ)
    if not isinstance(client.store, ZenMLStore):
        raise ConfigurationError(
            f"--active-stack reads the stack from the ZenML server, but the store is "
            f"{client.store.description}: run `zenml login URL`, or give --store zenml+https://host"
        )
    logger.info("stacksecrets.cli.active_stack", stack_id=str(stack_id), found_by=source)
    return await client.store.stacks.get_stack_by_id(stack_id)


def _check_stack_names(stacks: Sequence[Stack]) -> None:
    seen: set[str] = set()
    for stack in stacks:
        if stack.name in seen:
            raise ConfigurationError(f"two stacks are named {stack.name!r}")
        seen.add(stack.name)


@contextmanager
def _progress(count: int) -> Iterator[None]:
    """A one-line note on stderr while a validation runs, only on a terminal."""
    if not sys.stderr.isatty():
        yield
        return
    click.echo(f"validating {count} stack(s)...", err=True, nl=False)
    try:
        yield
    finally:
        click.echo("\r\033[K", err=True, nl=False)


# -- secret ----------------------------------------------------------------------------------


@cli.group()
def secret() -> None:
    """Create, read, list, update and delete secrets in a store."""


_EXTRA = {"ignore_unknown_options": True, "allow_extra_args": True}


def _parse_pairs(args: Sequence[str]) -> dict[str, str]:
    """``--key=value`` or ``--key value`` pairs, as in ``zenml secret create NAME --k=v``."""
    values: dict[str, str] = {}
    items = list(args)
    while items:
        arg = items.pop(0)
        if not arg.startswith("--") or arg == "--":
            raise click.UsageError(f"expected --key=value, got {arg.split('=', 1)[0]!r}")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if not items:
                raise click.UsageError(f"--{key} has no value")
            value = items.pop(0)
        if not key:
            raise click.UsageError("a key cannot be empty")
        if key in values:
            raise click.UsageError(f"key {key!r} is given twice")
        values[key] = value
    return values


def _gather_values(args: Sequence[str], values_file: str | None) -> dict[str, str]:
    from ._loaders import load_values_file

    values = load_values_file(values_file) if values_file else {}
    for key, value in _parse_pairs(args).items():
        values[key] = value
    return values


values_file_option = click.option(
    "--values-file",
    metavar="FILE",
    help="Read key: value pairs from a YAML/JSON file ('-' for stdin), out of shell history; "
    "values are kept exactly as written.",
)


def _check_new_name(name: str) -> None:
    """A new secret needs a name that a reference ``{{name.key}}`` can use."""
    if name.startswith("-"):
        _fail(
            f"a secret name cannot start with '-' (got {_shown(name)}); give the name first: "
            "stacksecrets secret create NAME --key=value [--store URL]",
            EXIT_BAD_INPUT,
        )
    found = scan(format_reference(name, "key"))
    if len(found.references) != 1 or found.malformed or found.references[0].reference.name != name:
        _fail(
            f"no reference could name a secret called {_shown(name)}: a name used as "
            "{{name.key}} has no whitespace, '.', '{' or '}'",
            EXIT_BAD_INPUT,
        )


@secret.command("create", context_settings=_EXTRA)
@click.argument("name")
@values_file_option
@store_option
@click.pass_context
def secret_create(
    ctx: click.Context, name: str, values_file: str | None, store: str | None
) -> None:
    """Create secret NAME: stacksecrets secret create NAME --key=value [--key2=value2 ...]."""
    _check_new_name(name)
    with _errors_to_exit_codes():
        values = _gather_values(ctx.args, values_file)
    if not values:
        _fail("a secret needs at least one --key=value (or --values-file)", EXIT_BAD_INPUT)
    _run(store, ClientOptions(), lambda c: c.create_secret(name, values))
    click.echo(f"Created secret {name!r} with keys: {', '.join(map(_shown, sorted(values)))}")


@secret.command("update", context_settings=_EXTRA)
@click.argument("name")
@values_file_option
@click.option("--remove-key", "remove_keys", multiple=True, help="A key to remove.")
@store_option
@click.pass_context
def secret_update(
    ctx: click.Context,
    name: str,
    values_file: str | None,
    remove_keys: tuple[str, ...],
    store: str | None,
) -> None:
    """Set or replace keys of secret NAME (--key=value), or remove some (--remove-key KEY)."""
    with _errors_to_exit_codes():
        values = _gather_values(ctx.args, values_file)
    if not values and not remove_keys:
        _fail("nothing to update: give --key=value or --remove-key KEY", EXIT_BAD_INPUT)

    async def action(client: AsyncClient) -> None:
        if remove_keys:
            # The store contract lets an update remove absent keys, or every key; a user who
            # asks for either has made a mistake, so the CLI reads the keys first and refuses.
            current = await client.get_secret(name)
            check_update(name, current.secret_values, values, remove_keys)
        await client.update_secret(name, values, remove_keys=remove_keys)

    _run(store, ClientOptions(), action)
    click.echo(f"Updated secret {name!r}")


@secret.command("get")
@click.argument("name")
@click.option("--show-values", is_flag=True, help="Print the values (hidden by default).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@store_option
def secret_get(name: str, show_values: bool, as_json: bool, store: str | None) -> None:
    """Show secret NAME: its keys, and its values only with --show-values."""
    found = _run(store, ClientOptions(), lambda c: c.get_secret(name))
    values = {k: v if show_values else MASK for k, v in sorted(found.values.items())}
    values.update(dict.fromkeys(sorted(found.unreadable_keys), "<not readable>"))
    if as_json:
        click.echo(json.dumps({"name": found.name, "values": values}, indent=2))
        return
    click.echo(f"Secret {found.name!r}:")
    for key, value in values.items():
        click.echo(f"  {_shown(key)}: {value}")


@secret.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@store_option
def secret_list(as_json: bool, store: str | None) -> None:
    """List the names of every secret in the store."""
    names = _run(store, ClientOptions(), lambda c: c.list_secrets())
    click.echo(json.dumps(names) if as_json else "\n".join(map(_shown, names)))


@secret.command("delete")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@store_option
def secret_delete(name: str, yes: bool, store: str | None) -> None:
    """Delete secret NAME."""
    if not yes and not click.confirm(f"Delete secret {name!r}?", default=False, err=True):
        _fail("not deleted", EXIT_PROBLEMS)
    _run(store, ClientOptions(), lambda c: c.delete_secret(name))
    click.echo(f"Deleted secret {name!r}")


# -- cache -----------------------------------------------------------------------------------


@cli.group()
def cache() -> None:
    """The shared metadata cache: key names and change stamps of secrets, never values."""


@cache.command("clear")
def cache_clear() -> None:
    """Delete the metadata cache file (the next key-level validation reads every secret)."""
    from ._metacache import MetadataCache, cache_path

    path = cache_path()
    try:
        removed = anyio.run(MetadataCache(path, max_age=0).clear)
    except (OSError, TimeoutError) as exc:
        _fail(f"cannot delete the metadata cache {path}: {type(exc).__name__}", EXIT_BAD_INPUT)
    click.echo(f"Cleared the metadata cache {path}" if removed else f"No metadata cache at {path}")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``stacksecrets`` command."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="stacksecrets")
