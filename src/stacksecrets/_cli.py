"""The ``stacksecrets`` command line.

Exit codes: 0 all good; 1 problems found (or the secret asked for does not exist); 2 bad input
or configuration; 3 the store could not be reached; 130 interrupted. With ``--json``, an error
is also a JSON object on stdout: ``{"error": {"kind", "type", "message", "exit_code"}}``.
Every command runs under a deadline (``--deadline`` / ``STACKSECRETS_DEADLINE``, default
``DEFAULT_DEADLINE`` seconds).
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
from ._secret import MASK, Secret
from ._stack import Stack
from ._terminal import is_terminal
from .stores._base import check_update

T = TypeVar("T")

EXIT_OK, EXIT_PROBLEMS, EXIT_BAD_INPUT, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_KINDS = {
    EXIT_PROBLEMS: "not_found",
    EXIT_BAD_INPUT: "bad_input",
    EXIT_UNREACHABLE: "unreachable",
    EXIT_INTERRUPTED: "interrupted",
}
#: Seconds a command may take in all unless ``--deadline`` / ``STACKSECRETS_DEADLINE`` say
#: otherwise: a server that answers endless pages or never finishes cannot hang it.
DEFAULT_DEADLINE = 120.0
_DEADLINE_KEY = "stacksecrets.deadline"


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


def _json_requested() -> bool:
    ctx = click.get_current_context(silent=True)
    return ctx is not None and bool(ctx.params.get("as_json"))


def _fail(
    message: str, code: int, *, error_type: str = "UsageError", as_json: bool | None = None
) -> NoReturn:
    """One line on stderr and exit ``code``; with ``--json`` also the error object on stdout,
    so a program reading stdout never gets nothing."""
    click.echo(f"stacksecrets: error: {message}", err=True)
    if _json_requested() if as_json is None else as_json:
        error = {
            "kind": _KINDS.get(code, "error"),
            "type": error_type,
            "message": message,
            "exit_code": code,
        }
        click.echo(json.dumps({"error": error}))
    sys.exit(code)


@contextmanager
def _errors_to_exit_codes() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED, error_type="KeyboardInterrupt")
    except (StackLoadError, ConfigurationError, StoreCorruptError, ForbiddenError) as exc:
        _fail(str(exc), EXIT_BAD_INPUT, error_type=type(exc).__name__)
    except StoreUnavailableError as exc:
        _fail(str(exc), EXIT_UNREACHABLE, error_type=type(exc).__name__)
    except (SecretNotFoundError, SecretExistsError) as exc:
        _fail(str(exc), EXIT_PROBLEMS, error_type=type(exc).__name__)
    except StackSecretsError as exc:
        _fail(str(exc), EXIT_UNREACHABLE, error_type=type(exc).__name__)


def _run(
    store: Sequence[str],
    options: ClientOptions,
    action: Callable[[AsyncClient], Coroutine[Any, Any, T]],
    *,
    level: ValidationLevel | None = None,
) -> T:
    ctx = click.get_current_context(silent=True)
    limit = ctx.meta.get(_DEADLINE_KEY, DEFAULT_DEADLINE) if ctx is not None else DEFAULT_DEADLINE

    async def main() -> T:
        # No --store: STACKSECRETS_STORE or the default; one: that store; more: a chain.
        chosen = None if not store else store[0] if len(store) == 1 else list(store)
        async with AsyncClient(chosen, level=level, options=options) as client:
            logger.info("stacksecrets.cli.store", store=client.store.description)
            try:
                with anyio.fail_after(limit):
                    return await action(client)
            except TimeoutError:
                raise StoreUnavailableError(
                    f"the command did not finish within {limit:g} s against "
                    f"{client.store.description} (--deadline / STACKSECRETS_DEADLINE)"
                ) from None

    with _errors_to_exit_codes():
        return anyio.run(main)
    raise AssertionError  # pragma: no cover


class _StoreURL(click.types.StringParamType):
    """A store URL; ``STACKSECRETS_STORE`` holds one whole URL (never split on blanks)."""

    name = "url"

    def split_envvar_value(self, rv: str) -> Sequence[str]:
        return [rv] if rv.strip() else []


store_option = click.option(
    "--store",
    "store",
    type=_StoreURL(),
    multiple=True,
    envvar="STACKSECRETS_STORE",
    metavar="URL",
    help="Secret store: file:///path.json, memory://, env://, zenml+https://host, "
    "vault+https://host/MOUNT, aws-sm://?region=..., or a third-party scheme. Repeat for a "
    "chain: each secret comes from the first store that has it, writes go to the first "
    "[env STACKSECRETS_STORE; default: the local file store].",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="Log to stderr: -v the store used and each retry, -vv every debug event.",
)
@click.option(
    "--deadline",
    "cli_deadline",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_DEADLINE,
    envvar="STACKSECRETS_DEADLINE",
    show_default=True,
    metavar="SECONDS",
    help="Seconds any command may take in all [env STACKSECRETS_DEADLINE].",
)
@click.version_option(package_name="stacksecrets")
@click.pass_context
def cli(ctx: click.Context, verbose: int, cli_deadline: float) -> None:
    """Secret references ({{name.key}}) in stack configuration: validate them, manage secrets."""
    _configure_logging(verbose)
    ctx.meta[_DEADLINE_KEY] = cli_deadline


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
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    envvar="STACKSECRETS_RATE_LIMIT",
    help="Most store calls per second, for a store whose quota is known "
    "[env STACKSECRETS_RATE_LIMIT; default: no limit].",
)
@click.option(
    "--deadline",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds the validation may take in all (default: the command's deadline, "
    f"stacksecrets --deadline, {DEFAULT_DEADLINE:g} s).",
)
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
    store: tuple[str, ...],
    level: str | None,
    concurrency: int | None,
    rate_limit: float | None,
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
    if rate_limit is not None:
        overrides["rate_limit"] = rate_limit
    if deadline is not None:
        overrides["deadline"] = deadline
        click.get_current_context().meta[_DEADLINE_KEY] = deadline  # it, not the default
    if no_zenml_runtime_check:
        overrides["zenml_runtime_check"] = False
    options = ClientOptions().with_overrides(overrides)

    async def action(client: AsyncClient) -> ValidationReport:
        from . import _terminal

        with _terminal.progress("Validating", enabled=_show_progress(as_json=as_json)) as shown:
            if zenml_stacks or all_zenml_stacks:
                stacks.extend(await _server_stacks(client, zenml_stacks, all_zenml_stacks))
            if active_stack:
                found = await _active_stack(client)
                if found.name not in {stack.name for stack in stacks}:
                    stacks.append(found)
            _check_stack_names(stacks)
            if shown is not None:
                count = len(stacks)
                shown.description = f"Validating {count} stack{'' if count == 1 else 's'}"
            report = await client.validate_stacks(stacks, level=chosen)
        return attrs.evolve(report, store=client.store.description)

    report = _run(store, options, action)
    if fixer is not None:
        with _errors_to_exit_codes():
            report = fixer.run(report, stacks, lambda act: _run(store, options, act))
    _report_and_exit(report, as_json=as_json)


def _report_and_exit(report: ValidationReport, *, as_json: bool) -> NoReturn:
    """Print the report (JSON; a table on a terminal; else plain text) and exit by its result."""
    if as_json:
        click.echo(report.to_json())
    elif is_terminal(sys.stdout):
        from ._terminal import print_report

        print_report(report)
    else:
        click.echo(report.to_text())
    if report.ok:
        sys.exit(EXIT_OK)
    unreachable = any(p.kind is ProblemKind.STORE_ERROR for p in report.problems)
    sys.exit(EXIT_UNREACHABLE if unreachable else EXIT_PROBLEMS)


cli.add_command(register_secrets_command(validate))


async def _server_stacks(client: AsyncClient, names: Sequence[str], every: bool) -> list[Stack]:
    from .stores._zenml import ZenMLStore  # httpx only when stacks come from a server

    # In a chain, the stacks come from its first ZenML store.
    stores = getattr(client.store, "stores", (client.store,))
    server = next((store for store in stores if isinstance(store, ZenMLStore)), None)
    if server is None:
        raise ConfigurationError(
            "--zenml-stack and --all-zenml-stacks need a ZenML store: "
            "--store zenml+https://host (or STACKSECRETS_STORE)"
        )
    return await server.stacks.get_stacks(None if every else list(names))


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


def _waits_shown(
    what: str, action: Callable[[AsyncClient], Coroutine[Any, Any, T]]
) -> Callable[[AsyncClient], Coroutine[Any, Any, T]]:
    """``action``, showing on a terminal what it waits for (a held lock, a retry, a slow
    server) while it runs."""

    async def shown(client: AsyncClient) -> T:
        from . import _terminal

        with _terminal.progress(_shown(what), enabled=_show_progress(as_json=False)):
            return await action(client)

    return shown


def _show_progress(*, as_json: bool) -> bool:
    """Progress and waits on stderr: on a terminal, not with --json, not with -v (whose log
    lines on stderr say what happens, and a live display would write over them)."""
    verbose = click.get_current_context().find_root().params.get("verbose", 0)
    return not as_json and not verbose and is_terminal(sys.stderr)


# -- secret ----------------------------------------------------------------------------------


@cli.group()
def secret() -> None:
    """Create, read, list, update and delete secrets in a store."""


_EXTRA = {"ignore_unknown_options": True, "allow_extra_args": True}


def _parse_pairs(args: Sequence[str]) -> dict[str, str]:
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
                raise click.UsageError(f"--{_shown(key)} has no value")
            value = items.pop(0)
            position += 1
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
    except click.Abort:  # Ctrl-C or Ctrl-D at a prompt: nothing is written
        click.echo("", err=True)
        _fail("interrupted: nothing was written", EXIT_INTERRUPTED)


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
    with _errors_to_exit_codes():
        values = _gather_values(ctx.args, values_file)
    if interactive:
        values.update(_prompted(values))
    if not values:
        _fail("a secret needs at least one --key=value (or --values-file, or -i)", EXIT_BAD_INPUT)
    _run(
        store,
        ClientOptions(),
        _waits_shown(f"Creating {name!r}", lambda c: c.create_secret(name, values)),
    )
    click.echo(f"Created secret {name!r} with keys: {', '.join(map(_shown, sorted(values)))}")


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
    with _errors_to_exit_codes():
        values = _gather_values(ctx.args, values_file)
    if interactive:
        values.update(_prompted(values))
    if not values and not remove_keys:
        _fail("nothing to update: give --key=value, -i or --remove-key KEY", EXIT_BAD_INPUT)

    async def action(client: AsyncClient) -> None:
        if remove_keys:
            # The store contract lets an update remove absent keys, or every key; a user who
            # asks for either has made a mistake, so the CLI reads the keys first and refuses.
            current = await client.get_secret(name)
            check_update(name, current.secret_values, values, remove_keys)
        await client.update_secret(name, values, remove_keys=remove_keys)

    _run(store, ClientOptions(), _waits_shown(f"Updating {name!r}", action))
    click.echo(f"Updated secret {name!r}")


@secret.command("get")
@click.argument("name")
@click.option("--show-values", is_flag=True, help="Print the values (hidden by default).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@store_option
def secret_get(name: str, show_values: bool, as_json: bool, store: tuple[str, ...]) -> None:
    """Show secret NAME: its keys, and its values only with --show-values."""
    found, source = _run(store, ClientOptions(), lambda c: _get_with_source(c, name))
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
        click.echo(f"  {_shown(key)}: {value}")


async def _get_with_source(client: AsyncClient, name: str) -> tuple[Secret, str | None]:
    """The secret and, from a chain of stores, the store that answered."""
    from .stores._chain import SupportsSources

    found = await client.get_secret(name)
    store = client.store
    return found, store.source_of(name) if isinstance(store, SupportsSources) else None


@secret.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@store_option
def secret_list(as_json: bool, store: tuple[str, ...]) -> None:
    """List the names of every secret in the store."""

    async def action(client: AsyncClient) -> tuple[list[str], str]:
        return await client.list_secrets(), client.store.description

    names, where = _run(store, ClientOptions(), action)
    if as_json:
        click.echo(json.dumps(names))
    elif is_terminal(sys.stdout):
        from ._terminal import print_names

        print_names(names, f"{len(names)} secret(s) in {_shown(where)}")
    else:
        click.echo("\n".join(map(_shown, names)))


@secret.command("delete")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@store_option
def secret_delete(name: str, yes: bool, store: tuple[str, ...]) -> None:
    """Delete secret NAME."""
    if not yes and not click.confirm(f"Delete secret {name!r}?", default=False, err=True):
        _fail("not deleted", EXIT_PROBLEMS)
    _run(
        store, ClientOptions(), _waits_shown(f"Deleting {name!r}", lambda c: c.delete_secret(name))
    )
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
    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        cli.main(args=args, prog_name="stacksecrets", standalone_mode=False)
    except click.exceptions.Abort:
        _fail("interrupted", EXIT_INTERRUPTED, error_type="KeyboardInterrupt", as_json=False)
    except click.ClickException as exc:
        # click's own messages quote what was typed (an extra argument, an option's value):
        # that word may be a password given in the wrong place, so show its position instead.
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            click.echo(exc.ctx.get_usage(), err=True)
        _fail(
            _words_hidden(exc.format_message(), args),
            exc.exit_code,
            error_type=type(exc).__name__,
            as_json="--json" in args,
        )
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


def _words_hidden(message: str, args: Sequence[str]) -> str:
    """``message`` with each command-line word that is not an option name, and anything after
    an ``=``, replaced by its position (``<argument 4>``)."""
    for position, arg in sorted(enumerate(args, 1), key=lambda item: -len(item[1])):
        _name, eq, value = arg.partition("=")
        hidden = value if eq and arg.startswith("-") else "" if arg.startswith("-") else arg
        if len(hidden) >= 3 and hidden not in _command_words(cli):  # noqa: PLR2004
            message = message.replace(hidden, f"<argument {position}>")
    return message


def _command_words(group: click.Group) -> set[str]:
    """The names of every command and group under ``group``: not a value, safe to show."""
    words: set[str] = set()
    for name, command in group.commands.items():
        words.add(name)
        if isinstance(command, click.Group):
            words |= _command_words(command)
    return words
