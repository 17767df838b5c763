"""Third-party stores: found by URL scheme among the ``stacksecrets.stores`` entry points.

A distribution registers its store under the group, the entry point's name being the URL
scheme (``docs/stores.md``, "Publishing a store")::

    [project.entry-points."stacksecrets.stores"]
    mystore = "mypackage.store:MyStore"

The object is a store class with ``from_url(url: StoreURL, /, *, environ)`` (as the built-in
stores have), or such an opener itself. Built-in schemes always win; a scheme claimed by two
distributions, an entry point that cannot be loaded, or an opener that does not give a store
raise ``ConfigurationError`` naming the distribution and the scheme.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from .._errors import ConfigurationError, StackSecretsError
from .._logging import logger

if TYPE_CHECKING:
    from ._base import SecretStore
    from ._urls import StoreOpener, StoreURL

#: The entry-point group third-party stores register under; the name is the URL scheme.
GROUP = "stacksecrets.stores"


def installed_schemes() -> list[str]:
    """The schemes third-party stores register (lower-case, sorted, each once)."""
    return sorted({entry.name.lower() for entry in importlib.metadata.entry_points(group=GROUP)})


def _where(entry: importlib.metadata.EntryPoint) -> str:
    dist = entry.dist
    name = f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"
    return f"the store for scheme {entry.name!r} from distribution {name!r} ({entry.value})"


def find_opener(scheme: str) -> tuple[StoreOpener, str] | None:
    """The opener registered for ``scheme`` and where it comes from, or ``None``."""
    entries = [
        entry
        for entry in importlib.metadata.entry_points(group=GROUP)
        if entry.name.lower() == scheme
    ]
    # One distribution seen twice on the path (an editable and a plain install) is one claim.
    claims = {(entry.dist.name if entry.dist else None, entry.value): entry for entry in entries}
    if not claims:
        return None
    if len(claims) > 1:
        names = sorted({_where(entry) for entry in claims.values()})
        raise ConfigurationError(
            f"store URL scheme {scheme!r} is claimed by more than one installed store: "
            + "; ".join(names)
            + ". Uninstall all but one."
        )
    (entry,) = claims.values()
    where = _where(entry)
    try:
        target: object = entry.load()
    except Exception as exc:
        raise ConfigurationError(
            f"{where} cannot be loaded: {type(exc).__name__}: {exc}. Reinstall or fix that "
            "distribution, or uninstall it"
        ) from exc
    opener = getattr(target, "from_url", target)
    if not callable(opener):
        raise ConfigurationError(
            f"{where} is neither a store class with from_url nor a function that opens a store"
        )
    logger.debug("stacksecrets.plugin.found", scheme=scheme, entry_point=entry.value)
    return cast("StoreOpener", opener), where


def open_plugin(
    opener: StoreOpener, where: str, url: StoreURL, environ: Mapping[str, str]
) -> SecretStore:
    """``opener(url, environ=environ)``, checked: a store comes back, or a clear error."""
    from ._base import SecretStore

    try:
        store = opener(url, environ=environ)
    except StackSecretsError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of a third-party opener
        # The type only: a third-party message could quote the URL's credentials.
        raise ConfigurationError(
            f"{where} failed to open {url.redacted!r}: {type(exc).__name__}"
        ) from None
    if not isinstance(store, SecretStore):
        raise ConfigurationError(f"{where} gave {type(store).__name__}, not a secret store")
    return store
