"""Secrets from environment variables (``env://``), read-only: for CI jobs and containers.

One variable per key, ``<PREFIX><NAME>__<KEY>=value`` (``docs/env.md``):

- the prefix is ``STACKSECRETS_SECRET_`` unless the URL says otherwise (``env://?prefix=MYAPP_``);
- the name runs from after the prefix to the first ``__``; the key is everything after it (so a
  name never holds ``__``, a key may);
- names and keys are exact: compared as written, case included, never folded or translated.

A variable with the prefix that does not read as ``NAME__KEY`` with a non-empty name and key is
ignored (a debug event names it, never its value). The environment is read at each call, so a
variable set later is seen.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import anyio

from .._errors import ConfigurationError, SecretNotFoundError
from .._logging import logger
from .._secret import Secret
from ._base import StoreBase, StoreCapabilities
from ._urls import StoreURL

#: The prefix of the variables an ``env://`` store reads when the URL names none.
DEFAULT_PREFIX = "STACKSECRETS_SECRET_"
#: Between the secret's name and the key in a variable's name.
SEPARATOR = "__"


class EnvStore(StoreBase):
    """Read-only secrets from environment variables: ``<prefix><NAME>__<KEY>=value``.

    ``environ`` is read at each call (``os.environ`` when not given). Writes raise
    ``ForbiddenError`` saying the store is read-only.
    """

    def __init__(
        self, *, prefix: str = DEFAULT_PREFIX, environ: Mapping[str, str] | None = None
    ) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ConfigurationError(
                "the prefix of an env:// store must be a non-empty string (an empty one would "
                "make every variable holding '__' a secret)"
            )
        if SEPARATOR in prefix:
            raise ConfigurationError(
                f"the prefix {prefix!r} of an env:// store must not hold {SEPARATOR!r}, which "
                "separates a secret's name from its key"
            )
        self.prefix = prefix
        self._environ = os.environ if environ is None else environ

    @classmethod
    def from_url(cls, url: StoreURL, /, *, environ: Mapping[str, str]) -> EnvStore:
        """``env://`` or ``env://?prefix=MYAPP_SECRET_``; nothing else in the URL."""
        if url.host or url.port is not None or url.path not in {"", "/"} or url.username:
            raise ConfigurationError(
                f"an env:// store URL has no host or path: write env:// or "
                f"env://?prefix=NAME_ (found {url.redacted!r})"
            )
        options = url.options({"prefix"})
        return cls(prefix=options.get("prefix", DEFAULT_PREFIX), environ=environ)

    @property
    def capabilities(self) -> StoreCapabilities:
        return StoreCapabilities(batched_exists=True)  # writable=False: read-only

    @property
    def description(self) -> str:
        if self.prefix == DEFAULT_PREFIX:
            return "env://"
        return f"env://?prefix={self.prefix}"

    def _secrets(self) -> dict[str, dict[str, str]]:
        """Every secret the environment holds now, by exact name."""
        found: dict[str, dict[str, str]] = {}
        for variable, value in list(self._environ.items()):
            if not variable.startswith(self.prefix):
                continue
            name, sep, key = variable[len(self.prefix) :].partition(SEPARATOR)
            if not (sep and name and key):
                logger.debug("stacksecrets.env.ignored", variable=variable, prefix=self.prefix)
                continue
            found.setdefault(name, {})[key] = value
        return found

    async def get_secret(self, name: str) -> Secret:
        self._check_open()
        await anyio.lowlevel.checkpoint()
        values = self._secrets().get(name) if isinstance(name, str) else None
        if values is None:
            raise SecretNotFoundError(name, store=self.description)
        return Secret(name, values)

    async def secrets_exist(self, names: Sequence[str]) -> frozenset[str]:
        self._check_open()
        await anyio.lowlevel.checkpoint()
        if not names:
            return frozenset()
        present = self._secrets()
        return frozenset(name for name in names if name in present)

    async def list_secrets(self) -> list[str]:
        self._check_open()
        await anyio.lowlevel.checkpoint()
        return sorted(self._secrets())


def variable_name(name: str, key: str, *, prefix: str = DEFAULT_PREFIX) -> str:
    """The variable holding ``key`` of secret ``name``: ``<prefix><name>__<key>``.

    ``ConfigurationError`` for a name holding ``__`` (it would end at the first one) or an
    empty name or key.
    """
    if not name or not key:
        raise ConfigurationError("a secret name and key in an env:// store are non-empty")
    if SEPARATOR in name:
        raise ConfigurationError(
            f"the secret name {name!r} holds {SEPARATOR!r}: an env:// store cannot hold it "
            f"(the name ends at the first {SEPARATOR!r})"
        )
    return f"{prefix}{name}{SEPARATOR}{key}"
