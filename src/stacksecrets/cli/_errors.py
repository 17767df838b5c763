"""Exit codes, and the one way a command fails: a line on stderr (and, with ``--json``, an
error object on stdout) and the exit code for what went wrong.

Exit codes: 0 all good; 1 problems found (or the secret asked for does not exist); 2 bad input
or configuration (also the end of input where a prompt waited); 3 the store could not be reached;
130 interrupted. With ``--json``, an error is also a JSON object on stdout:
``{"error": {"kind", "type", "message", "exit_code"}}``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click

from .._errors import (
    ConfigurationError,
    ForbiddenError,
    SecretExistsError,
    SecretNotFoundError,
    StackLoadError,
    StackSecretsError,
    StoreCorruptError,
    StoreUnavailableError,
)

EXIT_OK, EXIT_PROBLEMS, EXIT_BAD_INPUT, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_KINDS = {
    EXIT_PROBLEMS: "not_found",
    EXIT_BAD_INPUT: "bad_input",
    EXIT_UNREACHABLE: "unreachable",
    EXIT_INTERRUPTED: "interrupted",
}


def json_requested() -> bool:
    ctx = click.get_current_context(silent=True)
    return ctx is not None and bool(ctx.params.get("as_json"))


def fail(
    message: str, code: int, *, error_type: str = "UsageError", as_json: bool | None = None
) -> NoReturn:
    """One line on stderr and exit ``code``; with ``--json`` also the error object on stdout,
    so a program reading stdout never gets nothing."""
    click.echo(f"stacksecrets: error: {message}", err=True)
    if json_requested() if as_json is None else as_json:
        error = {
            "kind": _KINDS.get(code, "error"),
            "type": error_type,
            "message": message,
            "exit_code": code,
        }
        click.echo(json.dumps({"error": error}))
    sys.exit(code)


class NoInputError(Exception):
    """Standard input ended where a prompt waited for an answer: bad input, not Ctrl-C."""


def ended_input(abort: click.Abort) -> bool:
    """Whether click's ``Abort`` at a prompt came from the end of input (``EOFError``), not
    from Ctrl-C: click raises it ``from None``, which keeps the cause as its context."""
    return isinstance(abort.__context__, EOFError)


@contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED, error_type="KeyboardInterrupt")
    except NoInputError as exc:
        fail(str(exc), EXIT_BAD_INPUT, error_type="NoInput")
    except (StackLoadError, ConfigurationError, StoreCorruptError, ForbiddenError) as exc:
        fail(str(exc), EXIT_BAD_INPUT, error_type=type(exc).__name__)
    except StoreUnavailableError as exc:
        fail(str(exc), EXIT_UNREACHABLE, error_type=type(exc).__name__)
    except (SecretNotFoundError, SecretExistsError) as exc:
        fail(str(exc), EXIT_PROBLEMS, error_type=type(exc).__name__)
    except StackSecretsError as exc:
        fail(str(exc), EXIT_UNREACHABLE, error_type=type(exc).__name__)
