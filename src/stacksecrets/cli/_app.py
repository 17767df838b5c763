"""The ``stacksecrets`` group: its options, the logging it configures, and ``main``.

The CLI is an application: it, not the library, decides where log events go (stderr). It
configures structlog only when the first event at the chosen level is logged, so a command
that logs nothing never imports structlog (which imports rich).
"""

from __future__ import annotations

import gc
import importlib
import logging
import sys
from collections.abc import MutableMapping, Sequence
from typing import Any

import click

from ._errors import EXIT_INTERRUPTED, fail
from ._run import DEADLINE_KEY, DEFAULT_DEADLINE
from ._text import escape_controls, words_hidden

#: Each command of the group and where it is defined (``module:attribute``, relative to this
#: package): a command's module is imported when that command runs, not when another one does
#: (``validate`` never loads the ``secret`` commands; ``--help`` loads them all, for their help).
COMMANDS = {
    "cache": "._cache:cache",
    "register-secrets": "._validate:register_secrets",
    "secret": "._secret:secret",
    "validate": "._validate:validate",
}


class LazyGroup(click.Group):
    """A click group whose commands are imported on first use (``COMMANDS``). ``commands``
    still holds every command (it imports the rest when read: error messages, the docs)."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        self._lazy = dict(lazy)
        self._loaded: dict[str, click.Command] = {}
        super().__init__(*args, **kwargs)

    @property
    def commands(self) -> MutableMapping[str, click.Command]:
        for name in list(self._lazy):
            self._load(name)
        return self._loaded

    @commands.setter
    def commands(self, value: MutableMapping[str, click.Command]) -> None:
        self._loaded = dict(value)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        name = name or cmd.name
        if name is None:  # pragma: no cover - click refuses it first
            raise TypeError("Command has no name.")
        self._lazy.pop(name, None)
        self._loaded[name] = cmd

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            self._load(cmd_name)
        return self._loaded.get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self._loaded, *self._lazy})

    def _load(self, name: str) -> None:
        module, _, attribute = self._lazy.pop(name).partition(":")
        command = getattr(importlib.import_module(module, __package__), attribute)
        self._loaded[name] = command


def configure_logging(verbose: int) -> None:
    """At the default verbosity only warnings show; ``-v`` adds what the command does (the
    store used, files loaded, retries scheduled), ``-vv`` every debug event."""
    from .. import _logging

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG

    def configure() -> None:
        import structlog

        structlog.configure(
            processors=[
                _logging.redact_secrets,
                structlog.processors.add_log_level,
                escape_controls,
                structlog.dev.ConsoleRenderer(colors=False),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(level),
            logger_factory=structlog.PrintLoggerFactory(sys.stderr),
            cache_logger_on_first_use=False,
        )

    _logging.configure_on_first_event(level, configure)
    logging.basicConfig(level=level, stream=sys.stderr)
    # httpx logs each request's URL at INFO, query and all (``?name=...``: secret names); the
    # tool's own debug events say what it sends without query values.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
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
    configure_logging(verbose)
    ctx.meta[DEADLINE_KEY] = cli_deadline


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``stacksecrets`` command.

    Without ``argv`` (the console script, ``python -m stacksecrets``) the process is the
    command, which runs asyncio only: httpcore is then kept from importing trio and httpx from
    importing its own command line (``cli._process.asyncio_only_process``; tens of
    milliseconds of start-up where trio is installed). Called with ``argv`` (tests, code that
    embeds the command) the process is someone else's and its imports are left alone."""
    if argv is None:
        from ._process import asyncio_only_process

        asyncio_only_process()
    args = list(argv) if argv is not None else sys.argv[1:]
    # A command allocates many objects while it imports its modules and builds their classes,
    # few of them in cycles: the young generation is collected every 200,000 allocations
    # instead of 700, as mypy's main does (about 1 ms of a validation's start); restored after.
    thresholds = gc.get_threshold()
    gc.set_threshold(200_000, 30, 30)
    try:
        cli.main(args=args, prog_name="stacksecrets", standalone_mode=False)
    except click.exceptions.Abort:
        fail("interrupted", EXIT_INTERRUPTED, error_type="KeyboardInterrupt", as_json=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.format_message(), err=True)  # the help: "Usage" once
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        # click's own messages quote what was typed (an extra argument, an option's value):
        # that word may be a password given in the wrong place, so show its position instead.
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            click.echo(exc.ctx.get_usage(), err=True)
        fail(
            words_hidden(exc.format_message(), args, cli),
            exc.exit_code,
            error_type=type(exc).__name__,
            as_json="--json" in args,
        )
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    finally:
        gc.set_threshold(*thresholds)
        # A logging set-up this command deferred and never needed is forgotten, so that code
        # running main() in its own process (tests, embedding) keeps its own structlog set-up.
        # Looked up, not imported: --help never loads the library's logging.
        logging_module = sys.modules.get("stacksecrets._logging")
        if logging_module is not None:
            logging_module.configure_on_first_event(0, None)
