"""``stacksecrets cache``: the shared metadata cache."""

from __future__ import annotations

import click

from ._errors import EXIT_BAD_INPUT, fail


@click.group()
def cache() -> None:
    """The shared metadata cache: key names and change stamps of secrets, never values."""


@cache.command("clear")
def cache_clear() -> None:
    """Delete the metadata cache file (the next key-level validation reads every secret) and
    the stack definition cache."""
    import anyio

    from .._metacache import MetadataCache, cache_path
    from .._stackcache import StackCache, stack_cache_path

    path = cache_path()
    try:
        removed = anyio.run(MetadataCache(path, max_age=0).clear)
        # The stack definition cache beside it goes with it (not named: one cache to users).
        anyio.run(StackCache(stack_cache_path(), max_age=0).clear)
    except (OSError, TimeoutError) as exc:
        fail(f"cannot delete the metadata cache {path}: {type(exc).__name__}", EXIT_BAD_INPUT)
    click.echo(f"Cleared the metadata cache {path}" if removed else f"No metadata cache at {path}")
