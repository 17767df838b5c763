"""Third-party stores: found by URL scheme among the ``stacksecrets.stores`` entry points.

A distribution registers its store under the group, the entry point's name being the URL
scheme (``docs/stores.md``, "Publishing a store")::

    [project.entry-points."stacksecrets.stores"]
    mystore = "mypackage.store:MyStore"

The object is a store class with ``from_url(url: StoreURL, /, *, environ)`` (as the built-in
stores have), or such an opener itself. Built-in schemes always win; a scheme claimed by two
distributions, an entry point that cannot be loaded, or an opener that does not give a store
raise ``ConfigurationError`` naming the distribution and the scheme.

Third-party code's errors are shown by type, never verbatim: an import error's message can
quote the environment (a token), an opener's the URL's password. A library error an opener
raises on purpose (``ConfigurationError("set MYSTORE_TOKEN")``) keeps its message, with the
URL's credentials and every credential-like value of the environment masked, and without the
chained exception.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from .._errors import ConfigurationError, StackSecretsError
from .._logging import logger

if TYPE_CHECKING:
    from ._base import SecretStore
    from ._urls import StoreOpener, StoreURL

#: The entry-point group third-party stores register under; the name is the URL scheme.
GROUP = "stacksecrets.stores"
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]+")


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
    failure: str | None = None
    try:
        target: object = entry.load()
    except Exception as exc:  # noqa: BLE001 - any failure of third-party code
        failure = _type_of(exc)
    if failure is not None:
        # Raised outside the handler: the import error (its message, its frames) may hold
        # what the module read from the environment.
        raise ConfigurationError(
            f"{where} cannot be loaded: {failure}. Reinstall or fix that distribution, or "
            "uninstall it"
        )
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

    failure: Exception | None = None
    try:
        store = opener(url, environ=environ)
    except StackSecretsError as exc:
        # Ours, raised on purpose: its message says what to fix; masked, without its chain.
        failure = _masked(exc, url, environ)
    except Exception as exc:  # noqa: BLE001 - any failure of a third-party opener
        # The type only: a third-party message could quote the URL's credentials.
        failure = ConfigurationError(
            f"{where} failed to open {url.redacted!r}: {type(exc).__name__}"
        )
    if failure is not None:
        # Raised outside the handler: the original (its message, its frames) rides along
        # neither as the cause nor as the context.
        raise failure
    if not isinstance(store, SecretStore):
        raise ConfigurationError(f"{where} gave {type(store).__name__}, not a secret store")
    return store


#: Environment variables whose values are masked in a third-party store's messages.
_CREDENTIAL_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "AUTH")
#: Shorter values are not masked (they would mask ordinary words).
_MIN_MASKED = 4


def _type_of(exc: BaseException) -> str:
    """An exception shown by type (a missing module by its name, which is no secret)."""
    name = getattr(exc, "name", None)
    if (
        isinstance(exc, ImportError)
        and isinstance(name, str)
        and all(part.isidentifier() for part in name.split("."))
    ):
        return f"{type(exc).__name__} (module {name!r})"
    return type(exc).__name__


def _masked(exc: StackSecretsError, url: StoreURL, environ: Mapping[str, str]) -> Exception:
    """``exc`` again, with the URL's credentials and the environment's credential-like values
    masked in its message; a class that cannot be rebuilt from a message becomes a
    ``ConfigurationError``."""
    from .._secret import MASK
    from ._urls import redact

    secrets = [url.password, url.username, url.query, url.fragment]
    secrets += [
        value
        for name, value in environ.items()
        if any(word in name.upper() for word in _CREDENTIAL_WORDS)
    ]
    text = str(exc.args[0]) if exc.args else ""
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_MASKED}, key=len)[::-1]:
        text = text.replace(secret, MASK)
    # Any URL it quotes, shown as every store shows URLs.
    text = _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)
    try:
        return type(exc)(text)
    except TypeError:
        return ConfigurationError(text)
