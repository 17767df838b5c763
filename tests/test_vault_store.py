"""The Vault store against a real OpenBao server (``bao server -dev``), with real policies."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path

import attrs
import httpx
import pytest

from backends import asyncio_only_against_servers
from cli_runner import HIDDEN_PREFIXES, Cli, Ran
from fault_proxy import Fault, ProxyThread
from openbao_fixtures import OpenBao
from recording_transport import RecordingTransport
from stacksecrets import (
    AsyncClient,
    AuthenticationError,
    Client,
    ClosedError,
    Component,
    ConfigurationError,
    ForbiddenError,
    SecretExistsError,
    SecretNotFoundError,
    Stack,
    StoreError,
    StoreUnavailableError,
)
from stacksecrets.stores import open_store
from stacksecrets.stores._vault import VaultStore, VaultTLSWarning

#: The trio runs kept (the backend matters: concurrency, cancellation, timeouts, retries); the
#: other tests against the real server run on asyncio only (tests/backends.py).
trio_not_needed = asyncio_only_against_servers(
    keep={
        "test_sealed_server_is_transient_then_unavailable",
        "test_standby_429_through_the_fault_proxy_is_retried",
        "test_unreachable_server_is_transient",
        "test_update_retries_when_another_writer_came_first",
    }
)


# ---------------------------------------------------------------------- shared server data


@attrs.frozen
class Seeded:
    """Secrets written once per session, and tokens for each policy."""

    prefix: str
    list_token: str = attrs.field(repr=False)
    read_token: str = attrs.field(repr=False)
    revoked_token: str = attrs.field(repr=False)

    def name(self, short: str) -> str:
        return self.prefix + short


SEED = {
    "db": {"user": "app", "password": "pw-db-1"},
    "mlflow": {"username": "ml", "password": "pw-ml-2"},
    "team/api": {"key": "k-3"},
    "team/deep/nested": {"token": "t-4"},
    "odd?name#with%chars": {"k": "v-5"},
    "gone": {"k": "v-6"},
}


@pytest.fixture(scope="session")
def seeded(openbao: OpenBao) -> Seeded:
    prefix = f"t{uuid.uuid4().hex[:8]}/"
    openbao.write_many({prefix + name: values for name, values in SEED.items()})
    openbao.soft_delete(prefix + "gone")
    revoked = openbao.token("read")
    openbao.revoke(revoked)
    return Seeded(
        prefix=prefix,
        list_token=openbao.token("list-only"),
        read_token=openbao.token("read"),
        revoked_token=revoked,
    )


#: The recording transport each store of ``_store`` sends through (the public seam).
_TRANSPORTS: weakref.WeakKeyDictionary[VaultStore, RecordingTransport] = weakref.WeakKeyDictionary()


def _store(openbao: OpenBao, token: str, **options: object) -> VaultStore:
    transport = RecordingTransport()
    store = VaultStore(openbao.address, token=token, transport=transport, **options)  # type: ignore[arg-type]
    _TRANSPORTS[store] = transport
    return store


def _record(store: VaultStore) -> list[httpx.Request]:
    """Every request the store sends from now on."""
    return _TRANSPORTS[store].watch()


def _stack(refs: dict[str, str]) -> Stack:
    return Stack("prod", [Component("experiment_tracker", "mlflow", "tracker", refs)])


# ---------------------------------------------------------------------- existence


@pytest.mark.anyio
async def test_list_only_token_answers_existence_with_one_list_per_folder(
    openbao: OpenBao, seeded: Seeded
):
    """With a token that may only list, existence is answered for names in three folders
    (slashes included) with one LIST per folder, all at once, and no data read."""
    names = [seeded.name(n) for n in ("db", "mlflow", "team/api", "team/deep/nested")]
    missing = [seeded.name(n) for n in ("nope", "team/nope", "other/x")]
    async with _store(openbao, seeded.list_token) as store:
        sent = _record(store)
        found = await store.secrets_exist(names + missing)
    assert found == frozenset(names)
    assert {r.method for r in sent} == {"LIST"}
    assert all("/metadata/" in r.url.path for r in sent)
    folders = {r.url.path for r in sent}
    assert len(sent) == len(folders) == 4  # prefix/, prefix/team/, prefix/team/deep/, other/


@pytest.mark.anyio
async def test_a_folder_the_policy_hides_is_forbidden_not_missing(openbao: OpenBao, seeded: Seeded):
    """A token that may list the prefix folder but not its ``team/`` subfolder: existence of
    names in both is one ForbiddenError naming the hidden folder (not an exception group, not
    "missing", not an authentication error)."""
    openbao.policy(
        "top-only", f'path "secret/metadata/{seeded.prefix}" {{ capabilities = ["list"] }}'
    )
    async with _store(openbao, openbao.token("top-only")) as store:
        assert await store.secrets_exist([seeded.name("db")]) == {seeded.name("db")}
        with pytest.raises(ForbiddenError) as caught:
            await store.secrets_exist([seeded.name("db"), seeded.name("team/api")])
    assert not isinstance(caught.value, AuthenticationError)
    assert repr(seeded.name("team/")) in str(caught.value)


@pytest.mark.anyio
async def test_a_soft_deleted_secret_lists_but_reads_as_absent(openbao: OpenBao, seeded: Seeded):
    """A secret whose latest version is deleted still has metadata, so LIST shows it; a read
    finds it absent (documented in docs/vault.md)."""
    async with _store(openbao, seeded.read_token) as store:
        assert await store.secrets_exist([seeded.name("gone")]) == {seeded.name("gone")}
        with pytest.raises(SecretNotFoundError):
            await store.get_secret(seeded.name("gone"))


@pytest.fixture(scope="session")
def big_folder(openbao: OpenBao) -> tuple[str, list[str]]:
    """A folder with 1,000 secrets."""
    folder = f"big{uuid.uuid4().hex[:6]}"
    names = [f"{folder}/s{i:04d}" for i in range(1000)]
    openbao.write_many({name: {"k": "v"} for name in names})
    return folder, names


@pytest.mark.anyio
async def test_a_thousand_secrets_in_one_folder_are_listed_in_pages(
    openbao: OpenBao, big_folder: tuple[str, list[str]]
):
    """1,000 secrets in one folder: the existence of all of them (and one missing) costs one
    LIST per page of ``list_page_size`` names, whatever the number of names asked."""
    folder, names = big_folder
    for page_size, calls in ((1000, 2), (300, 4), (5000, 1)):
        async with _store(openbao, openbao.root_token, list_page_size=page_size) as store:
            sent = _record(store)
            found = await store.secrets_exist([*names, f"{folder}/zzz-missing"])
        assert found == frozenset(names)
        assert len(sent) == calls, page_size
        assert all(r.method == "LIST" for r in sent)
    async with _store(openbao, openbao.root_token, list_page_size=300) as store:
        listed = await store.list_secrets()
    assert [n for n in listed if n.startswith(folder + "/")] == names


# ---------------------------------------------------------------------- reading and policies


@pytest.mark.anyio
async def test_list_only_token_reading_is_forbidden_naming_the_secret(
    openbao: OpenBao, seeded: Seeded
):
    """A read with a list-only token is ForbiddenError (not an authentication error, not
    missing), and the message names the secret but holds no body."""
    async with _store(openbao, seeded.list_token) as store:
        with pytest.raises(ForbiddenError) as caught:
            await store.get_secret(seeded.name("db"))
    assert not isinstance(caught.value, AuthenticationError)
    assert repr(seeded.name("db")) in str(caught.value)
    assert "permission denied" not in str(caught.value)


@pytest.mark.anyio
async def test_read_token_reads_values_and_odd_names(openbao: OpenBao, seeded: Seeded):
    """A read token gets every key and value, for nested names and for names with ``?``,
    ``#`` and ``%`` (encoded, so they cannot change the endpoint)."""
    async with _store(openbao, seeded.read_token) as store:
        for short in ("db", "team/deep/nested", "odd?name#with%chars"):
            secret = await store.get_secret(seeded.name(short))
            assert secret.secret_values == SEED[short]
        with pytest.raises(SecretNotFoundError):
            await store.get_secret(seeded.name("team"))  # a folder, not a secret
        for bad in ("", "a//b", "../sys/policies", "a/./b", "x\n"):
            with pytest.raises(SecretNotFoundError):
                await store.get_secret(bad)


@pytest.mark.anyio
async def test_revoked_token_is_an_authentication_error(openbao: OpenBao, seeded: Seeded):
    """With a revoked token every call is AuthenticationError, decided by one token look-up
    however many calls fail, at once or later."""
    async with _store(openbao, seeded.revoked_token) as store:
        sent = _record(store)
        with pytest.raises(AuthenticationError, match="revoked, expired or unknown"):
            await store.secrets_exist([seeded.name("db")])
        with pytest.raises(AuthenticationError):
            await store.get_secret(seeded.name("db"))
    assert [r.url.path for r in sent].count("/v1/auth/token/lookup-self") == 1


@pytest.mark.anyio
async def test_validation_levels_with_each_token(openbao: OpenBao, seeded: Seeded):
    """Through the client: list-only passes SECRET_EXISTS and reports forbidden (never
    missing) at the key level; a read token passes both; missing names are reported."""
    refs = {
        "a": f"{{{{{seeded.name('db')}.password}}}}",
        "b": f"{{{{{seeded.name('team/api')}.key}}}}",
    }
    stack = _stack(refs)
    broken = _stack({**refs, "c": f"{{{{{seeded.name('team/nope')}.k}}}}"})
    for token in (seeded.list_token, seeded.read_token):
        async with _store(openbao, token) as store, AsyncClient(store) as client:
            report = await client.validate_stack(stack, level="SECRET_EXISTS")
            assert report.ok, report.to_text()
            report = await client.validate_stack(broken, level="SECRET_EXISTS")
            assert [(p.kind.value, p.secret) for p in report.problems] == [
                ("missing_secret", seeded.name("team/nope"))
            ]
            report = await client.validate_stack(stack, level="SECRET_AND_KEY_EXISTS")
            if token == seeded.list_token:
                kinds = {p.kind.value for p in report.problems}
                assert kinds == {"forbidden"}, report.to_text()
                assert {p.secret for p in report.problems} == {
                    seeded.name("db"),
                    seeded.name("team/api"),
                }
            else:
                assert report.ok, report.to_text()


# ---------------------------------------------------------------------- writes


@pytest.mark.anyio
async def test_writes_use_check_and_set(openbao: OpenBao):
    """create refuses a taken name; update merges and removes keys as a new version; create
    over a soft-deleted secret works; delete removes it and then reports it missing."""
    name = f"w{uuid.uuid4().hex[:6]}/svc"
    async with _store(openbao, openbao.root_token) as store:
        await store.create_secret(name, {"a": "1", "b": "2"})
        with pytest.raises(SecretExistsError):
            await store.create_secret(name, {"a": "x"})
        await store.update_secret(name, {"a": "3", "c": "4"}, remove_keys=["b"])
        assert (await store.get_secret(name)).secret_values == {"a": "3", "c": "4"}
        meta = openbao.rest().get(f"/secret/metadata/{name}").json()["data"]
        assert meta["current_version"] == 2
        openbao.soft_delete(name)
        with pytest.raises(SecretNotFoundError):
            await store.update_secret(name, {"a": "5"})
        await store.create_secret(name, {"fresh": "6"})
        assert (await store.get_secret(name)).secret_values == {"fresh": "6"}
        await store.delete_secret(name)
        with pytest.raises(SecretNotFoundError):
            await store.delete_secret(name)
        assert name not in await store.list_secrets()
        with pytest.raises(ConfigurationError, match="not a valid Vault secret name"):
            await store.create_secret("a/../b", {"k": "v"})


@pytest.mark.anyio
async def test_update_retries_when_another_writer_came_first(openbao: OpenBao):
    """An update whose check-and-set loses to another writer reads again and keeps both
    changes."""
    name = f"race{uuid.uuid4().hex[:6]}"
    async with _store(openbao, openbao.root_token) as store:
        await store.create_secret(name, {"a": "1"})
        real_read = store._read
        raced = False

        async def read_then_race(secret: str) -> tuple[dict[str, str] | None, int]:
            nonlocal raced
            answer = await real_read(secret)
            if not raced:
                raced = True
                openbao.write(name, {"a": "1", "other": "writer"})
            return answer

        store._read = read_then_race  # type: ignore[method-assign]
        await store.update_secret(name, {"mine": "2"})
        store._read = real_read  # type: ignore[method-assign]
        assert (await store.get_secret(name)).secret_values == {
            "a": "1",
            "other": "writer",
            "mine": "2",
        }
        await store.delete_secret(name)


def test_sync_client_gets_secret_values(openbao: OpenBao, seeded: Seeded, monkeypatch):
    """``Client(store="vault+http://...").get_secret(name).secret_values``, token from
    VAULT_TOKEN."""
    monkeypatch.setenv("VAULT_TOKEN", seeded.read_token)
    with Client(store=openbao.store_url) as client:
        assert client.get_secret(seeded.name("db")).secret_values == SEED["db"]


# ---------------------------------------------------------------------- the CLI


def _cli(*args: str, env: dict[str, str], stdin: str | None = None) -> Ran:
    """The command in this process, with no VAULT_* variable of the test process either."""
    return Cli(hidden=(*HIDDEN_PREFIXES, "VAULT_")).invoke(*args, env=env, stdin=stdin)


@pytest.fixture
def stack_file(tmp_path: Path, seeded: Seeded) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(
        "name: prod\ncomponents:\n  - type: orchestrator\n    name: o\n    configuration:\n"
        f'      a: "{{{{{seeded.name("db")}.password}}}}"\n'
        f'      b: "{{{{{seeded.name("team/deep/nested")}.token}}}}"\n'
    )
    return path


def test_cli_validate_with_each_token(openbao: OpenBao, seeded: Seeded, stack_file: Path):
    """The real CLI: list-only passes SECRET_EXISTS (exit 0) and reports forbidden at the key
    level (exit 1, never "missing"); a read token passes (0); a revoked token exits 2."""
    store = {"STACKSECRETS_STORE": openbao.store_url}

    def validate(token: str, level: str):
        return _cli(
            "validate", str(stack_file), "--level", level, env={**store, "VAULT_TOKEN": token}
        )

    listed = validate(seeded.list_token, "SECRET_EXISTS")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    keyed = validate(seeded.list_token, "SECRET_AND_KEY_EXISTS")
    assert keyed.returncode == 1, keyed.stdout + keyed.stderr
    assert "forbidden" in keyed.stdout
    assert "missing" not in keyed.stdout
    read = validate(seeded.read_token, "SECRET_AND_KEY_EXISTS")
    assert read.returncode == 0, read.stdout + read.stderr
    revoked = validate(seeded.revoked_token, "SECRET_EXISTS")
    assert revoked.returncode == 2, revoked.stdout + revoked.stderr
    assert "refuses the token" in revoked.stderr
    for result in (listed, keyed, read, revoked):
        out = result.stdout + result.stderr
        assert seeded.list_token not in out
        assert seeded.revoked_token not in out
        assert "pw-db-1" not in out


def test_cli_secret_commands_round_trip(openbao: OpenBao):
    """secret create / get / list / update / delete against the real server."""
    name = f"cli{uuid.uuid4().hex[:6]}/db"
    env = {"STACKSECRETS_STORE": openbao.store_url, "VAULT_TOKEN": openbao.root_token}
    created = _cli("secret", "create", name, "--user=app", "--password=cli-pw-1", env=env)
    assert created.returncode == 0, created.stderr
    again = _cli("secret", "create", name, "--user=x", env=env)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    shown = _cli("secret", "get", name, env=env)
    assert "password: **********" in shown.stdout
    assert "cli-pw-1" not in shown.stdout
    listed = _cli("secret", "list", "--json", env=env)
    assert name in json.loads(listed.stdout)
    updated = _cli("secret", "update", name, "--password=cli-pw-2", "--remove-key", "user", env=env)
    assert updated.returncode == 0, updated.stderr
    revealed = _cli("secret", "get", name, "--show-values", "--json", env=env)
    assert json.loads(revealed.stdout)["values"] == {"password": "cli-pw-2"}
    deleted = _cli("secret", "delete", name, "--yes", env=env)
    assert deleted.returncode == 0, deleted.stderr
    gone = _cli("secret", "get", name, env=env)
    assert gone.returncode == 1
    assert "does not exist" in gone.stderr


# ---------------------------------------------------------------------- failures


@pytest.mark.anyio
async def test_sealed_server_is_transient_then_unavailable(fresh_openbao: OpenBao):
    """A sealed server answers 503: StoreUnavailableError from the store, retried by the
    client and then reported as a store error; after unsealing, everything works again."""
    fresh_openbao.write("db", {"k": "v"})
    fresh_openbao.seal()
    async with _store(fresh_openbao, fresh_openbao.root_token) as store:
        with pytest.raises(StoreUnavailableError, match=r"503 \(sealed"):
            await store.secrets_exist(["db"])
    async with (
        _store(fresh_openbao, fresh_openbao.root_token) as store,
        AsyncClient(
            store, retry_attempts=3, retry_wait_initial=0.01, retry_wait_max=0.02
        ) as client,
    ):
        report = await client.validate_stack(_stack({"a": "{{db.k}}"}))
        assert [p.kind.value for p in report.problems] == ["store_error"]
        assert report.stats.store_calls == 3
        fresh_openbao.unseal()
        client.invalidate("db")
        assert (await client.validate_stack(_stack({"a": "{{db.k}}"}))).ok


@pytest.mark.anyio
async def test_standby_429_through_the_fault_proxy_is_retried(openbao: OpenBao, seeded: Seeded):
    """A 429 (as a standby node or a rate-limit quota answers; injected by the fault proxy,
    since a dev server has no standby) is transient with its Retry-After hint, and the client
    retries through it."""
    port = int(openbao.address.rsplit(":", 1)[1])
    with ProxyThread("127.0.0.1", port) as proxy:
        proxy.retry_after = "0"
        address = f"http://127.0.0.1:{proxy.port}"
        proxy.inject(Fault.HTTP_429)
        async with VaultStore(address, token=seeded.read_token) as store:
            with pytest.raises(StoreUnavailableError, match="429") as caught:
                await store.get_secret(seeded.name("db"))
            assert caught.value.retry_after == 0
        proxy.inject(Fault.HTTP_429, count=2)
        proxy.inject(Fault.RESET)
        async with (
            VaultStore(address, token=seeded.read_token) as store,
            AsyncClient(store, retry_wait_initial=0.01) as client,
        ):
            assert (await client.get_secret(seeded.name("db"))).secret_values == SEED["db"]
            report = await client.validate_stack(
                _stack({"a": f"{{{{{seeded.name('mlflow')}.password}}}}"})
            )
            assert report.ok
        assert proxy.faults_applied[Fault.HTTP_429] == 3


@pytest.mark.anyio
async def test_a_wrong_mount_is_an_error_not_missing_secrets(openbao: OpenBao, seeded: Seeded):
    """A mount where nothing is mounted is a StoreError saying so, for existence, reads and
    writes; never "every secret is missing", never a write that seems to succeed."""
    async with _store(openbao, openbao.root_token, mount="no-such-mount") as store:
        for call in (
            lambda: store.secrets_exist(["db"]),
            lambda: store.get_secret("db"),
            lambda: store.create_secret("db", {"k": "v"}),
        ):
            with pytest.raises(StoreError, match="nothing is mounted at 'no-such-mount'"):
                await call()


@pytest.mark.anyio
async def test_unreachable_server_is_transient():
    """Nothing listening: StoreUnavailableError naming the host, not the token."""
    with socket_closed() as port:
        async with VaultStore(f"http://127.0.0.1:{port}", token="tok-not-shown") as store:
            with pytest.raises(StoreUnavailableError) as caught:
                await store.secrets_exist(["x"])
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "tok-not-shown" not in str(caught.value)


@contextlib.contextmanager
def socket_closed() -> Iterator[int]:
    """A loopback port that was just closed: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    yield port


# ---------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("url", "env", "description"),
    [
        ("vault+http://127.0.0.1:8200/secret", {"VAULT_TOKEN": "t"}, "vault+http://127.0.0.1:8200/secret"),
        ("vault+https://bao.example.com/team/kv", {"VAULT_TOKEN": "t"}, "vault+https://bao.example.com/team/kv"),
        ("vault+http://127.0.0.1:8200", {"VAULT_TOKEN": "t"}, "vault+http://127.0.0.1:8200/secret"),
        ("vault:///kv", {"VAULT_TOKEN": "t", "VAULT_ADDR": "https://v.example.com:8200"}, "vault+https://v.example.com:8200/kv"),
        ("vault://", {"VAULT_ADDR": "http://127.0.0.1:1"}, "vault+http://127.0.0.1:1/secret"),
        ("vault+http://h:1/s?token=abc&namespace=team", {}, "vault+http://h:1/s (namespace team)"),
    ],
)  # fmt: skip
def test_url_forms(url: str, env: dict[str, str], description: str, tmp_path: Path):
    """The URL forms and variables give the server, mount and namespace; the token (here from
    ~/.vault-token in one case) never shows in the description or repr."""
    (tmp_path / ".vault-token").write_text("from-file-token\n")
    store = open_store(url, environ={"HOME": str(tmp_path), **env})
    assert store.description == description
    assert "abc" not in repr(store)
    assert "from-file-token" not in repr(store)
    assert isinstance(store, VaultStore)
    assert store._token in {"t", "abc", "from-file-token"}


TOKEN = {"VAULT_TOKEN": "t"}


@pytest.mark.parametrize(
    ("url", "env", "message"),
    [
        ("vault://host/secret", {"VAULT_TOKEN": "t"}, "say which protocol"),
        ("vault://", {"VAULT_TOKEN": "t"}, "VAULT_ADDR"),
        ("vault+http://h:1/s", {}, "no Vault token"),
        ("vault+http://h:1/s?tokn=x", {"VAULT_TOKEN": "t"}, "unknown option(s) tokn"),
        ("vault+http://tok-secret@h:1/s", {}, "not before the host"),
        ("vault+http://h:99999/s", {"VAULT_TOKEN": "t"}, "bad port"),
        ("vault+http://h:1/a/../b", {"VAULT_TOKEN": "t"}, "bad KV mount path"),
        ("vault+http://h:1/s", {**TOKEN, "VAULT_SKIP_VERIFY": "maybe"}, "VAULT_SKIP_VERIFY"),
        ("vault+https://h:1/s", {**TOKEN, "VAULT_CACERT": "/nonexistent/ca.pem"}, "VAULT_CACERT"),
    ],
)  # fmt: skip
def test_bad_configuration_says_what_to_fix(url: str, env: dict[str, str], message: str, tmp_path):
    """Each bad URL or variable is a ConfigurationError that says what is wrong, without the
    token."""
    with pytest.raises(ConfigurationError) as caught:
        open_store(url, environ={"HOME": str(tmp_path), **env})
    assert message in str(caught.value)
    assert "tok-secret" not in str(caught.value)


def test_skip_verify_warns_and_cacert_is_used(tmp_path: Path):
    """VAULT_SKIP_VERIFY on an https server warns; VAULT_CACERT becomes an SSL context."""
    env = {"HOME": str(tmp_path), "VAULT_TOKEN": "t", "VAULT_SKIP_VERIFY": "true"}
    with pytest.warns(VaultTLSWarning, match="not checked"):
        open_store("vault+https://h:1/s", environ=env)
    ca = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    if not ca.exists():
        pytest.skip("no CA bundle on this machine")
    env = {"HOME": str(tmp_path), "VAULT_TOKEN": "t", "VAULT_CACERT": str(ca)}
    assert isinstance(open_store("vault+https://h:1/s", environ=env), VaultStore)


@pytest.mark.anyio
async def test_namespace_header_is_sent(openbao: OpenBao, seeded: Seeded):
    """VAULT_NAMESPACE travels as X-Vault-Namespace (OpenBao's dev server answers without
    namespaces configured as an unknown namespace)."""
    async with _store(openbao, seeded.read_token, namespace="team") as store:
        sent = _record(store)
        with contextlib.suppress(ForbiddenError, SecretNotFoundError, StoreUnavailableError):
            await store.secrets_exist([seeded.name("db")])
    assert sent[0].headers["X-Vault-Namespace"] == "team"


@pytest.mark.anyio
async def test_closed_store_refuses_use(openbao: OpenBao):
    store = _store(openbao, openbao.root_token)
    await store.aclose()
    await store.aclose()
    with pytest.raises(ClosedError):
        await store.secrets_exist(["x"])
