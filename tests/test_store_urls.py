"""Store URLs: one parser for every store, credentials never shown, passwords never misread.

The class of fault: a password with ``/ ? # @ :`` in ``zenml+https://user:pass@host`` was
printed whole in the "bad port" error, and with credentials in the environment the URL even
opened, sending requests to host ``user``. Here every special character, raw and
percent-encoded, in user and password; every error message for a bad URL is scanned for the
password.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import string
import urllib.parse
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stacksecrets import ConfigurationError
from stacksecrets.stores import (
    EnvStore,
    FileStore,
    MemoryStore,
    StoreURL,
    VaultStore,
    ZenMLStore,
    open_store,
    parse_store_url,
)
from stacksecrets.stores._aws import AwsSecretsManagerStore
from stacksecrets.stores._urls import SCHEMES, redact
from stacksecrets.stores._zenml_local import ZenMLLocalStore

SPECIAL = "/?#@:%[]!$&'()*+,;= \"<>\\^`{|}~\t"
PASSWORD = "S3cr3t-Pw"
HOST = "zen.example.com"
ENV = {"ZENML_STORE_USERNAME": "env-user", "ZENML_STORE_PASSWORD": "env-pass"}


def _zenml(url: str) -> ZenMLStore:
    store = ZenMLStore.from_url(url, environ=ENV)
    anyio.run(store.aclose)
    return store


def _error_of(call: Callable[[], Any]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        call()
    assert caught.value.__cause__ is None or PASSWORD not in str(caught.value.__cause__)
    return str(caught.value)


# ---------------------------------------------------------------------- percent-encoded


@pytest.mark.parametrize("char", list(SPECIAL), ids=[f"{ord(c):02x}" for c in SPECIAL])
def test_every_special_character_percent_encoded_reads_back_exactly(char: str) -> None:
    """User and password with the character percent-encoded read back exactly, the host is
    the host, and str/repr show neither."""
    user, password = f"u{char}x", f"{PASSWORD}{char}{char}z"
    url = (
        f"zenml+https://{urllib.parse.quote(user, safe='')}:"
        f"{urllib.parse.quote(password, safe='')}@{HOST}:8443/prefix"
    )
    parsed = parse_store_url(url)
    assert (parsed.username, parsed.password) == (user, password)
    assert (parsed.host, parsed.port, parsed.path) == (HOST, 8443, "/prefix")
    assert str(parsed) == redact(url) == f"zenml+https://{HOST}:8443/prefix"
    assert repr(parsed) == f"StoreURL('zenml+https://{HOST}:8443/prefix')"
    store = _zenml(url)
    assert store.description == f"zenml+https://{HOST}:8443/prefix"
    assert PASSWORD not in repr(store)


# ---------------------------------------------------------------------- raw


@pytest.mark.parametrize("char", list("/?#@:"), ids=["slash", "question", "hash", "at", "colon"])
def test_a_raw_delimiter_in_the_password_is_read_as_part_of_it(char: str) -> None:
    """``user:Pw/rest@host`` (the issue's case): the password is ``Pw/rest``, the host is the
    host, never ``user`` with a port made of the password."""
    password = f"{PASSWORD}{char}rest"
    parsed = parse_store_url(f"zenml+https://admin:{password}@{HOST}/prefix")
    assert (parsed.username, parsed.password, parsed.host) == ("admin", password, HOST)
    assert parsed.path == "/prefix"
    assert _zenml(f"zenml+https://admin:{password}@{HOST}").description == f"zenml+https://{HOST}"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(f"zenml+https://admin:8080/{PASSWORD}@{HOST}", id="digits-then-slash"),
        pytest.param(f"zenml+https://admin:1?{PASSWORD}@{HOST}", id="digits-then-question"),
        pytest.param(f"zenml+https://admin:{PASSWORD}@evil.com/x@{HOST}", id="at-host-slash"),
        pytest.param(f"zenml+http://127.0.0.1:8080/?password={PASSWORD}@x", id="at-in-option"),
    ],
)
def test_an_ambiguous_url_is_refused_without_showing_the_password(url: str) -> None:
    """Where two readings fit (``admin:8080/...`` is also host admin, port 8080), the URL is
    refused, asking to percent-encode, and the message holds no part of the password."""
    for call in (
        lambda: parse_store_url(url),
        lambda: open_store(url, environ=ENV),
        lambda: ZenMLStore.from_url(url, environ=ENV),
    ):
        message = _error_of(call)
        assert "percent-encode" in message
        assert PASSWORD not in message
    assert PASSWORD not in redact(url)


BAD_URLS = [
    pytest.param(f"zenml+https://admin:{PASSWORD}", id="password-no-host"),
    pytest.param(f"zenml+https://admin:{PASSWORD}/x", id="password-slash-no-host"),
    pytest.param(f"zenml+http://127.0.0.1:{PASSWORD}", id="bad-port"),
    pytest.param(f"zenml+https://admin:{PASSWORD}@ho st", id="bad-host"),
    pytest.param(f"zenml+https://admin:{PASSWORD}@{HOST}:99999", id="port-too-big"),
    pytest.param(f"zenml://admin:{PASSWORD}@{HOST}", id="zenml-without-protocol"),
    pytest.param(f"zenml+ftp://admin:{PASSWORD}@{HOST}", id="not-zenml"),
    pytest.param(f"zenml+https://{HOST}?password={PASSWORD}&x=1", id="unknown-option"),
    pytest.param(f"zenml+https://{HOST}?password={PASSWORD}&&", id="unreadable-options"),
    pytest.param(f"zenml+https://admin:{PASSWORD}@{HOST}#frag", id="fragment-to-server"),
    pytest.param(f"ftp://admin:{PASSWORD}@{HOST}", id="unsupported-scheme"),
    pytest.param(f"admin:{PASSWORD}@{HOST}", id="no-scheme"),
    pytest.param(f"admin:{PASSWORD}", id="no-scheme-no-at"),
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_no_error_for_a_bad_url_shows_the_password(url: str) -> None:
    """Every way a store URL can be refused, through every entry point, says so without the
    password (and without it in the chained cause)."""
    for call in (
        lambda: open_store(url, environ=ENV),
        lambda: ZenMLStore.from_url(url, environ=ENV),
        lambda: FileStore.from_url(url),
    ):
        shown: list[str] = []
        try:
            store = call()
        except ConfigurationError as exc:
            shown += [str(exc), str(exc.__cause__)]
        else:  # a fragment is ignored, so that URL opens: fine, as long as nothing shows it
            shown.append(repr(store))
            anyio.run(store.aclose)
        assert all(PASSWORD not in text for text in shown)
    assert PASSWORD not in redact(url)


# ---------------------------------------------------------------------- properties

_USER = st.text(alphabet=string.ascii_letters + SPECIAL, min_size=1, max_size=12)
# Between markers, so a message that echoed it would be seen; no '%' (that one is decoded).
_RAW_PASSWORD = st.text(alphabet=string.ascii_letters + string.digits + "/?#@:!$&=+ ", max_size=16)


@given(user=_USER, core=_RAW_PASSWORD)
def test_a_raw_password_is_read_exactly_or_refused_never_misread(user: str, core: str) -> None:
    """Whatever a raw (not encoded) password holds, the URL is read with exactly that user,
    password, host and port, or refused without showing it: never another host. Only a
    password with / ? or # can be refused."""
    password = f"Qx{core}xZ"
    url = f"zenml+https://{urllib.parse.quote(user, safe='')}:{password}@{HOST}:8443/prefix"
    refused = ""
    try:
        parsed = parse_store_url(url)
    except ConfigurationError as exc:
        refused = str(exc)
    if refused:
        assert "Qx" not in refused
        assert "xZ" not in refused
        assert "percent-encode" in refused
        assert any(char in password for char in "/?#")
        return
    assert (parsed.username, parsed.password) == (user, password)
    assert (parsed.host, parsed.port, parsed.path) == (HOST, 8443, "/prefix")


_HOSTNAME = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z]{2,5}){0,2}", fullmatch=True)


@given(
    user=st.none() | st.text(max_size=8),
    password=st.none() | st.text(max_size=8),
    host=_HOSTNAME,
    port=st.none() | st.integers(1, 65535),
    path=st.text(alphabet=string.ascii_letters + "/-_.%", max_size=12).map(lambda p: "/" + p),
    query=st.dictionaries(st.sampled_from(["username", "api_key"]), st.text(max_size=6)),
)
def test_ordinary_urls_read_as_urllib_reads_them(
    user: str | None,
    password: str | None,
    host: str,
    port: int | None,
    path: str,
    query: dict[str, str],
) -> None:
    """A URL whose userinfo is percent-encoded reads as ``urllib.parse.urlsplit`` reads it:
    the parser changes nothing for the URLs that worked before."""
    userinfo = ""
    if user is not None:
        userinfo = urllib.parse.quote(user, safe="")
        if password is not None:
            userinfo += ":" + urllib.parse.quote(password, safe="")
        userinfo += "@"
    netloc = host if port is None else f"{host}:{port}"
    url = f"zenml+https://{userinfo}{netloc}{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    ours, theirs = parse_store_url(url), urllib.parse.urlsplit(url)
    unquote = urllib.parse.unquote
    assert ours.username == (None if theirs.username is None else unquote(theirs.username))
    assert ours.password == (None if theirs.password is None else unquote(theirs.password))
    assert (ours.host, ours.port) == (theirs.hostname, theirs.port)
    assert (ours.path, ours.query) == (theirs.path, theirs.query)


# ---------------------------------------------------------------------- the scheme table


def test_store_url_shows_no_credentials() -> None:
    """``StoreURL``'s str and repr hold scheme, host, port and path only."""
    url = parse_store_url(f"zenml+https://me:{PASSWORD}@{HOST}:1/p?api_key={PASSWORD}#f")
    assert str(url) == f"zenml+https://{HOST}:1/p"
    assert repr(url) == f"StoreURL('zenml+https://{HOST}:1/p')"


def test_every_scheme_in_the_table_opens_its_store(tmp_path: Any) -> None:
    """Each entry's opener imports, and ``open_store`` gives that store for its scheme."""
    expected = {
        "file": (f"file://{tmp_path}/s.json", FileStore),
        "memory": ("memory://", MemoryStore),
        "zenml": ("zenml://", ZenMLStore),
        "zenml+http": ("zenml+http://127.0.0.1:9?api_key=ZENKEY_x", ZenMLStore),
        "zenml+https": (f"zenml+https://{HOST}", ZenMLStore),
        "vault": ("vault:///secret", VaultStore),
        "vault+http": ("vault+http://127.0.0.1:9/secret", VaultStore),
        "vault+https": (f"vault+https://{HOST}/secret", VaultStore),
        "aws-sm": ("aws-sm://?region=eu-west-1", AwsSecretsManagerStore),
        "env": ("env://?prefix=APP_", EnvStore),
        "zenml+local": ("zenml+local://", ZenMLLocalStore),
    }
    assert set(SCHEMES) == set(expected)
    for scheme, entry in SCHEMES.items():
        module, _, attribute = entry.opener.partition(":")
        target: object = importlib.import_module(module)
        for part in attribute.split("."):
            target = getattr(target, part)
        assert callable(target)
        # One opener shape for every scheme: (url, /, *, environ), as plugins implement.
        parameters = inspect.signature(target).parameters
        first = next(iter(parameters.values()))
        assert first.kind is inspect.Parameter.POSITIONAL_ONLY
        assert parameters["environ"].kind is inspect.Parameter.KEYWORD_ONLY
        url, kind = expected[scheme]
        environ = {
            **ENV,
            "ZENML_STORE_URL": f"https://{HOST}",
            "VAULT_ADDR": f"https://{HOST}",
            "VAULT_TOKEN": "t",
        }
        if kind is ZenMLLocalStore and importlib.util.find_spec("zenml") is None:
            # ZenML's client in this process, which cannot import it: tests/test_zenml_local.py
            # opens it in the ZenML venv.
            with pytest.raises(ConfigurationError, match="zenml cannot be imported"):
                open_store(url, environ=environ)
            continue
        store = open_store(url, environ=environ)
        assert isinstance(store, kind)
        anyio.run(store.aclose)


def test_path_urls_keep_everything_after_the_scheme() -> None:
    """``file://`` reads everything after ``://`` as its path: an ``@`` or ``#`` in a folder
    name is part of the path, not a host or a fragment."""
    url = parse_store_url("file:///home/me@corp/a#b.json")
    assert (url.host, url.path) == ("", "/home/me@corp/a#b.json")
    assert isinstance(url, StoreURL)


def test_the_aws_opener_honours_the_environ_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """``open_store("aws-sm://...", environ=...)`` reads the region, the endpoint and the
    access keys from that mapping, not from the process environment (the opener shape every
    scheme shares: ``(url, /, *, environ)``)."""
    monkeypatch.setenv("AWS_REGION", "us-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:2")
    environ = {
        "AWS_REGION": "eu-central-1",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:1",
        "AWS_ACCESS_KEY_ID": "AKIATESTSTACKSECRETS",
        "AWS_SECRET_ACCESS_KEY": "not-a-real-secret-key",
    }
    store = open_store("aws-sm://?prefix=app/", environ=environ)
    assert isinstance(store, AwsSecretsManagerStore)
    assert store.description == "aws-sm://?region=eu-central-1&prefix=app/ (http://127.0.0.1:1)"
    assert "not-a-real-secret-key" not in repr(store)
    anyio.run(store.aclose)
