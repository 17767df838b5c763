"""The ZenML store against a real ZenML 0.98 server (and a scripted one for odd answers)."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import urllib.parse
import uuid
import weakref
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import attrs
import httpx
import pytest
import structlog

from backends import asyncio_only_against_servers
from recording_transport import RecordingTransport
from stacksecrets import (
    AsyncClient,
    ClosedError,
    Component,
    ConfigurationError,
    ForbiddenError,
    SecretExistsError,
    SecretNotFoundError,
    StoreError,
    StoreUnavailableError,
)
from stacksecrets.stores import SecretStore, _zenml, _zenml_http
from stacksecrets.stores._zenml import ZenMLStore
from zenml_fixtures import ZenMLServer

pytestmark = pytest.mark.zenml

#: The trio runs kept (the backend matters: concurrency, cancellation, timeouts, retries); the
#: other tests against the real server run on asyncio only (tests/backends.py).
trio_not_needed = asyncio_only_against_servers(
    keep={
        "test_concurrent_first_calls_log_in_once",
        "test_a_server_that_never_answers_times_out_as_unavailable",
        "test_unreachable_server_is_unavailable",
        "test_refused_token_is_replaced_once",
        "test_a_second_401_is_forbidden_after_one_new_login",
    }
)


SECRET_PATH = "/api/v1/secrets/"


#: The transport each store made by ``_store`` sends through (see ``_record_requests``).
_RECORDERS: weakref.WeakKeyDictionary[ZenMLStore, RecordingTransport] = weakref.WeakKeyDictionary()


def _store(server: ZenMLServer, *, login: bool = False, **options: Any) -> ZenMLStore:
    """A store for the admin; unless ``login`` (or other credentials), it starts with the
    session's admin token, since each password login costs the server ~0.4 s of hashing.
    Its requests go through a ``RecordingTransport``."""
    if "api_key" not in options:
        options.setdefault("username", server.username)
        options.setdefault("password", server.password)
    if not login and options.get("password") == server.password:
        options.setdefault("token", server.admin_token)
    recorder = RecordingTransport()
    store = ZenMLStore(server.url, transport=recorder, **options)
    _RECORDERS[store] = recorder
    return store


@contextlib.contextmanager
def socket_closed_port() -> Iterator[int]:
    """A loopback port that was just closed: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    yield port


def _record_requests(store: ZenMLStore) -> list[httpx.Request]:
    """Every request a ``_store`` store sends from now on."""
    return _RECORDERS[store].watch()


# ---------------------------------------------------------------------- shared server data


@attrs.frozen
class Seeded:
    """Secrets and a stack made once per module, through ZenML's CLI, client and REST API."""

    prefix: str
    cli_secret: str
    store_secret: str
    zenml_client_read: dict[str, Any]
    stack: str
    registry: str
    many: tuple[str, ...]
    similar: tuple[str, ...]
    api_key: str = attrs.field(repr=False)


SEED_CODE = """
import json, sys
from zenml.cli.cli import cli
from zenml.client import Client

p, store_secret = sys.argv[1], sys.argv[2]
def run(*args):
    try:
        cli.main(list(args), standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise
run("secret", "create", p + "cli", "--user=bob", "--password=hunter2-cli")
run("container-registry", "register", p + "reg", "--flavor=default", "--uri=localhost:5000",
    "--authentication_secret={{" + p + "cli.password}}",
    "--default_repository={{ " + p + "cli.user }}")
run("stack", "register", p + "stack", "-o", "default", "-a", "default", "-c", p + "reg")
secret = Client().get_secret(store_secret)
print("SEED-RESULT " + json.dumps({"values": secret.secret_values, "private": secret.private}))
"""


@pytest.fixture(scope="module")
def seeded(zenml_server: ZenMLServer) -> Iterator[Seeded]:
    """The module's shared data: made once, as cheaply as a real ZenML allows."""
    prefix = f"m{uuid.uuid4().hex[:6]}-"
    store_secret = f"{prefix}from-store"

    async def create() -> None:
        async with _store(zenml_server) as store:
            await store.create_secret(store_secret, {"token": "t0ken-value", "user": "amy"})

    anyio.run(create)
    many = tuple(f"{prefix}many-{i:03d}" for i in range(60))
    similar = (f"{prefix}db", *(f"{prefix}db-{i}" for i in range(1, 26)))
    ids = [zenml_server.create_secret(name, {"k": f"v-{name}"}) for name in (*many, *similar)]
    api_key = zenml_server.create_service_account(f"{prefix}robot")
    # One process for ZenML's CLI and client: each start of it costs seconds.
    output = zenml_server.run_python(SEED_CODE, prefix, store_secret)
    line = next(x for x in output.splitlines() if x.startswith("SEED-RESULT "))
    yield Seeded(
        prefix=prefix,
        cli_secret=f"{prefix}cli",
        store_secret=store_secret,
        zenml_client_read=json.loads(line.removeprefix("SEED-RESULT ")),
        stack=f"{prefix}stack",
        registry=f"{prefix}reg",
        many=many,
        similar=similar,
        api_key=api_key,
    )
    for secret_id in ids:
        zenml_server.delete_secret(secret_id)


# ---------------------------------------------------------------------- reading


@pytest.mark.anyio
async def test_reads_a_secret_created_by_the_zenml_cli(zenml_server, seeded):
    """A secret made by `zenml secret create NAME --k=v` reads back with the same values."""
    async with _store(zenml_server, login=True) as store:
        secret = await store.get_secret(seeded.cli_secret)
    assert secret.name == seeded.cli_secret
    assert secret.keys == {"user", "password"}
    assert secret.secret_values == {"user": "bob", "password": "hunter2-cli"}
    assert not secret.unreadable_keys


def test_zenml_client_reads_a_secret_the_store_created(seeded):
    """ZenML's own Client().get_secret sees a secret created through the store, as public."""
    assert seeded.zenml_client_read == {
        "values": {"token": "t0ken-value", "user": "amy"},
        "private": False,
    }


@pytest.mark.anyio
async def test_a_found_secret_costs_one_list_and_one_read(zenml_server, seeded):
    """Login, an exact-name list, and a read by id: three requests, paths carry no name."""
    async with _store(zenml_server, login=True) as store:
        sent = _record_requests(store)
        await store.get_secret(seeded.cli_secret)
    assert store.http_calls == 3
    assert [r.url.path for r in sent[:2]] == ["/api/v1/login", "/api/v1/secrets"]
    assert sent[1].url.params["name"] == f"equals:{seeded.cli_secret}"
    assert sent[2].url.path.startswith(SECRET_PATH)
    uuid.UUID(sent[2].url.path.removeprefix(SECRET_PATH))


@pytest.mark.anyio
async def test_login_with_an_api_key(zenml_server, seeded):
    """A service account's API key logs in (grant zenml-api-key) and reads public secrets."""
    async with _store(zenml_server, api_key=seeded.api_key) as store:
        sent = _record_requests(store)
        secret = await store.get_secret(seeded.cli_secret)
    assert secret.keys == {"user", "password"}
    login = sent[0]
    assert login.url.path == "/api/v1/login"
    form = urllib.parse.parse_qs(login.content.decode())
    assert form["grant_type"] == ["zenml-api-key"]


@pytest.mark.anyio
async def test_oss_cannot_express_a_list_only_caller(zenml_server, seeded):
    """ZenML OSS has no RBAC: a service account that can list secrets also reads their values.

    So the 'list but not read' caller can only be exercised against ZenML Pro or a scripted
    server (see test_null_values_become_unreadable_keys); this test documents the OSS fact.
    """
    async with _store(zenml_server, api_key=seeded.api_key) as store:
        assert seeded.cli_secret in await store.secrets_exist([seeded.cli_secret])
        secret = await store.get_secret(seeded.cli_secret)
    assert not secret.unreadable_keys
    assert secret.secret_values["user"] == "bob"


@pytest.mark.anyio
async def test_public_secret_wins_over_private_one_of_the_same_name(zenml_server, make_secret):
    """As ZenML resolves at run time: the public secret is used when both exist."""
    name = f"t{uuid.uuid4().hex[:8]}-twin"
    make_secret(name, {"which": "private"}, private=True)
    async with _store(zenml_server) as store:
        assert (await store.get_secret(name)).secret_values == {"which": "private"}
        make_secret(name, {"which": "public"})
        assert (await store.get_secret(name)).secret_values == {"which": "public"}
        # One listing, sorted and each name once (two listings differ while other tests of
        # the session create and delete secrets on the shared server).
        listed = await store.list_secrets()
        assert listed == sorted(set(listed))
        assert listed.count(name) == 1


@pytest.mark.anyio
async def test_exact_names_only_not_prefixes(zenml_server, make_secret, unique_prefix):
    """Only `aws-prod` exists: `aws-pr`, `aws-prod-x` and `AWS-PROD` are missing (ZenML's
    own validation would accept `aws-pr`)."""
    existing = f"{unique_prefix}aws-prod"
    make_secret(existing)
    near = [f"{unique_prefix}aws-pr", f"{existing}-x", existing.upper(), f"{unique_prefix}aws"]
    async with _store(zenml_server) as store:
        assert await store.secrets_exist([*near, existing]) == {existing}
        for name in near:
            with pytest.raises(SecretNotFoundError):
                await store.get_secret(name)


@pytest.mark.anyio
async def test_more_than_20_similar_names_still_find_the_exact_one(zenml_server, seeded):
    """With `db` and `db-1`..`db-25`, `db` exists and reads (ZenML's validation says missing)."""
    db = seeded.similar[0]
    async with _store(zenml_server) as store:
        assert (await store.get_secret(db)).secret_values == {"k": f"v-{db}"}
        assert await store.secrets_exist([db, f"{db}-26"]) == {db}


# ---------------------------------------------------------------------- existence and lists


@pytest.mark.anyio
async def test_secrets_exist_in_chunks_without_reading_values(zenml_server, seeded):
    """120 names, half missing: right answer, in ceil(120/50) list calls, no read by id."""
    missing = [f"{seeded.prefix}absent-{i:03d}" for i in range(60)]
    names = [n for pair in zip(seeded.many, missing, strict=True) for n in pair]
    async with _store(zenml_server) as store:
        sent = _record_requests(store)
        assert await store.secrets_exist(names) == set(seeded.many)
    lists = [r for r in sent if r.url.path == "/api/v1/secrets"]
    assert len(lists) == 3
    assert all(r.method == "GET" and r.url.params["name"].startswith("oneof:[") for r in lists)
    assert not any(r.url.path.startswith(SECRET_PATH) for r in sent)
    assert store.capabilities.batched_exists
    assert store.capabilities.max_batch == 50


@pytest.mark.anyio
async def test_a_read_after_an_existence_check_costs_one_call(zenml_server, make_secret):
    """The id from the existence answer serves the next read once: one call, then two."""
    name = f"t{uuid.uuid4().hex[:8]}-memo"
    make_secret(name, {"k": "v"})
    async with _store(zenml_server) as store:
        sent = _record_requests(store)
        assert await store.secrets_exist([name]) == {name}
        assert (await store.get_secret(name)).secret_values == {"k": "v"}
        assert [r.url.path.startswith(SECRET_PATH) for r in sent] == [False, True]
        sent.clear()
        await store.get_secret(name)
        assert [r.url.path.startswith(SECRET_PATH) for r in sent] == [False, True]


@pytest.mark.anyio
async def test_a_remembered_id_follows_zenml_order_and_staleness(zenml_server, make_secret):
    """A remembered id prefers the public twin, and one made stale by a delete and re-create
    is replaced by a fresh look-up."""
    name = f"t{uuid.uuid4().hex[:8]}-stale"
    make_secret(name, {"which": "private"}, private=True)
    first = make_secret(name, {"which": "public-1"})
    async with _store(zenml_server) as store:
        await store.secrets_exist([name])
        assert (await store.get_secret(name)).secret_values == {"which": "public-1"}
        await store.secrets_exist([name])
        zenml_server.delete_secret(first)
        make_secret(name, {"which": "public-2"})
        assert (await store.get_secret(name)).secret_values == {"which": "public-2"}


@pytest.mark.anyio
async def test_remembered_ids_expire(zenml_server, make_secret, monkeypatch):
    """Past ID_MEMO_SECONDS, a read looks the name up again (list, then read)."""
    monkeypatch.setattr(_zenml, "ID_MEMO_SECONDS", 0.0)
    name = f"t{uuid.uuid4().hex[:8]}-expire"
    make_secret(name)
    async with _store(zenml_server) as store:
        await store.secrets_exist([name])
        sent = _record_requests(store)
        await store.get_secret(name)
    assert [r.url.path == "/api/v1/secrets" for r in sent] == [True, False]


@pytest.mark.anyio
async def test_secrets_exist_of_nothing_sends_nothing(zenml_server):
    """No names, no request: ZenML reads `oneof:[]` as 'every secret'."""
    async with _store(zenml_server) as store:
        assert await store.secrets_exist([]) == frozenset()
    assert store.http_calls == 0


@pytest.mark.anyio
async def test_lists_follow_every_page(zenml_server, seeded, monkeypatch):
    """With small pages, list_secrets and secrets_exist still see every secret."""
    monkeypatch.setattr(_zenml_http, "PAGE_SIZE", 7)
    async with _store(zenml_server) as store:
        names = await store.list_secrets()
        found = await store.secrets_exist(list(seeded.many[:50]))
    assert set(seeded.many) <= set(names)
    assert names == sorted(names)
    assert found == set(seeded.many[:50])
    assert store.http_calls > 1 + 60 // 7


@pytest.mark.anyio
@pytest.mark.parametrize("gone", [1, 6], ids=["one-deleted", "pages-gone"])
async def test_a_listing_the_server_changed_between_pages_misses_nothing(
    zenml_server, make_secret, unique_prefix, monkeypatch, gone
):
    """Pages are offsets: secrets deleted (by someone else) after the first page shift the
    rest left, so the next page starts past items that existed all along, or is past the end
    (ZenML answers 400). The listing sees the total move (or the 400) and reads again: every
    secret that existed throughout is listed (with one pass, one was missing)."""
    monkeypatch.setattr(_zenml_http, "PAGE_SIZE", 3)
    made = [(make_secret(f"{unique_prefix}{i:02d}"), f"{unique_prefix}{i:02d}") for i in range(9)]
    async with _store(zenml_server) as store:
        session = store._session
        send = session.request
        deleted: list[str] = []

        async def request(method: str, path: str, **options: Any) -> Any:
            answer = await send(method, path, **options)
            if path == "/secrets" and options["params"]["page"] == "1" and not deleted:
                for secret_id, name in made[:gone]:  # someone else deletes the oldest
                    zenml_server.delete_secret(secret_id)
                    deleted.append(name)
            return answer

        monkeypatch.setattr(session, "request", request)
        items = await session.list_all("/secrets", {"name": f"startswith:{unique_prefix}"})
    assert {name for _, name in made[gone:]} <= {item["name"] for item in items}


def test_chunks_respect_count_and_url_budget():
    """Chunks keep order, hold at most 50 names and fit the URL budget, even for long names."""
    names = [f"n{i}-" + "é/%" * (i % 80) for i in range(300)]
    chunks = list(_zenml_http.chunks(names))
    assert [n for chunk in chunks for n in chunk] == names
    for chunk in chunks:
        assert 1 <= len(chunk) <= 50
        encoded = urllib.parse.quote(_zenml_http.oneof(chunk), safe="")
        assert len(encoded) <= _zenml_http.MAX_FILTER_CHARS


# ---------------------------------------------------------------------- writing


@pytest.mark.anyio
async def test_create_update_delete_round_trip(zenml_server, unique_prefix):
    """Create, refuse a duplicate, update (set and remove keys), delete, then not found."""
    name = f"{unique_prefix}crud"
    async with _store(zenml_server) as store:
        await store.create_secret(name, {"a": "1", "b": "2"})
        with pytest.raises(SecretExistsError):
            await store.create_secret(name, {"a": "x"})
        await store.update_secret(name, {"b": "20", "c": "3"}, remove_keys=["a", "never"])
        assert (await store.get_secret(name)).secret_values == {"b": "20", "c": "3"}
        assert name in await store.list_secrets()
        await store.delete_secret(name)
        assert await store.secrets_exist([name]) == frozenset()
        for call in (
            store.get_secret(name),
            store.delete_secret(name),
            store.update_secret(name, {"a": "1"}),
        ):
            with pytest.raises(SecretNotFoundError):
                await call
    assert store.capabilities.writable


SPECIAL_NAMES = [
    "a/b",
    "..",
    "../secrets",
    "x?y#z",
    "%2F",
    "a%2Fb",
    'q"u,o',
    "it's",
    "sp ace",
    "a:b",
    "equals:x",
    'oneof:["x"]',
    "tab\tname",
    "ünï/cödé",
]


@pytest.mark.anyio
@pytest.mark.parametrize("raw", SPECIAL_NAMES)
async def test_special_names_never_change_the_url(zenml_server, unique_prefix, raw):
    """Names with / .. ? # % quotes commas colons spaces and tabs round-trip, and every request
    goes to /login, /secrets or /secrets/<uuid>, the name only in a query value or body."""
    name = f"{unique_prefix}{raw}"
    decoy = f"{unique_prefix}{raw.split('/')[0].split('?')[0]}"
    async with _store(zenml_server) as store:
        sent = _record_requests(store)
        if decoy != name:
            await store.create_secret(decoy, {"which": "decoy"})
        await store.create_secret(name, {"which": "real"})
        assert await store.secrets_exist([name, f"{name}-not"]) == {name}
        assert (await store.get_secret(name)).secret_values == {"which": "real"}
        await store.update_secret(name, {"more": "1"})
        await store.delete_secret(name)
        assert await store.secrets_exist([name]) == frozenset()
        if decoy != name:
            assert (await store.get_secret(decoy)).secret_values == {"which": "decoy"}
            await store.delete_secret(decoy)
    for request in sent:
        path = request.url.path
        assert path in {"/api/v1/login", "/api/v1/secrets"} or (
            path.startswith(SECRET_PATH) and uuid.UUID(path.removeprefix(SECRET_PATH))
        ), path
        assert "#" not in str(request.url)
        query_names = request.url.params.get_list("name")
        assert query_names in ([], [f"equals:{name}"], [f"equals:{decoy}"]) or (
            query_names[0].startswith("oneof:")
        )


# ---------------------------------------------------------------------- authentication


@pytest.mark.anyio
async def test_refused_token_is_replaced_once(zenml_server, seeded):
    """A token the server refuses (401) leads to one new login and a retried call."""
    async with _store(zenml_server, token="garbage") as store:
        sent = _record_requests(store)
        assert (await store.get_secret(seeded.cli_secret)).keys == {"user", "password"}
    assert [r.url.path for r in sent][:3] == ["/api/v1/secrets", "/api/v1/login", "/api/v1/secrets"]
    assert sum(r.url.path == "/api/v1/login" for r in sent) == 1


@pytest.mark.anyio
async def test_concurrent_first_calls_log_in_once(zenml_server, seeded):
    """Twenty calls started together on a fresh store make exactly one login."""
    async with _store(zenml_server, login=True) as store:
        sent = _record_requests(store)
        async with anyio.create_task_group() as group:
            for name in seeded.many[:20]:
                group.start_soon(store.get_secret, name)
    assert sum(r.url.path == "/api/v1/login" for r in sent) == 1
    assert store.http_calls == 1 + 2 * 20


@pytest.mark.anyio
async def test_wrong_password_is_forbidden_without_showing_it(zenml_server):
    """Bad credentials raise ForbiddenError naming the user and host, never the password."""
    password = "wr0ng-" + uuid.uuid4().hex
    async with _store(zenml_server, password=password) as store:
        with pytest.raises(ForbiddenError) as caught:
            await store.secrets_exist(["x"])
    message = str(caught.value)
    assert "admin" in message
    assert zenml_server.host in message
    assert (password in message) is False
    assert (password in repr(store)) is False


@pytest.mark.anyio
async def test_wrong_api_key_is_forbidden(zenml_server):
    """A made-up API key raises ForbiddenError, and the key is not in the message."""
    key = "ZENKEY_" + uuid.uuid4().hex
    async with _store(zenml_server, api_key=key) as store:
        with pytest.raises(ForbiddenError) as caught:
            await store.list_secrets()
    assert (key in str(caught.value)) is False


@pytest.mark.anyio
async def test_unreachable_server_is_unavailable():
    """A closed loopback port raises StoreUnavailableError (transient, retryable)."""
    with socket_closed_port() as port:
        async with ZenMLStore(f"http://127.0.0.1:{port}", username="a", password="b") as store:
            with pytest.raises(StoreUnavailableError) as caught:
                await store.get_secret("x")
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert caught.value.retry_after is None


@pytest.mark.anyio
async def test_a_server_that_never_answers_times_out_as_unavailable():
    """A server that accepts the connection but never answers: StoreUnavailableError after
    the timeout, naming the host and path."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        store = ZenMLStore(f"http://127.0.0.1:{port}", username="a", password="b", timeout=0.3)
        async with store:
            with pytest.raises(StoreUnavailableError, match=r"POST /api/v1/login.*Timeout"):
                await store.list_secrets()


# ---------------------------------------------------------------------- stacks


@pytest.mark.anyio
async def test_get_stacks_reads_components_with_references(zenml_server, seeded):
    """A stack registered with the ZenML CLI comes back with its components' configuration."""
    async with _store(zenml_server) as store:
        sent = _record_requests(store)
        (stack,) = await store.stacks.get_stacks([seeded.stack])
    assert stack.name == seeded.stack
    by_type = {c.type: c for c in stack.components}
    assert set(by_type) == {"orchestrator", "artifact_store", "container_registry"}
    registry = by_type["container_registry"]
    assert registry == Component(
        type="container_registry",
        flavor="default",
        name=seeded.registry,
        configuration={
            "uri": "localhost:5000",
            "authentication_secret": "{{" + seeded.cli_secret + ".password}}",
            "default_repository": "{{ " + seeded.cli_secret + ".user }}",
        },
    )
    # The flavors' config schemas come along (one call per 50 flavors): the attributes' types.
    assert [r.url.path for r in sent] == ["/api/v1/stacks", "/api/v1/components", "/api/v1/flavors"]
    assert registry.config_schema is not None
    assert registry.config_schema["properties"]["uri"]["type"] == "string"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("level", "calls"), [("NONE", 0), ("SECRET_EXISTS", 2), ("SECRET_AND_KEY_EXISTS", 3)]
)
async def test_validating_a_server_stack_costs_few_calls(zenml_server, seeded, level, calls):
    """A ZenML stack validated with the engine: the prefix `{{...cl.k}}` ZenML would accept is
    missing, a missing key is found at key level, and each level costs 0, 1 or 2 requests,
    plus one for the config schemas of the two flavors added here (none at NONE); slack's
    schema has no attribute 'a'."""
    async with _store(zenml_server) as store:
        (stack,) = await store.stacks.get_stacks([seeded.stack])
        bad = Component(
            "alerter", "slack", "bad", {"a": "{{" + seeded.cli_secret[:-1] + ".password}}"}
        )
        worse = Component("annotator", "x", "worse", {"b": "{{" + seeded.cli_secret + ".nope}}"})
        stack = attrs.evolve(stack, components=(*stack.components, bad, worse))
        before = store.http_calls
        # The read path's cost: no answer from the metadata cache an earlier run wrote.
        async with AsyncClient(store, level=level, metadata_cache=False) as client:
            report = await client.validate_stack(stack)
        assert store.http_calls - before == calls
    problems = {(p.kind.value, p.secret, p.key) for p in report.problems}
    expected = {
        "NONE": set(),
        "SECRET_EXISTS": {
            ("missing_secret", seeded.cli_secret[:-1], None),
            ("zenml_unresolvable", None, None),
        },
        "SECRET_AND_KEY_EXISTS": {
            ("missing_secret", seeded.cli_secret[:-1], None),
            ("missing_key", seeded.cli_secret, "nope"),
            ("zenml_unresolvable", None, None),
        },
    }[level]
    assert problems == expected


@pytest.mark.anyio
async def test_get_all_stacks_and_stack_names(zenml_server, seeded):
    """With no names, every stack is read; list_stack_names gives the same names, sorted."""
    async with _store(zenml_server) as store:
        names = await store.stacks.list_stack_names()
        stacks = await store.stacks.get_stacks()
    assert {"default", seeded.stack} <= set(names)
    assert [s.name for s in stacks] == names


@pytest.fixture(scope="module")
def many_stacks(zenml_server: ZenMLServer, seeded: Seeded) -> list[str]:
    """55 stacks made through the REST API: each its own container registry with a reference,
    the default stack's orchestrator and artifact store shared."""
    rest = zenml_server.rest()
    default = rest.get("/stacks", params={"name": "default", "hydrate": "true"})
    default.raise_for_status()
    groups = default.json()["items"][0]["metadata"]["components"]
    shared = {kind: [groups[kind][0]["id"]] for kind in ("orchestrator", "artifact_store")}
    names = []
    for index in range(55):
        name = f"{seeded.prefix}fleet-{index:02d}"
        registry = rest.post(
            "/components",
            json={
                "name": name,
                "type": "container_registry",
                "flavor": "default",
                "configuration": {
                    "uri": f"localhost:{5000 + index}",
                    "authentication_secret": "{{" + seeded.cli_secret + ".password}}",
                },
            },
        )
        registry.raise_for_status()
        made = rest.post(
            "/stacks",
            json={
                "name": name,
                "components": {**shared, "container_registry": [registry.json()["id"]]},
            },
        )
        made.raise_for_status()
        names.append(name)
    return names


@pytest.mark.anyio
@pytest.mark.parametrize(("count", "calls"), [(1, 3), (5, 3), (55, 5)])
async def test_reading_many_stacks_costs_calls_per_fifty(zenml_server, many_stacks, count, calls):
    """Stacks and their components are read by batched, filtered list calls: 1 and 5 stacks
    cost the same 3 calls (stacks, components, flavors); 55 stacks (57 distinct components)
    cost 5, one more for each batch of 50, never one call per stack or component."""
    wanted = many_stacks[:count]
    async with _store(zenml_server) as store:
        sent = _record_requests(store)
        stacks = await store.stacks.get_stacks(wanted)
    assert [s.name for s in stacks] == wanted
    for stack in stacks:
        registry = next(c for c in stack.components if c.type == "container_registry")
        assert registry.name == stack.name
        assert {c.type for c in stack.components} == {
            "orchestrator",
            "artifact_store",
            "container_registry",
        }
    paths = [r.url.path for r in sent]
    assert len(paths) == calls, paths
    assert paths.count("/api/v1/flavors") == 1


@pytest.mark.anyio
async def test_unknown_stack_is_a_configuration_error(zenml_server, seeded):
    """Asking for stacks that do not exist raises ConfigurationError naming each of them."""
    async with _store(zenml_server) as store:
        with pytest.raises(ConfigurationError) as caught:
            await store.stacks.get_stacks([seeded.stack, "no-such-stack", "nor-this"])
    assert "'no-such-stack'" in str(caught.value)
    assert "'nor-this'" in str(caught.value)


# ---------------------------------------------------------------------- logging, lifecycle


@pytest.mark.anyio
async def test_log_events_hold_no_credentials_or_values(zenml_server, seeded):
    """Login and request events carry host, method, path, status and duration; nothing secret."""
    async with _store(zenml_server, login=True) as store:
        with structlog.testing.capture_logs() as events:
            await store.get_secret(seeded.cli_secret)
        (token,) = _RECORDERS[store].tokens
    names = [e["event"] for e in events]
    assert names.count("stacksecrets.zenml.login") == 1
    assert names.count("stacksecrets.zenml.request") == 3
    text = repr(events)
    for forbidden in (zenml_server.password, token, "hunter2-cli"):
        assert (forbidden in text) is False
    request = next(e for e in events if e["event"] == "stacksecrets.zenml.request")
    assert {"host", "method", "path", "status", "duration_ms"} <= set(request)


@pytest.mark.anyio
async def test_closed_store_refuses_use(zenml_server):
    """After aclose (idempotent), every call raises ClosedError."""
    store = _store(zenml_server)
    assert isinstance(store, SecretStore)
    await store.aclose()
    await store.aclose()
    with pytest.raises(ClosedError):
        await store.get_secret("x")
    with pytest.raises(ClosedError):
        await store.secrets_exist(["x"])
    assert store.http_calls == 0


# ---------------------------------------------------------------------- odd answers


@attrs.define
class Scripted:
    """A loopback HTTP server answering from a script: (method, path) -> (status, headers, body)."""

    url: str
    routes: dict[tuple[str, str], tuple[int, dict[str, str], Any]]
    seen: list[tuple[str, str]]


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    """A real HTTP server on loopback that answers whatever the test scripts."""
    routes: dict[tuple[str, str], tuple[int, dict[str, str], Any]] = {
        ("POST", "/api/v1/login"): (200, {}, {"access_token": "tok", "token_type": "bearer"}),
    }
    seen: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            path = urllib.parse.urlsplit(self.path).path
            seen.append((self.command, path))
            status, headers, body = routes.get((self.command, path), (404, {}, {"detail": []}))
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _answer  # noqa: N815 - http.server's names

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Scripted(f"http://127.0.0.1:{server.server_address[1]}", routes, seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


SECRET_ID = "2b1f8a5e-0c4e-4a6c-9a53-3f0f3f6d2a11"


def _page(*items: Mapping[str, Any]) -> dict[str, Any]:
    return {"index": 1, "max_size": 20, "total_pages": 1, "total": len(items), "items": items}


@pytest.mark.anyio
async def test_null_values_become_unreadable_keys(scripted):
    """A value answered as null (caller may not read it) is an unreadable key, not a value."""
    scripted.routes["GET", "/api/v1/secrets"] = (
        200, {}, _page({"id": SECRET_ID, "name": "s", "body": {"private": False, "values": {}}}),
    )  # fmt: skip
    scripted.routes["GET", SECRET_PATH + SECRET_ID] = (
        200, {}, {"id": SECRET_ID, "name": "s", "body": {"values": {"a": "x", "b": None}}},
    )  # fmt: skip
    async with ZenMLStore(scripted.url, username="u", password="p") as store:
        secret = await store.get_secret("s")
    assert secret.secret_values == {"a": "x"}
    assert secret.unreadable_keys == {"b"}
    assert secret.keys == {"a", "b"}


@pytest.mark.anyio
async def test_an_id_that_is_not_a_uuid_is_never_used_in_a_path(scripted):
    """A list answer whose id is not a UUID is an error; no request goes to that path."""
    scripted.routes["GET", "/api/v1/secrets"] = (
        200, {}, _page({"id": "../../login", "name": "s", "body": {"private": False}}),
    )  # fmt: skip
    async with ZenMLStore(scripted.url, username="u", password="p") as store:
        with pytest.raises(StoreError, match="not a UUID"):
            await store.get_secret("s")
    assert scripted.seen == [("POST", "/api/v1/login"), ("GET", "/api/v1/secrets")]


IN_A_MINUTE = "<an HTTP date one minute from now>"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after"),
    [
        (429, {"Retry-After": "7"}, StoreUnavailableError, 7.0),
        (503, {"Retry-After": IN_A_MINUTE}, StoreUnavailableError, 60.0),
        (502, {}, StoreUnavailableError, None),
        (504, {"Retry-After": "soon"}, StoreUnavailableError, None),
        (403, {}, ForbiddenError, None),
        (500, {}, StoreError, None),
        (422, {}, ConfigurationError, None),
        (400, {}, ConfigurationError, None),
    ],
)
async def test_status_codes_map_to_our_errors(scripted, status, headers, error, retry_after):
    """Each answer status becomes the documented error; the body (which may echo input) never
    shows in the message, and Retry-After (seconds or HTTP date) becomes retry_after."""
    echo = "ECHOED-" + uuid.uuid4().hex
    if headers.get("Retry-After") == IN_A_MINUTE:
        soon = datetime.now(timezone.utc) + timedelta(seconds=60)
        headers = {"Retry-After": format_datetime(soon, usegmt=True)}
    scripted.routes["GET", "/api/v1/secrets"] = (
        status, headers, {"detail": ["ValueError", echo]},
    )  # fmt: skip
    async with ZenMLStore(scripted.url, username="u", password="p") as store:
        with pytest.raises((StoreError, ConfigurationError)) as caught:
            await store.secrets_exist(["x"])
    assert type(caught.value) is error
    assert (echo in str(caught.value)) is False
    assert "GET /api/v1/secrets" in str(caught.value)
    assert str(status) in str(caught.value)
    if retry_after is None:
        assert getattr(caught.value, "retry_after", None) is None
    else:
        assert caught.value.retry_after == pytest.approx(retry_after, abs=2)


@pytest.mark.anyio
async def test_a_second_401_is_forbidden_after_one_new_login(scripted):
    """If the fresh token is refused too, the store gives up with ForbiddenError: two logins."""
    scripted.routes["GET", "/api/v1/secrets"] = (401, {}, {"detail": ["CredentialsNotValid"]})
    async with ZenMLStore(scripted.url, username="u", password="p") as store:
        with pytest.raises(ForbiddenError, match="CredentialsNotValid"):
            await store.list_secrets()
    assert scripted.seen.count(("POST", "/api/v1/login")) == 2
    assert store.http_calls == 4


@pytest.mark.anyio
async def test_an_answer_that_is_not_json_is_a_store_error(scripted):
    """HTML from a proxy instead of JSON is a StoreError, not a crash."""
    scripted.routes["GET", "/api/v1/secrets"] = (200, {}, b"<html>proxy</html>")
    async with ZenMLStore(scripted.url, username="u", password="p") as store:
        with pytest.raises(StoreError, match="not JSON"):
            await store.list_secrets()


# ---------------------------------------------------------------------- configuration


FROM_ENV = ("env-user", "env-pass", None)
ENV = {
    "ZENML_STORE_URL": "https://zen.example.com:8443",
    "ZENML_STORE_USERNAME": "env-user",
    "ZENML_STORE_PASSWORD": "env-pass",
}
# ZenML's credential variables without ZENML_STORE_URL: they name no server, so serve any.
NO_URL = {key: value for key, value in ENV.items() if key != "ZENML_STORE_URL"}


@pytest.mark.parametrize(
    ("url", "environ", "description", "credentials"),
    [
        ("zenml+http://127.0.0.1:8080", NO_URL, "zenml+http://127.0.0.1:8080", FROM_ENV),
        ("zenml+https://zen.example.com:8443/", ENV, "zenml+https://zen.example.com:8443",
         FROM_ENV),
        ("zenml+https://h/prefix", NO_URL, "zenml+https://h/prefix", FROM_ENV),
        ("zenml+https://u%40x:p%3Aw@h", {}, "zenml+https://h", ("u@x", "p:w", None)),
        ("zenml+https://h?username=u&password=p", {}, "zenml+https://h", ("u", "p", None)),
        ("zenml+https://me@h", NO_URL, "zenml+https://h", ("me", "env-pass", None)),
        ("zenml+https://h?api_key=ZENKEY_abc", ENV, "zenml+https://h", (None, None, "ZENKEY_abc")),
        ("zenml+https://h", {"ZENML_STORE_API_KEY": "ZENKEY_env"}, "zenml+https://h",
         (None, None, "ZENKEY_env")),
        ("zenml+https://", ENV, "zenml+https://zen.example.com:8443", FROM_ENV),
        ("zenml://", ENV, "zenml+https://zen.example.com:8443", FROM_ENV),
        ("zenml+http://[::1]:9000", NO_URL, "zenml+http://[::1]:9000", FROM_ENV),
    ],
)  # fmt: skip
def test_from_url_forms(url, environ, description, credentials):
    """Each URL form picks the server and credentials documented in docs/zenml.md."""
    store = ZenMLStore.from_url(url, environ=environ)
    assert store.description == description
    login = store._session.credentials
    assert (login.username, login.password, login.api_key) == credentials
    assert repr(store) == f"<ZenMLStore {description}>"


@pytest.mark.parametrize(
    ("url", "environ", "says"),
    [
        ("zenml+https://h", {}, "ZENML_STORE_API_KEY"),
        ("zenml+https://h", {"ZENML_STORE_USERNAME": "u"}, "ZENML_STORE_PASSWORD"),
        ("zenml+https://me@h", {}, "ZENML_STORE_PASSWORD"),
        ("zenml+https://", {"ZENML_STORE_URL": "sqlite:///x.db"}, "ZENML_STORE_URL"),
        ("zenml://host", ENV, "zenml+https://host"),
        ("zenml+https://h?pasword=typo", ENV, "pasword"),
        ("zenml+ftp://h", ENV, "zenml+https://host"),
        ("zenml+https://h:notaport", ENV, "port"),
    ],
)
def test_from_url_errors_say_what_to_set(url, environ, says):
    """A bad URL or missing credentials raise ConfigurationError naming the fix."""
    with pytest.raises(ConfigurationError, match=re.escape(says)):
        ZenMLStore.from_url(url, environ=environ)


def test_from_url_messages_never_show_credentials():
    """Even a refused URL's message drops the password, userinfo and query."""
    with pytest.raises(ConfigurationError) as caught:
        ZenMLStore.from_url("zenml://user:s3cr3t-pw@host?api_key=ZENKEY_s3cr3t", environ={})
    assert ("s3cr3t" in str(caught.value)) is False


@pytest.mark.parametrize("url", ["zenml+https://h", "zenml+http://h:8080", "zenml://"])
def test_open_store_routes_zenml_urls(url):
    """stacksecrets.stores.open_store builds a ZenMLStore for each ZenML URL form."""
    from stacksecrets.stores import open_store

    store = open_store(url, environ=ENV if url == "zenml://" else NO_URL)
    assert isinstance(store, ZenMLStore)
    anyio.run(store.aclose)
