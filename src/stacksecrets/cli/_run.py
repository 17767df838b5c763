"""Running one command's work against its store: the ``--store`` option, the client, the
deadline, and what a terminal shows while it waits.

Every command runs under a deadline (``--deadline`` / ``STACKSECRETS_DEADLINE``, default
``DEFAULT_DEADLINE`` seconds). The client, anyio and the stores are imported when a command
runs, not when the command line is read (``--help`` needs none of them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ._errors import errors_to_exit_codes
from ._text import shown

if TYPE_CHECKING:
    from .._client import AsyncClient
    from .._levels import ValidationLevel
    from .._options import ClientOptions

T = TypeVar("T")

#: Seconds a command may take in all unless ``--deadline`` / ``STACKSECRETS_DEADLINE`` say
#: otherwise: a server that answers endless pages or never finishes cannot hang it.
DEFAULT_DEADLINE = 120.0
DEADLINE_KEY = "stacksecrets.deadline"

Action = Callable[["AsyncClient"], Coroutine[Any, Any, T]]


def run(
    store: Sequence[str],
    options: ClientOptions | None,
    action: Action[T],
    *,
    level: ValidationLevel | None = None,
    name_store: bool = True,
) -> T:
    """``action`` on a client of the command's store (``--store``: none, the store found; one,
    that store; more, a chain), within the command's deadline; errors become exit codes.

    ``name_store``: the store in use is named on stderr (``Store: URL``, its password
    hidden), piped or not, so that a script's log shows which store a command read or changed;
    off only where the output names it already (``secret list`` on a terminal) or the same
    command named it before (the fix's later runs)."""
    import anyio

    from .._client import AsyncClient
    from .._errors import StoreUnavailableError
    from .._logging import logger
    from .._options import ClientOptions

    ctx = click.get_current_context(silent=True)
    limit = ctx.meta.get(DEADLINE_KEY, DEFAULT_DEADLINE) if ctx is not None else DEFAULT_DEADLINE

    async def main() -> T:
        chosen = None if not store else store[0] if len(store) == 1 else list(store)
        async with AsyncClient(chosen, level=level, options=options or ClientOptions()) as client:
            logger.info("stacksecrets.cli.store", store=client.store.description)
            if name_store:
                click.echo(f"Store: {shown(client.store.description)}", err=True)
            try:
                with anyio.fail_after(limit):
                    return await action(client)
            except TimeoutError:
                raise StoreUnavailableError(
                    f"the command did not finish within {limit:g} s against "
                    f"{client.store.description} (--deadline / STACKSECRETS_DEADLINE)"
                ) from None

    with errors_to_exit_codes():
        return anyio.run(main)
    raise AssertionError  # pragma: no cover


class StoreURL(click.types.StringParamType):
    """A store URL; ``STACKSECRETS_STORE`` holds one whole URL (never split on blanks)."""

    name = "url"

    def split_envvar_value(self, rv: str) -> Sequence[str]:
        return [rv] if rv.strip() else []


store_option = click.option(
    "--store",
    "store",
    type=StoreURL(),
    multiple=True,
    envvar="STACKSECRETS_STORE",
    metavar="URL",
    help="Secret store: file:///path.json, memory://, env://, zenml+https://host, "
    "vault+https://host/MOUNT, aws-sm://?region=..., or a third-party scheme. Repeat for a "
    "chain: each secret comes from the first store that has it, writes go to the first "
    "[env STACKSECRETS_STORE; default: the ZenML server ZenML is logged in to "
    "(ZENML_STORE_URL or `zenml login`), else the local file store].",
)


def waits_shown(what: str, action: Action[T]) -> Action[T]:
    """``action``, showing on a terminal what it waits for (a held lock, a retry, a slow
    server) while it runs."""

    async def with_progress(client: AsyncClient) -> T:
        from . import _terminal

        with _terminal.progress(shown(what), enabled=show_progress(as_json=False)):
            return await action(client)

    return with_progress


def show_progress(*, as_json: bool) -> bool:
    """Progress and waits on stderr: on a terminal, not with --json, not with -v (whose log
    lines on stderr say what happens, and a live display would write over them)."""
    from ._terminal import is_terminal

    verbose = click.get_current_context().find_root().params.get("verbose", 0)
    return not as_json and not verbose and is_terminal(sys.stderr)
