"""A chain of stores: each secret from the first store that has it, the report saying which,
writes to the first, and errors that never fall through to a later store as if absent.

Against real stores (files, the environment, a real OpenBao server with a list-only token, a
closed port); the call counts of the existence pass use the counting wrapper of the engine's
unit tests. The contract itself: tests/test_store_conformance.py (ids chain, chain-read-only).
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from cli_runner import Cli
from counting_store import CountingStore
from openbao_fixtures import OpenBao
from stacksecrets import (
    AsyncClient,
    Client,
    Component,
    ConfigurationError,
    ForbiddenError,
    SecretNotFoundError,
    Stack,
    StoreUnavailableError,
    ValidationLevel,
)
from stacksecrets.stores import ChainStore, EnvStore, FileStore, VaultStore, open_store


def _stack(refs: dict[str, str]) -> Stack:
    return Stack("prod", [Component("experiment_tracker", "mlflow", "tracker", refs)])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Recording(CountingStore):
    """Also keeps the names of each existence call."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.asked: list[list[str]] = []

    async def secrets_exist(self, names: Sequence[str]) -> frozenset[str]:
        self.asked.append(list(names))
        return await super().secrets_exist(names)


@pytest.mark.anyio
async def test_each_secret_comes_whole_from_the_first_store_and_the_report_says_which(
    tmp_path: Path,
) -> None:
    """'db' is in the file and the environment: the file answers, with its keys only (a key
    only the environment has is missing, never merged); 'api' only in the environment is
    answered there. The report's sources, text and JSON say which store answered each."""
    first = tmp_path / "first.json"
    async with FileStore(first, keys=[]) as store:
        await store.create_secret("db", {"password": "pw-file"})
    environ = {
        "STACKSECRETS_SECRET_db__password": "pw-env",
        "STACKSECRETS_SECRET_db__user": "env-user",
        "STACKSECRETS_SECRET_api__token": "tk-env",
    }
    chain = ChainStore([FileStore(first, keys=[]), EnvStore(environ=environ)])
    async with chain, AsyncClient(chain) as client:
        assert (await client.get_secret("db")).secret_values == {"password": "pw-file"}
        stack = _stack({"a": "{{db.password}}", "b": "{{api.token}}", "c": "{{db.user}}"})
        report = await client.validate_stack(stack, level="SECRET_AND_KEY_EXISTS")
        assert [(p.kind.value, p.secret, p.key) for p in report.problems] == [
            ("missing_key", "db", "user")
        ]
        file_url = f"file://{first}"
        assert dict(report.sources) == {"api": "env://", "db": file_url}
        text = report.to_text()
        assert f"answered by {file_url}: 'db'" in text
        assert "answered by env://: 'api'" in text
        assert json.loads(report.to_json())["sources"] == {"api": "env://", "db": file_url}
        assert "pw-" not in text + report.to_json()
        exists = await client.validate_stack(stack, level="SECRET_EXISTS")
        assert exists.ok
        assert dict(exists.sources) == {"api": "env://", "db": file_url}


@pytest.mark.anyio
async def test_existence_asks_each_store_once_for_the_names_not_found_yet() -> None:
    """SECRET_EXISTS over 60 names: the first store is asked for all of them in one call, the
    second only for the 30 the first lacks, the third only for the 10 left; no read."""
    names = [f"s{i:02d}" for i in range(60)]
    stores = [
        Recording({n: {"k": "v"} for n in names[:30]}),
        Recording({n: {"k": "v"} for n in names[30:50]}),
        Recording({"unrelated": {"k": "v"}}),
    ]
    chain = ChainStore(stores)
    async with chain, AsyncClient(chain) as client:
        refs = {f"r{i}": f"{{{{{name}.k}}}}" for i, name in enumerate(names)}
        report = await client.validate_stack(_stack(refs), level=ValidationLevel.SECRET_EXISTS)
    assert {p.secret for p in report.problems} == set(names[50:])
    assert [sorted(call) for call in stores[0].asked] == [sorted(names)]
    assert [sorted(call) for call in stores[1].asked] == [sorted(names[30:])]
    assert [sorted(call) for call in stores[2].asked] == [sorted(names[50:])]
    assert all(store.calls["get_secret"] == 0 for store in stores)
    assert report.stats.store_calls == 1  # one existence call of the chain


@pytest.mark.anyio
async def test_a_forbidden_read_never_falls_through_to_a_later_store(
    openbao: OpenBao, tmp_path: Path
) -> None:
    """OpenBao with a list-only token, then a file holding the same names. A secret OpenBao
    holds is reported forbidden at the key level (the file's copy is not used); a secret
    OpenBao does not hold (it says so by listing) is answered by the file."""
    prefix = f"chain{uuid.uuid4().hex[:6]}-"
    shadowed, behind = prefix + "db", prefix + "only-in-file"
    openbao.write(shadowed, {"password": "pw-vault"})
    path = tmp_path / "s.json"
    async with FileStore(path, keys=[]) as file:
        await file.create_secret(shadowed, {"password": "pw-file"})
        await file.create_secret(behind, {"password": "pw-file-2"})
    vault = VaultStore(openbao.address, token=openbao.token("list-only"))
    chain = ChainStore([vault, FileStore(path, keys=[])])
    stack = _stack({"a": f"{{{{{shadowed}.password}}}}", "b": f"{{{{{behind}.password}}}}"})
    async with chain, AsyncClient(chain) as client:
        with pytest.raises(ForbiddenError):
            await client.get_secret(shadowed)
        assert (await client.get_secret(behind)).secret_values == {"password": "pw-file-2"}
        report = await client.validate_stack(stack, level="SECRET_AND_KEY_EXISTS")
        assert [(p.kind.value, p.secret) for p in report.problems] == [("forbidden", shadowed)]
        assert dict(report.sources) == {behind: f"file://{path}"}
        exists = await client.validate_stack(stack, level="SECRET_EXISTS")
        assert exists.ok, exists.to_text()
        assert exists.sources[shadowed] == vault.description


def test_an_unreachable_first_store_is_an_error_not_a_fall_through(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first store is down, the second holds the secret: reads fail as unavailable and
    the CLI exits 3, instead of answering from the second store."""
    path = tmp_path / "s.json"
    cli.invoke("secret", "create", "db", "--password=pw-x", store=path)
    down = f"vault+http://127.0.0.1:{_closed_port()}/secret"
    env = {"VAULT_TOKEN": "not-a-real-token"}
    stack = tmp_path / "stack.yaml"
    stack.write_text(
        "stacks:\n  - name: s\n    components:\n      - type: t\n        flavor: f\n"
        "        name: n\n        configuration:\n          p: '{{db.password}}'\n"
    )
    result = cli.invoke(
        "validate", str(stack), "--store", down, "--store", path.as_uri(), "--deadline", "20",
        env=env,
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    got = cli.invoke("secret", "get", "db", "--store", down, "--store", path.as_uri(), env=env)
    assert got.returncode == 3, got.stderr
    monkeypatch.setenv("VAULT_TOKEN", "not-a-real-token")  # the API reads the process's
    with (
        Client([down, path.as_uri()], retry_attempts=1) as client,
        pytest.raises(StoreUnavailableError),
    ):
        client.get_secret("db")


@pytest.mark.anyio
async def test_writes_go_to_the_first_store_only(tmp_path: Path) -> None:
    """create lands in the first store; update and delete of a name only a later store holds
    are not found in the first (nothing copied, nothing changed behind); list is the union.
    A chain led by a read-only store refuses writes as read-only."""
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    async with FileStore(b, keys=[]) as store:
        await store.create_secret("behind", {"k": "v"})
    async with ChainStore([FileStore(a, keys=[]), FileStore(b, keys=[])]) as chain:
        assert chain.capabilities.writable
        await chain.create_secret("new", {"k": "v"})
        with pytest.raises(SecretNotFoundError) as caught:
            await chain.update_secret("behind", {"k": "w"})
        assert f"file://{a}" in str(caught.value)
        with pytest.raises(SecretNotFoundError):
            await chain.delete_secret("behind")
        assert await chain.list_secrets() == ["behind", "new"]
    async with FileStore(a, keys=[]) as first, FileStore(b, keys=[]) as second:
        assert await first.list_secrets() == ["new"]
        assert (await second.get_secret("behind")).secret_values == {"k": "v"}
    async with ChainStore([EnvStore(environ={}), FileStore(a, keys=[])]) as led_by_env:
        assert not led_by_env.capabilities.writable
        with pytest.raises(ForbiddenError, match="read-only"):
            await led_by_env.create_secret("x", {"k": "v"})


def test_cli_repeats_store_for_a_chain(cli: Cli, tmp_path: Path) -> None:
    """A real process: ``--store A --store B``: validate says which store answered (text and
    JSON), ``secret create`` writes to A, ``secret list`` lists both."""
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert cli.invoke("secret", "create", "in-b", "--k=pw-b", store=b).returncode == 0
    chain = ["--store", a.as_uri(), "--store", b.as_uri()]
    created = cli.invoke("secret", "create", "in-a", "--k=pw-a", *chain)
    assert created.returncode == 0, created.stderr
    listed = cli.invoke("secret", "list", "--json", *chain)
    assert json.loads(listed.stdout) == ["in-a", "in-b"]
    assert json.loads(cli.invoke("secret", "list", "--json", store=a).stdout) == ["in-a"]
    stack = tmp_path / "stack.yaml"
    stack.write_text(
        "stacks:\n  - name: s\n    components:\n      - type: t\n        flavor: f\n"
        "        name: n\n        configuration:\n          x: '{{in-a.k}}'\n"
        "          y: '{{in-b.k}}'\n"
    )
    text = cli.invoke("validate", str(stack), *chain)
    assert text.returncode == 0, text.stdout + text.stderr
    assert f"answered by {a.as_uri()}: 'in-a'" in text.stdout
    assert f"answered by {b.as_uri()}: 'in-b'" in text.stdout
    data = json.loads(cli.invoke("validate", str(stack), "--json", *chain).stdout)
    assert data["sources"] == {"in-a": a.as_uri(), "in-b": b.as_uri()}
    got = cli.invoke("secret", "get", "in-b", *chain)
    assert got.stdout.splitlines()[0] == f"Secret 'in-b' (from {b.as_uri()}):"
    got = cli.invoke("secret", "get", "in-b", "--json", *chain)
    assert json.loads(got.stdout)["store"] == b.as_uri()


def test_store_variable_is_one_url_even_with_blanks(cli: Cli, tmp_path: Path) -> None:
    """``STACKSECRETS_STORE`` is one URL, never split on blanks (a folder may have one)."""
    folder = tmp_path / "my secrets"
    result = cli.invoke("secret", "create", "x", "--k=v", store=f"file://{folder}/s.json")
    assert result.exit_code == 0, result.output
    assert (folder / "s.json").exists()


def test_a_chain_needs_stores() -> None:
    """No stores, something that is not a store, or an empty URL: ConfigurationError."""
    with pytest.raises(ConfigurationError):
        ChainStore([])
    with pytest.raises(ConfigurationError):
        ChainStore(["memory://"])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError):
        open_store(["memory://", " "])
    chain = open_store(["memory://", "env://?prefix=X_"], environ={})
    assert isinstance(chain, ChainStore)
    assert chain.description == "chain(memory://, env://?prefix=X_)"
    anyio.run(chain.aclose)
