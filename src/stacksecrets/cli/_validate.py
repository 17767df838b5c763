"""``stacksecrets validate`` and its ZenML-named twin with ``--fix``,
``stacksecrets register-secrets``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ._errors import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_UNREACHABLE,
    errors_to_exit_codes,
)
from ._run import DEADLINE_KEY, DEFAULT_DEADLINE, run, show_progress, store_option

if TYPE_CHECKING:
    from .._client import AsyncClient
    from .._options import ClientOptions, OptionOverrides
    from .._report import ValidationReport
    from .._stack import Stack

F = TypeVar("F", bound=Callable[..., Any])

NOTHING_TO_VALIDATE = (
    "nothing to validate: give stack files or folders, --zenml-stack NAME or --active-stack "
    "(with no argument, validate checks the active ZenML stack when the store is a ZenML "
    "server: run `zenml login URL`)"
)

#: ``ClientOptions().max_concurrency``, for the help (the options are not imported for it).
DEFAULT_CONCURRENCY = 16


def fix_options(func: F) -> F:
    """The ``--fix``, ``--dry-run`` and ``--values-file`` options of ``validate``."""
    func = click.option(
        "--values-file",
        "values_file",
        metavar="FILE",
        help="With --fix: the values, one YAML/JSON mapping of secret names to key: value "
        "mappings ('-' for stdin), instead of prompts; values are kept exactly as written.",
    )(func)
    func = click.option(
        "--dry-run",
        is_flag=True,
        help="With --fix: list the secrets and keys it would create; ask and write nothing.",
    )(func)
    return click.option(
        "--fix",
        is_flag=True,
        help="Create the missing secrets and add the missing keys (existing keys are never "
        "changed), asking for each value with hidden input and showing where it is used; then "
        "validate again. Like `zenml stack register-secrets`.",
    )(func)


@click.command()
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
    help=f"Most store calls in flight at once [default: {DEFAULT_CONCURRENCY}].",
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
    import attrs

    from .._levels import ValidationLevel

    command = click.get_current_context().info_name or "validate"
    with errors_to_exit_codes():
        fixer = None
        if fix or dry_run or values_file is not None:
            from ._fix import Fixer

            fixer = Fixer.from_options(
                fix=fix,
                dry_run=dry_run,
                values_file=values_file,
                as_json=as_json,
                command="validate --fix" if command == "validate" else command,
            )
        if fixer is not None:
            chosen = fixer.level(level)
        else:
            chosen = ValidationLevel.from_env() if level is None else ValidationLevel.parse(level)
        stacks: list[Stack] = []
        if paths:
            from .._loaders import load_stacks

            stacks.extend(load_stacks(*paths))
    # Nothing named: the stack ZenML would run now, when ZenML is configured (the store is a
    # ZenML one), as register-secrets does; else there is nothing to validate.
    implicit = not paths and not zenml_stacks and not all_zenml_stacks and not active_stack
    options = _options(concurrency, rate_limit, deadline, no_zenml_runtime_check)

    async def action(client: AsyncClient) -> ValidationReport:
        from .._errors import ConfigurationError
        from . import _terminal
        from ._suggest import with_store_suggestions
        from ._zenml import active_stack as find_active_stack
        from ._zenml import server_stacks, stack_source

        with _terminal.progress("Validating", enabled=show_progress(as_json=as_json)) as shown:
            if zenml_stacks or all_zenml_stacks:
                stacks.extend(await server_stacks(client, zenml_stacks, all_zenml_stacks))
            if implicit and stack_source(client.store) is None:
                raise ConfigurationError(NOTHING_TO_VALIDATE)
            if active_stack or implicit:
                found = await find_active_stack(client)
                if found.name not in {stack.name for stack in stacks}:
                    stacks.append(found)
            check_stack_names(stacks)
            if shown is not None:
                count = len(stacks)
                shown.description = f"Validating {count} stack{'' if count == 1 else 's'}"
            report = await client.validate_stacks(stacks, level=chosen)
            report = await with_store_suggestions(client, report)
        return attrs.evolve(report, store=client.store.description)

    report = run(store, options, action)
    if fixer is not None:
        with errors_to_exit_codes():
            report = fixer.run(
                report, stacks, lambda act: run(store, options, act, name_store=False)
            )
    report_and_exit(report, as_json=as_json)


def _options(
    concurrency: int | None,
    rate_limit: float | None,
    deadline: float | None,
    no_zenml_runtime_check: bool,
) -> ClientOptions:
    from .._options import ClientOptions

    overrides: OptionOverrides = {}
    if concurrency is not None:
        overrides["max_concurrency"] = concurrency
    if rate_limit is not None:
        overrides["rate_limit"] = rate_limit
    if deadline is not None:
        overrides["deadline"] = deadline
        click.get_current_context().meta[DEADLINE_KEY] = deadline  # it, not the default
    if no_zenml_runtime_check:
        overrides["zenml_runtime_check"] = False
    return ClientOptions().with_overrides(overrides)


def report_and_exit(report: ValidationReport, *, as_json: bool) -> NoReturn:
    """Print the report (JSON; a table on a terminal; else plain text) and exit by its result."""
    from .._report import ProblemKind
    from ._terminal import is_terminal

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


def check_stack_names(stacks: Sequence[Stack]) -> None:
    from .._errors import ConfigurationError

    seen: set[str] = set()
    for stack in stacks:
        if stack.name in seen:
            raise ConfigurationError(f"two stacks are named {stack.name!r}")
        seen.add(stack.name)


def register_secrets_command(validate: click.Command) -> click.Command:
    """``stacksecrets register-secrets``: ``validate --fix`` under ZenML's name, for the stack
    ZenML would run now when no stack is given (as ``zenml stack register-secrets``)."""
    callback = validate.callback
    assert callback is not None  # noqa: S101 - a click command always has one here

    def register(**options: Any) -> Any:
        if not any(options[name] for name in ("paths", "zenml_stacks", "all_zenml_stacks")):
            options["active_stack"] = True
        return callback(fix=True, **options)

    return click.Command(
        "register-secrets",
        callback=register,
        params=[param for param in validate.params if param.name != "fix"],
        help="Create every missing secret and key of the stacks in PATHS and/or on a ZenML "
        "server (default: the stack ZenML would run now), asking for each value with hidden "
        "input; then validate again. The name ZenML gives it: `zenml stack register-secrets`; "
        "the same as `stacksecrets validate --fix`.",
        short_help="Create the missing secrets and keys (validate --fix).",
    )


register_secrets = register_secrets_command(validate)
