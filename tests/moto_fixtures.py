"""A pytest plugin with a real AWS Secrets Manager API on loopback: moto's server.

``moto_server`` starts ``moto_server -H 127.0.0.1 -p PORT`` (from the ``moto[server]`` package
the tests dependency group installs) once per test session, shared by pytest-xdist's workers.
``aws_env`` points the standard AWS configuration chain at it for one test (endpoint, region,
fake credentials; no shared files, no instance metadata) and gives that test its own secret
name prefix, so tests share the server without seeing each other's secrets.

``ScriptedAws`` is a loopback HTTP server that answers Secrets Manager calls from a script, for
answers moto cannot give (a batch answer with a refused secret inside, real AWS error shapes).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import boto3
import botocore.exceptions
import pytest

from server_process import (
    Facts,
    ServerDidNotStartError,
    answers,
    shared_server,
    start_early,
    start_server,
    stop_process,
)

REGION = "eu-west-1"
START_TIMEOUT = 120.0  # generous for a loaded machine; an exit is reported at once
#: Variables of the AWS configuration chain a developer's shell could leak into a test.
_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
)


@attrs.define
class MotoServer:
    """A running moto server."""

    port: int
    #: The server's process (group) id.
    pid: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def admin(self, url: str | None = None, **credentials: str) -> Any:
        """A boto3 Secrets Manager client, for setting up (not the code under test)."""
        return boto3.client(
            "secretsmanager",
            endpoint_url=url or self.url,
            region_name=REGION,
            aws_access_key_id=credentials.get("key_id", "testing"),
            aws_secret_access_key=credentials.get("secret", "testing"),
        )

    def seed(self, values: Mapping[str, object], *, client: Any = None) -> None:
        """Create secrets: a dict becomes a JSON SecretString, str a plain one, bytes binary."""
        client = client or self.admin()

        def create(item: tuple[str, object]) -> None:
            name, value = item
            if isinstance(value, bytes):
                params: dict[str, object] = {"SecretBinary": value}
            elif isinstance(value, str):
                params = {"SecretString": value}
            else:
                params = {"SecretString": json.dumps(value)}
            # moto's secret dict is not thread-safe: a concurrent create can answer 500.
            for _ in range(10):
                try:
                    client.create_secret(Name=name, **params)
                except client.exceptions.ResourceExistsException:
                    return
                except botocore.exceptions.ClientError as exc:
                    if exc.response["ResponseMetadata"]["HTTPStatusCode"] != 500:
                        raise
                    time.sleep(0.05)
                else:
                    return
            pytest.fail(f"moto kept failing to create {name!r}")

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, values.items()))


def _start(tmp: Path, env: Mapping[str, str] | None = None) -> Facts:
    binary = Path(sys.executable).with_name("moto_server")
    if not binary.exists():
        pytest.fail(f"no moto_server beside {sys.executable}: install the tests group")
    try:
        process, port = start_server(
            lambda port: [str(binary), "-H", "127.0.0.1", "-p", str(port)],
            ready=lambda port: answers(f"http://127.0.0.1:{port}/moto-api/"),
            log_path=lambda port: tmp / f"moto-{port}.log",
            env={**os.environ, **(env or {})},
            timeout=START_TIMEOUT,
            what="moto_server",
        )
    except ServerDidNotStartError as exc:
        pytest.fail(f"moto_server did not start: {exc}", pytrace=False)
    return {"port": port, "pid": process.pid, "log_path": str(tmp / f"moto-{port}.log")}


def _server(facts: Facts) -> MotoServer:
    return MotoServer(int(facts["port"]), int(facts["pid"]), Path(facts["log_path"]))


@contextlib.contextmanager
def run_moto(tmp: Path, env: Mapping[str, str] | None = None) -> Iterator[MotoServer]:
    """A moto server of the caller's own on a free loopback port, stopped on exit."""
    server = _server(_start(tmp, env))
    try:
        yield server
    finally:
        stop_process(server.pid)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under xdist, the server starts as soon as a worker has collected a test that uses it."""
    start_early(session, "moto_server", "moto", _start)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto server for the whole test session (shared by pytest-xdist's workers)."""
    with shared_server(tmp_path_factory, "moto", _start) as facts:
        yield _server(facts)


@attrs.frozen
class AwsEnv:
    """What ``aws_env`` set up: the prefix of this test's secrets, and the credentials."""

    server: MotoServer
    prefix: str
    secret_access_key: str = attrs.field(repr=False)

    @property
    def url(self) -> str:
        """The stacksecrets store URL of this test's namespace."""
        return f"aws-sm://?prefix={self.prefix}"

    def seed(self, values: Mapping[str, object]) -> None:
        """Create secrets inside this test's namespace."""
        self.server.seed({self.prefix + name: value for name, value in values.items()})


def aws_variables(endpoint: str, secret_access_key: str, tmp: Path) -> dict[str, str]:
    """The AWS configuration chain pointed at ``endpoint``, with nothing from outside."""
    return {
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "AKIATESTSTACKSECRETS",
        "AWS_SECRET_ACCESS_KEY": secret_access_key,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
    }


@pytest.fixture
def aws_env(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AwsEnv:
    """The AWS chain pointed at the session's moto server, and a fresh name prefix."""
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    key = "sk-" + secrets.token_hex(12)
    for name, value in aws_variables(moto_server.url, key, tmp_path).items():
        monkeypatch.setenv(name, value)
    return AwsEnv(moto_server, f"t{uuid.uuid4().hex[:8]}/", key)


# ---------------------------------------------------------------------- scripted answers


@attrs.define
class ScriptedAws:
    """A loopback server answering Secrets Manager JSON calls from ``answers``.

    ``answers[operation]`` is a list of ``(status, body)``; each call takes the first, the last
    one stays. ``calls`` records ``(operation, request body)``.
    """

    answers: dict[str, list[tuple[int, dict[str, Any]]]] = attrs.field(factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = attrs.field(factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, operation: str) -> tuple[int, dict[str, Any]]:
        queue = self.answers.get(operation)
        if not queue:
            return 400, {"__type": "InvalidRequestException", "message": "not scripted"}
        return queue.pop(0) if len(queue) > 1 else queue[0]


@contextlib.contextmanager
def scripted_aws() -> Iterator[ScriptedAws]:
    script = ScriptedAws()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            target = self.headers.get("X-Amz-Target", "")
            operation = target.rsplit(".", 1)[-1]
            length = int(self.headers.get("Content-Length", "0"))
            script.calls.append((operation, json.loads(self.rfile.read(length) or b"{}")))
            status, body = script.answer(operation)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    script.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
