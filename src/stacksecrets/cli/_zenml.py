"""Stacks from a ZenML server for the command line: named ones, every one, or the active one
(the stack ZenML would run now)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._errors import ConfigurationError

if TYPE_CHECKING:
    from .._client import AsyncClient
    from .._stack import Stack


async def server_stacks(client: AsyncClient, names: Sequence[str], every: bool) -> list[Stack]:
    """The stacks ``names`` (or ``every`` stack) of the store's ZenML server; in a chain, of
    its first ZenML store."""
    from ..stores._zenml import ZenMLStore  # httpx only when stacks come from a server

    stores = getattr(client.store, "stores", (client.store,))
    server = next((store for store in stores if isinstance(store, ZenMLStore)), None)
    if server is None:
        raise ConfigurationError(
            "--zenml-stack and --all-zenml-stacks need a ZenML store: "
            "--store zenml+https://host (or STACKSECRETS_STORE)"
        )
    return await server.stacks.get_stacks(None if every else list(names))


async def active_stack(client: AsyncClient) -> Stack:
    """The stack ZenML would run now (``ZENML_ACTIVE_STACK_ID``, else ZenML's config)."""
    import os

    from .._logging import logger
    from ..stores._discovery import active_stack_id
    from ..stores._zenml import ZenMLStore

    stack_id, source = active_stack_id(os.environ)
    if not isinstance(client.store, ZenMLStore):
        raise ConfigurationError(
            f"--active-stack reads the stack from the ZenML server, but the store is "
            f"{client.store.description}: run `zenml login URL`, or give --store zenml+https://host"
        )
    logger.info("stacksecrets.cli.active_stack", stack_id=str(stack_id), found_by=source)
    return await client.store.stacks.get_stack_by_id(stack_id)
