"""Store URLs: one parser, one redactor, one table of schemes.

Two forms of URL:

- **Server URLs** (``zenml+https://``, and every scheme not in the table):
  ``scheme://[user[:password]@]host[:port][/path][?options][#fragment]``.
- **Path URLs** (``file://``, ``memory://``): everything after ``://`` is the path, as written.

Where the userinfo ends. A password often holds ``/``, ``?``, ``#`` or ``@`` (base64, generated
passwords), and a plain URL parser then takes its first part for the host and the rest for a
path. So every ``@`` is tried as the end of the userinfo, and a reading counts when

1. the text after that ``@`` is a host (a name, an IPv4 address or ``[IPv6]``), with an optional
   numeric port, followed by the end or by ``/``, ``?`` or ``#``; and
2. if the userinfo holds ``/``, ``?`` or ``#``, they come after the ``:`` that starts the
   password (a user name with those characters must be percent-encoded).

The reading without such characters in the userinfo (the usual one, where the authority ends at
the first ``/``, ``?`` or ``#``) counts the same way. Exactly one reading counts: it is used.
More than one (``user:8080/x@host`` is also host ``user``, port 8080, path ``/x@host``): the URL
is refused with a ``ConfigurationError`` asking to percent-encode the password. None: refused,
saying what is wrong. No message ever shows the userinfo, the query or, for a URL that cannot be
read, anything after ``://``.

The scheme table maps each scheme to the store that opens it (as ``module:attribute``, imported
only when used: httpx costs a quarter of a second to import). A new store is one entry; a
third-party store is found by its scheme among the ``stacksecrets.stores`` entry points
(``_plugins``) when the table does not have it.
"""

from __future__ import annotations

import importlib
import re
import urllib.parse
from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple, Protocol, cast

import attrs

from .._errors import ConfigurationError

if TYPE_CHECKING:
    from ._base import SecretStore

__all__ = ["SCHEMES", "Scheme", "StoreOpener", "StoreURL", "open_url", "parse_store_url", "redact"]


class StoreOpener(Protocol):
    """Opens a store for a parsed URL; ``environ`` stands for ``os.environ``."""

    def __call__(self, url: StoreURL, /, *, environ: Mapping[str, str]) -> SecretStore: ...


class Scheme(NamedTuple):
    """One URL scheme: the store that opens it and how its URLs read. (A named tuple: built
    at every start-up, where an attrs class costs half a millisecond.)"""

    #: ``module:attribute`` of a ``StoreOpener``, imported on first use.
    opener: str
    #: Named in messages: "the ZenML store URL ...".
    kind: str
    #: Everything after ``://`` is a path (no user, host or options).
    path_only: bool = False


#: Every scheme ``open_store`` knows, each pointing at its store's ``from_url``: the one opener
#: shape (``StoreOpener``) that third-party stores implement too. Add a store here, one line
#: per scheme.
SCHEMES: Mapping[str, Scheme] = MappingProxyType(
    {
        "file": Scheme("stacksecrets.stores._file:FileStore.from_url", "file", path_only=True),
        "memory": Scheme(
            "stacksecrets.stores._memory:MemoryStore.from_url", "memory", path_only=True
        ),
        "zenml+https": Scheme("stacksecrets.stores._zenml:ZenMLStore.from_url", "ZenML"),
        "zenml+http": Scheme("stacksecrets.stores._zenml:ZenMLStore.from_url", "ZenML"),
        "zenml": Scheme("stacksecrets.stores._zenml:ZenMLStore.from_url", "ZenML"),
        "zenml+local": Scheme(
            "stacksecrets.stores._zenml_local:ZenMLLocalStore.from_url",
            "ZenML local database",
            path_only=True,
        ),
        "vault+https": Scheme("stacksecrets.stores._vault:VaultStore.from_url", "Vault"),
        "vault+http": Scheme("stacksecrets.stores._vault:VaultStore.from_url", "Vault"),
        "vault": Scheme("stacksecrets.stores._vault:VaultStore.from_url", "Vault"),
        "aws-sm": Scheme(
            "stacksecrets.stores._aws:AwsSecretsManagerStore.from_url", "AWS Secrets Manager"
        ),
        "env": Scheme("stacksecrets.stores._env:EnvStore.from_url", "environment"),
    }
)

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_HOST_PORT = re.compile(r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]*)(?::(?P<port>[^/?#]*))?")
_DELIMITERS = re.compile(r"[/?#]")
_MAX_PORT = 65_535


@attrs.frozen(repr=False)
class StoreURL:
    """A parsed store URL. ``str()`` and ``repr()`` show it without userinfo or options.

    ``username`` and ``password`` are percent-decoded; ``path``, ``query`` and ``fragment``
    are as written. ``host`` has no brackets (``::1``); ``netloc`` puts them back.
    """

    scheme: str
    host: str = ""
    port: int | None = None
    path: str = ""
    username: str | None = attrs.field(default=None, repr=False)
    password: str | None = attrs.field(default=None, repr=False)
    query: str = attrs.field(default="", repr=False)
    fragment: str = attrs.field(default="", repr=False)

    @property
    def netloc(self) -> str:
        """``host[:port]``, IPv6 in brackets; never the userinfo."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def redacted(self) -> str:
        """Safe to show: scheme, host, port and path."""
        return f"{self.scheme}://{self.netloc}{self.path}"

    def options(self, known: Collection[str]) -> dict[str, str]:
        """The query as options (the last value of a repeated one wins); any other name, or a
        query that is not ``name=value&...``, raises ``ConfigurationError`` (values not shown)."""
        try:
            parsed = urllib.parse.parse_qs(
                self.query, keep_blank_values=True, strict_parsing=bool(self.query)
            )
        except ValueError:
            # parse_qs's message quotes the query, which may hold a password.
            raise ConfigurationError(
                f"cannot read the options of the {_kind(self.scheme)}store URL "
                f"{self.redacted!r}: write them as ?name=value&name=value"
            ) from None
        unknown = sorted(set(parsed) - set(known))
        if unknown:
            raise ConfigurationError(
                f"unknown option(s) {', '.join(unknown)} in the {_kind(self.scheme)}store URL "
                f"{self.redacted!r}; known: {', '.join(sorted(known))}"
            )
        return {key: values[-1] for key, values in parsed.items()}

    def server(
        self, environ: Mapping[str, str], *, variable: str, example: str, with_path: bool
    ) -> str:
        """The ``http(s)://`` server this URL names, or, without a host, the one in
        ``environ[variable]`` (``ZENML_STORE_URL``, ``VAULT_ADDR``).

        ``scheme+https://host`` names ``https://host`` (with the URL's path when
        ``with_path``); a bare ``scheme://host`` does not say which protocol, and is refused
        showing ``example``. A ``ConfigurationError`` names the URL without credentials.
        """
        bare, plus, protocol = self.scheme.partition("+")
        kind = _kind(self.scheme)
        if self.host:
            if not plus:
                raise ConfigurationError(
                    f"say which protocol the {kind}server at {self.redacted!r} speaks: "
                    f"{example}, or write {bare}:// with no host to use {variable}"
                )
            return f"{protocol}://{self.netloc}{self.path if with_path else ''}"
        address = environ.get(variable, "").strip()
        if not address.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"the {kind}store URL {self.redacted!r} names no server, and {variable} "
                "does not hold an http(s):// server URL; set one of them"
            )
        return address

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"StoreURL({self.redacted!r})"


def parse_store_url(url: str) -> StoreURL:
    """Parse ``url`` (see the module docs); a URL that cannot be read safely raises
    ``ConfigurationError`` without showing any credential."""
    scheme, rest = _split_scheme(url)
    entry = SCHEMES.get(scheme)
    if entry is not None and entry.path_only:
        return StoreURL(scheme, path=rest)
    userinfo, host, port, tail = _authority(scheme, rest)
    path, _, query = tail.partition("#")[0].partition("?")
    fragment = tail.partition("#")[2]
    username = password = None
    if userinfo is not None:
        user, colon, secret = userinfo.partition(":")
        username = urllib.parse.unquote(user)
        password = urllib.parse.unquote(secret) if colon else None
    return StoreURL(
        scheme,
        host=host,
        port=port,
        path=path,
        username=username,
        password=password,
        query=query,
        fragment=fragment,
    )


def redact(url: str) -> str:
    """``url`` safe to show: without userinfo, options or fragment. A URL that cannot be read
    shows only its scheme; text without a scheme shows only what follows its last ``@``."""
    try:
        return parse_store_url(url).redacted
    except ConfigurationError:
        scheme, sep, _ = url.strip().partition("://")
        return f"{scheme.lower()}://..." if sep else _without_scheme(url.strip())


def open_url(url: str, *, environ: Mapping[str, str]) -> SecretStore:
    """The store for ``url``, opened by the table's entry for its scheme."""
    scheme, _ = _split_scheme(url)
    entry = SCHEMES.get(scheme)
    if entry is None:
        # Not built in: a third-party store registered for the scheme (built-ins win).
        from ._plugins import find_opener, installed_schemes, open_plugin

        found = find_opener(scheme)
        if found is None:
            others = "".join(f", {name}://" for name in installed_schemes())
            raise ConfigurationError(
                f"store URL scheme {scheme!r} is not supported; use {_examples()}{others}"
            )
        return open_plugin(*found, parse_store_url(url), environ)
    parsed = parse_store_url(url)
    module_name, _, attribute = entry.opener.partition(":")
    target: object = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    return cast("StoreOpener", target)(parsed, environ=environ)


# ---------------------------------------------------------------------- helpers


def _authority(scheme: str, rest: str) -> tuple[str | None, str, int | None, str]:
    """(userinfo, host, port, path-query-fragment) of a server URL, by the rule above."""
    end = _end_of_authority(rest, 0)
    readings: list[tuple[str | None, str, int | None, str]] = []
    bad_port = False

    head = rest[:end]
    userinfo, at, hostport = head.rpartition("@")
    host_port = _host_port(hostport)
    if host_port is None:
        bad_port = ":" in hostport
    else:
        readings.append((userinfo if at else None, *host_port, rest[end:]))

    # A password holding / ? or #: its ':' comes before the first of them.
    if ":" in head and not head.startswith("["):
        for at_index in (i for i, char in enumerate(rest) if char == "@" and i > end):
            stop = _end_of_authority(rest, at_index + 1)
            host_port = _host_port(rest[at_index + 1 : stop])
            if host_port is not None and host_port[0]:
                readings.append((rest[:at_index], *host_port, rest[stop:]))

    where = f"the {_kind(scheme)}store URL {scheme + '://...'!r}"
    if len(readings) > 1:
        raise ConfigurationError(
            f"cannot tell where the user name and password end in {where}: percent-encode "
            "/ ? # @ in the password, and @ in the options (urllib.parse.quote(text, safe=''))"
        )
    if not readings:
        if bad_port:
            raise ConfigurationError(
                f"bad port in {where}: the text after 'host:' must be a number up to "
                f"{_MAX_PORT}; if it is a password, write user:password@host and percent-encode "
                "/ ? # @ in it"
            )
        raise ConfigurationError(
            f"cannot read the host of {where}; write scheme://host[:port], with "
            "user:password@ before the host and / ? # @ in the password percent-encoded"
        )
    return readings[0]


def _split_scheme(url: str) -> tuple[str, str]:
    """(lower-case scheme, the rest after ``://``)."""
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        raise ConfigurationError(
            f"store URL {_without_scheme(text)!r} has no scheme; use {_examples()}"
        )
    return scheme.lower(), rest


def _end_of_authority(text: str, start: int) -> int:
    found = _DELIMITERS.search(text, start)
    return len(text) if found is None else found.start()


def _host_port(text: str) -> tuple[str, int | None] | None:
    """(host, port) when ``text`` is ``host[:port]``, else ``None``."""
    match = _HOST_PORT.fullmatch(text)
    if match is None:
        return None
    port_text = match.group("port")
    port: int | None = None
    if port_text:  # "host:" is host with no port, as in RFC 3986
        if not port_text.isascii() or not port_text.isdigit() or len(port_text) > len("65535"):
            return None
        port = int(port_text)
        if not 0 < port <= _MAX_PORT:
            return None
    return match.group("host").strip("[]").lower(), port


def _without_scheme(text: str) -> str:
    """Text that should have been a URL, shown without what may be a credential."""
    text = text.rsplit("@", 1)[-1] if "@" in text else text.split(":", 1)[0]
    return re.split(r"[?#]", text, maxsplit=1)[0][:60]


def _kind(scheme: str) -> str:
    entry = SCHEMES.get(scheme)
    return f"{entry.kind} " if entry is not None else ""


def _examples() -> str:
    return ", ".join(f"{name}://" for name in SCHEMES)
