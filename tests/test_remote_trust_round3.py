"""Trust, round 3, remote stores (issue 21): credentials go only to their server, a forbidden
folder affects only its names, third-party errors and the Vault token file.

Servers are real: loopback servers that record what they are sent (``tests/hostile_server.py``)
and the session's OpenBao server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import structlog

from hostile_server import HostileServer
from openbao_fixtures import OpenBao
from stacksecrets import (
    AsyncClient,
    Component,
    ConfigurationError,
    ProblemKind,
    Stack,
    ValidationLevel,
)
from stacksecrets.stores import ChainStore, FileStore, VaultStore, ZenMLStore, open_store

KEY_FOR_A = "ZENKEY_belongs-to-server-a-5f1"
PASSWORD_FOR_A = "pw-belongs-to-a-c3d"


def _stack(*refs: str) -> Stack:
    config = {f"f{i}": "{{" + ref + "}}" for i, ref in enumerate(refs)}
    return Stack("s", [Component("experiment_tracker", "mlflow", "tracker", config)])


# ---------------------------------------------------------------------- item 4


@pytest.mark.anyio
@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param({"ZENML_STORE_API_KEY": KEY_FOR_A}, id="api-key"),
        pytest.param(
            {"ZENML_STORE_USERNAME": "alice", "ZENML_STORE_PASSWORD": PASSWORD_FOR_A},
            id="username-password",
        ),
    ],
)
async def test_zenml_credentials_go_only_to_the_server_they_came_with(
    credentials: dict[str, str],
) -> None:
    """ZENML_STORE_URL=A with A's API key (or password), and a store URL naming B: nothing is
    sent to B, and the error names A (never the credential). Pointed at A, the same variables
    log in there."""
    page = '{"items": [], "total_pages": 1}'
    with HostileServer("answer", body=page) as a, HostileServer("answer", body=page) as b:
        environ = {"ZENML_STORE_URL": a.url, **credentials}
        with pytest.raises(ConfigurationError) as caught:
            open_store(f"zenml+{b.url}", environ=environ)
        message = str(caught.value)
        assert a.url in message
        assert "ZENML_STORE_URL" in message
        assert KEY_FOR_A not in message
        assert PASSWORD_FOR_A not in message
        assert b.requests == 0
        assert b.logins == []

        async with open_store(f"zenml+{a.url}", environ=environ) as store:
            assert await store.secrets_exist(["x"]) == frozenset()
        secret = credentials.get("ZENML_STORE_API_KEY", PASSWORD_FOR_A)
        assert len(a.logins) == 1
        assert secret.encode() in a.logins[0]


@pytest.mark.anyio
async def test_zenml_credentials_of_another_server_are_not_mixed_with_the_urls_user() -> None:
    """A user name in the URL of B takes no password from A's ZENML_STORE_PASSWORD."""
    with HostileServer("answer") as b:
        environ = {"ZENML_STORE_URL": "https://a.example.com", "ZENML_STORE_PASSWORD": "pw-a-91"}
        with pytest.raises(ConfigurationError, match=r"https://a\.example\.com") as caught:
            ZenMLStore.from_url(f"zenml+http://me@127.0.0.1:{b.port}", environ=environ)
        assert "pw-a-91" not in str(caught.value)
        assert b.requests == 0


# ---------------------------------------------------------------------- item 11


@pytest.mark.anyio
@pytest.mark.parametrize(
    "level", [ValidationLevel.SECRET_EXISTS, ValidationLevel.SECRET_AND_KEY_EXISTS]
)
async def test_a_forbidden_vault_folder_affects_only_the_names_in_it(
    openbao: OpenBao, level: ValidationLevel
) -> None:
    """A token allowed only under ``team/*``: ``team/db`` is readable and reported fine,
    ``db`` (in the folder the token may not list) is forbidden; not every name."""
    prefix = f"f{uuid.uuid4().hex[:8]}/"
    openbao.write(f"{prefix}team/db", {"password": "pw-team"})
    openbao.write(f"{prefix}db", {"password": "pw-top"})
    policy = f"team-only-{prefix.strip('/')}"
    openbao.policy(
        policy,
        f'path "secret/metadata/{prefix}team/*" {{ capabilities = ["list", "read"] }}\n'
        f'path "secret/data/{prefix}team/*" {{ capabilities = ["read"] }}',
    )
    store = VaultStore(openbao.address, token=openbao.token(policy))
    async with AsyncClient(store) as client:
        report = await client.validate_stack(
            _stack(f"{prefix}team/db.password", f"{prefix}db.password"), level=level
        )
    await store.aclose()
    problems = {(p.secret, p.kind) for p in report.problems}
    assert problems == {(f"{prefix}db", ProblemKind.FORBIDDEN)}


# ---------------------------------------------------------------------- item 14


@pytest.mark.parametrize(("mode", "warned"), [(0o644, True), (0o600, False)])
def test_a_world_readable_vault_token_file_is_used_with_a_warning(
    tmp_path: Path, mode: int, warned: bool
) -> None:
    """``~/.vault-token`` readable by others is used, with a warning naming the file and the
    fix (as the store file gets one); a 0600 one gives no warning. The token never shows."""
    token_file = tmp_path / ".vault-token"
    token_file.write_text("hvs.token-from-file-8e2\n")
    token_file.chmod(mode)
    with structlog.testing.capture_logs() as events:
        store = open_store("vault+http://127.0.0.1:1/secret", environ={"HOME": str(tmp_path)})
    assert isinstance(store, VaultStore)
    assert store._token == "hvs.token-from-file-8e2"
    found = [e for e in events if e["event"] == "stacksecrets.vault.token_file_permissions"]
    assert bool(found) is warned
    if warned:
        assert found[0]["path"] == str(token_file)
        assert found[0]["mode"] == f"{mode:04o}"
        assert "chmod 600" in found[0]["hint"]
    assert "hvs.token-from-file-8e2" not in repr(events)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_vault_token_path_that_is_a_fifo_is_no_token_not_a_hang(tmp_path: Path) -> None:
    """``~/.vault-token`` as a FIFO (or a device) is not read: no token, said clearly."""
    os.mkfifo(tmp_path / ".vault-token")
    with pytest.raises(ConfigurationError, match="no Vault token"):
        open_store("vault+http://127.0.0.1:1/secret", environ={"HOME": str(tmp_path)})


# ---------------------------------------------------------------------- item 7


def _aws_validate(tmp_path: Path, endpoint: str) -> subprocess.CompletedProcess[str]:
    """``stacksecrets validate --deadline 5`` against an AWS endpoint, as a real process."""
    stack = tmp_path / "stack.yaml"
    stack.write_text(
        "stacks:\n  - name: s\n    components:\n      - type: t\n        flavor: f\n"
        "        name: n\n        configuration:\n          p: '{{db.password}}'\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "STACKSECRETS_"))},
        "AWS_ACCESS_KEY_ID": "AKIATESTSTACKSECRETS",
        "AWS_SECRET_ACCESS_KEY": "not-a-real-secret-key",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "STACKSECRETS_METADATA_CACHE": "0",
    }
    url = f"aws-sm://?region=us-east-1&endpoint_url={endpoint}"
    # The bound below is no timing assertion: a process that never exits fails the test.
    return subprocess.run(
        [sys.executable, "-m", "stacksecrets", "validate", str(stack), "--store", url,
         "--deadline", "5"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["silent", "drip", "endless-body"])
def test_an_aws_store_honours_the_deadline_and_the_process_exits(tmp_path: Path, mode: str) -> None:
    """An AWS endpoint that accepts and never answers, one that drips bytes for ever, and one
    that sends an endless body: ``--deadline 5`` ends the validation, the answer is capped,
    and the process exits (no botocore thread keeps it alive), without a traceback."""
    with HostileServer(mode) as server:
        result = _aws_validate(tmp_path, server.url)
    assert result.returncode not in (0, 1), result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    if mode == "endless-body":
        assert "larger than 16 MiB" in result.stdout + result.stderr
    else:
        assert "5" in result.stderr  # the deadline it did not finish within


# ---------------------------------------------------------------------- item 10


@pytest.mark.anyio
@pytest.mark.parametrize(
    "level", [ValidationLevel.SECRET_EXISTS, ValidationLevel.SECRET_AND_KEY_EXISTS]
)
async def test_a_chain_looks_past_a_soft_deleted_vault_version_at_both_levels(
    openbao: OpenBao, tmp_path: Path, level: ValidationLevel
) -> None:
    """Vault before a file store; Vault's latest version of the name is soft-deleted (LIST
    still shows it), the file store holds it: both levels answer from the file store, the
    report says so and that Vault holds the name only as deleted, and a read gives the file
    store's value."""
    name = f"d{uuid.uuid4().hex[:8]}/db"
    openbao.write(name, {"password": "pw-vault-old"})
    openbao.soft_delete(name)
    files = FileStore(tmp_path / "s.json")
    await files.create_secret(name, {"password": "pw-file"})
    vault = VaultStore(openbao.address, token=openbao.root_token)
    async with ChainStore([vault, files]) as chain, AsyncClient(chain) as client:
        report = await client.validate_stack(_stack(f"{name}.password"), level=level)
        secret = await client.get_secret(name)
    assert report.problems == ()
    source = report.sources[name]
    assert source.startswith(files.description)
    assert vault.description in source
    assert "only as deleted" in source
    assert secret.secret_values == {"password": "pw-file"}
    assert "pw-" not in source
