"""Stacks from a ZenML server for the command line: named ones, every one, or the active one
(the stack ZenML would run now)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError

if TYPE_CHECKING:
    from .._client import AsyncClient
    from .._stack import Stack


def stack_source(store: object) -> Any | None:
    """Where ZenML's stacks come from: the store's (or, in a chain, the first store's that
    has one) stack source, or ``None`` when no store is a ZenML one."""
    for one in getattr(store, "stores", (store,)):
        stacks = getattr(one, "stacks", None)
        if stacks is not None and hasattr(stacks, "get_stack_by_id"):
            return stacks
    return None


def _cached(server: Any, client: AsyncClient) -> Any:
    """``server`` with the definition cache (``_stackcache``), unless the metadata cache is
    switched off (``STACKSECRETS_METADATA_CACHE=0``, ``metadata_cache=False``)."""
    from .._metacache import switched_on

    use = getattr(server, "use_cache", None)
    if use is not None and switched_on(option=client.options.metadata_cache):
        from .._stackcache import StackCache, stack_cache_path

        use(StackCache(stack_cache_path(), max_age=client.options.metadata_max_age))
    return server


async def server_stacks(client: AsyncClient, names: Sequence[str], every: bool) -> list[Stack]:
    """The stacks ``names`` (or ``every`` stack) of the store's ZenML server; in a chain, of
    its first ZenML store."""
    server = stack_source(client.store)
    if server is None:
        raise ConfigurationError(
            "--zenml-stack and --all-zenml-stacks need a ZenML store: "
            "--store zenml+https://host (or STACKSECRETS_STORE)"
        )
    stacks: list[Stack] = await _cached(server, client).get_stacks(None if every else list(names))
    return stacks


async def active_stack(client: AsyncClient) -> Stack:
    """The stack ZenML would run now (``ZENML_ACTIVE_STACK_ID``, else ZenML's config)."""
    import os

    from .._logging import logger
    from ..stores._discovery import active_stack_id

    stack_id, source = active_stack_id(os.environ)
    server = stack_source(client.store)
    if server is None:
        raise ConfigurationError(
            f"--active-stack reads the stack from the ZenML server, but the store is "
            f"{client.store.description}: run `zenml login URL`, or give --store zenml+https://host"
        )
    logger.info("stacksecrets.cli.active_stack", stack_id=str(stack_id), found_by=source)
    found: Stack = await _cached(server, client).get_stack_by_id(stack_id)
    return found
