"""A pytest plugin that runs a real ZenML server on loopback, once per test session.

``zenml_server`` starts ZenML 0.98's own FastAPI app with uvicorn, on SQLite in a temporary
directory, with password authentication on, and gives its URL, admin credentials, an
environment for ZenML's CLI and Python client, and helpers to drive both. The ZenML venv is
``$STACKSECRETS_ZENML_PYTHON``, else the one the noxfile builds per user,
``${XDG_CACHE_HOME:-~/.cache}/stacksecrets/zenml-0.98.0/bin/python``; without it the tests that
need a server are skipped (and fail when ``CI`` is set). Under pytest-xdist the workers share
one server (tests/server_process.py).
"""

from __future__ import annotations

import email.utils
import json
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VENV = server_venv("zenml-0.98.0")
DEFAULT_PYTHON = DEFAULT_VENV / "bin" / "python"
# Generous: on two cores shared with other test runs, ZenML took over 60 s to start. A server
# that exits is reported at once, so only a hung start waits this long.
START_TIMEOUT = float(os.environ.get("STACKSECRETS_ZENML_START_TIMEOUT", "240"))
API = "/api/v1"


def _clean_environ() -> dict[str, str]:
    """The test process's environment without any ZenML setting that could leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}


@attrs.define
class ZenMLServer:
    """A running ZenML server and the ways to talk to it."""

    url: str
    username: str
    password: str
    #: ZENML_* variables (and a private ZENML_CONFIG_PATH) for the CLI and client of the venv.
    env: dict[str, str] = attrs.field(repr=False)
    python: Path
    log_path: Path
    _rest: httpx.Client | None = attrs.field(default=None, repr=False)

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    @property
    def store_url(self) -> str:
        """The stacksecrets URL of this server, without credentials."""
        return f"zenml+{self.url}"

    def _run(self, argv: list[str], what: str) -> str:
        result = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=300, check=False
        )
        if result.returncode != 0:
            pytest.fail(
                f"{what} failed with exit code {result.returncode}\n"
                f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}",
                pytrace=False,
            )
        return result.stdout

    def zenml(self, *args: str) -> str:
        """Run ``zenml ARGS`` of the ZenML venv against this server; its stdout."""
        cli = self.python.parent / "zenml"
        if cli.exists():
            argv = [str(cli), *args]
        else:
            argv = [str(self.python), "-c", "from zenml.cli.cli import cli; cli()", *args]
        return self._run(argv, f"zenml {' '.join(args[:2])}")

    def run_python(self, code: str, *args: str) -> str:
        """Run ``code`` (``sys.argv[1:]`` = ``args``) in the ZenML venv's python against this
        server; its stdout."""
        return self._run([str(self.python), "-c", code, *args], "python in the ZenML venv")

    def rest(self) -> httpx.Client:
        """A sync REST client logged in as the admin (for setting up test data)."""
        if self._rest is None:
            client = httpx.Client(base_url=self.url + API, timeout=30.0)
            answer = client.post(
                "/login", data={"username": self.username, "password": self.password}
            )
            answer.raise_for_status()
            client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
            self._rest = client
        return self._rest

    def wait_until_settled(self, path: str, prefix: str) -> None:
        """Until the server's clock, as the store reads it (the ``Date`` header, whole
        seconds), is the store's settle time past the newest ``updated`` of the items of
        ``path`` (``/secrets``, ``/components``) named ``prefix*``: before that a read cannot
        be vouched for (see the store). A fixed sleep after seeding was not enough: ``Date``
        drops the fraction of a second, so a run could find every stamp unsettled."""
        from stacksecrets.stores import _zenml_http

        settle = _zenml_http.STAMP_RESOLUTION_SECONDS + _zenml_http.STAMP_SETTLE_SECONDS
        rest = self.rest()
        listed = rest.get(path, params={"name": f"startswith:{prefix}", "size": 1000})
        listed.raise_for_status()
        newest = max(
            datetime.fromisoformat(item["body"]["updated"]).replace(tzinfo=timezone.utc)
            for item in listed.json()["items"]
        )
        while True:
            server_time = email.utils.parsedate_to_datetime(rest.get("/info").headers["Date"])
            left = settle - (server_time - newest).total_seconds()
            if left <= 0:
                return
            time.sleep(left)  # the server's clock passes the settle point then, or a second later

    @property
    def admin_token(self) -> str:
        """A bearer token of the admin (logged in once per session)."""
        return str(self.rest().headers["Authorization"]).removeprefix("Bearer ")

    def create_secret(self, name: str, values: Mapping[str, str], *, private: bool = False) -> str:
        """Create a secret through the REST API; its id."""
        answer = self.rest().post(
            "/secrets", json={"name": name, "private": private, "values": dict(values)}
        )
        answer.raise_for_status()
        return str(answer.json()["id"])

    def create_secrets(
        self, values_by_name: Mapping[str, Mapping[str, str]], *, concurrency: int = 8
    ) -> list[str]:
        """Create many public secrets through the REST API, ``concurrency`` at a time (SQLite
        serializes writes: be kind to it); their ids."""
        ids: list[str] = []

        async def seed() -> None:
            limiter = anyio.CapacityLimiter(concurrency)
            async with httpx.AsyncClient(
                base_url=self.url + API,
                headers={"Authorization": f"Bearer {self.admin_token}"},
                timeout=120,
            ) as rest:

                async def one(name: str, values: Mapping[str, str]) -> None:
                    body = {"name": name, "private": False, "values": dict(values)}
                    async with limiter:
                        answer = await rest.post("/secrets", json=body)
                    answer.raise_for_status()
                    ids.append(str(answer.json()["id"]))

                async with anyio.create_task_group() as group:
                    for name, values in values_by_name.items():
                        group.start_soon(one, name, values)

        anyio.run(seed)
        return ids

    def delete_secret(self, secret_id: str) -> None:
        answer = self.rest().delete(f"/secrets/{uuid.UUID(secret_id)}")
        if answer.status_code != httpx.codes.NOT_FOUND:
            answer.raise_for_status()

    def create_service_account(self, name: str) -> str:
        """A new active service account with one API key; the key (``ZENKEY_...``)."""
        rest = self.rest()
        account = rest.post("/service_accounts", json={"name": name, "active": True})
        account.raise_for_status()
        key = rest.post(
            f"/service_accounts/{uuid.UUID(account.json()['id'])}/api_keys",
            json={"name": f"{name}-key"},
        )
        key.raise_for_status()
        return str(key.json()["body"]["key"])

    def close(self) -> None:
        if self._rest is not None:
            self._rest.close()
            self._rest = None


#: ``zenml`` commands, in order, in one process of the ZenML venv: each through ZenML's own
#: click group as ``zenml ARGS`` runs it (ZenML's own tests drive its CLI so), with its input;
#: then ``sys.argv[2]``, Python code, if given. One start instead of one per command: ZenML
#: takes 1.5-2 s of CPU to import.
ZENML_COMMANDS = """
import json, sys, traceback
from click.testing import CliRunner
from zenml.cli.cli import cli
for args, stdin in json.loads(sys.argv[1]):
    result = CliRunner().invoke(cli, args, input=stdin, prog_name="zenml")
    if result.exit_code != 0:
        print(f"zenml {' '.join(args[:2])}: exit code {result.exit_code}", file=sys.stderr)
        print(result.output[-3000:], file=sys.stderr)
        if result.exc_info is not None and not isinstance(result.exception, SystemExit):
            traceback.print_exception(*result.exc_info)
        sys.exit(1)
    print(result.output, end="")
if len(sys.argv) > 2:
    exec(compile(sys.argv[2], "<setup>", "exec"), {"__name__": "__main__"})
"""


def zenml_commands(
    python: Path,
    commands: Sequence[Sequence[str] | tuple[Sequence[str], str]],
    *,
    env: Mapping[str, str],
    then: str = "",
    cwd: Path | None = None,
) -> str:
    """Run ``zenml`` commands (each its arguments, or ``(arguments, input)``) and then the
    Python code ``then`` in one process of the ZenML venv (``ZENML_COMMANDS``); its stdout.
    A failing command fails the test with its output."""
    steps = [(list(c[0]), c[1]) if isinstance(c, tuple) else (list(c), None) for c in commands]
    argv = [str(python), "-c", ZENML_COMMANDS, json.dumps(steps), *([then] if then else [])]
    result = subprocess.run(
        argv, env=dict(env), capture_output=True, text=True, timeout=300, check=False, cwd=cwd
    )
    if result.returncode != 0:
        pytest.fail(
            f"zenml commands failed with exit code {result.returncode}\n"
            f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}",
            pytrace=False,
        )
    return result.stdout


def _zenml_python() -> Path:
    configured = os.environ.get("STACKSECRETS_ZENML_PYTHON")
    python = Path(configured) if configured else DEFAULT_PYTHON
    if not python.exists():
        reason = (
            f"no ZenML venv at {python}: create it with `uv venv {DEFAULT_VENV}` "
            "and `uv pip install 'zenml[server]==0.98.0'` into it, or set "
            "STACKSECRETS_ZENML_PYTHON to its python"
        )
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return python


def _server_environ(workdir: Path, password: str) -> dict[str, str]:
    return {
        **_clean_environ(),
        "ZENML_CONFIG_PATH": str(workdir / "server-config"),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_STORE_URL": f"sqlite:///{workdir / 'zenml.db'}",
        "ZENML_SERVER_AUTO_ACTIVATE": "true",
        "ZENML_DEFAULT_USER_NAME": "admin",
        "ZENML_DEFAULT_USER_PASSWORD": password,
        "ZENML_SERVER_JWT_SECRET_KEY": secrets.token_hex(32),
        "ZENML_SERVER_AUTH_SCHEME": "OAUTH2_PASSWORD_BEARER",
        "ZENML_LOGGING_VERBOSITY": "WARN",
    }


def _start(python: Path, workdir: Path) -> Facts:
    """Start the server on SQLite in ``workdir``; its facts (url, password, log, pid)."""
    password = secrets.token_urlsafe(16)
    log_path = workdir / "server.log"
    try:
        process, port = start_server(
            lambda port: [
                str(python),
                "-m",
                "uvicorn",
                "zenml.zen_server.zen_server_api:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            ready=lambda port: answers(f"http://127.0.0.1:{port}{API}/info"),
            log_path=lambda _port: log_path,
            env=_server_environ(workdir, password),
            cwd=workdir,
            timeout=START_TIMEOUT,
            what="the ZenML server",
        )
    except ServerDidNotStartError as exc:
        pytest.fail(f"could not start the ZenML server: {exc}", pytrace=False)
    url = f"http://127.0.0.1:{port}"
    return {"url": url, "password": password, "log_path": str(log_path), "pid": process.pid}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under xdist, the server starts as soon as a worker has collected a test that uses it."""
    start_early(session, "zenml_server", "zenml-server", lambda w: _start(_zenml_python(), w))


@pytest.fixture(scope="session")
def zenml_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZenMLServer]:
    """A real ZenML 0.98 server on loopback for the whole session (see the module docs)."""
    python = _zenml_python()
    with shared_server(
        tmp_path_factory, "zenml-server", lambda workdir: _start(python, workdir)
    ) as facts:
        client_config = tmp_path_factory.mktemp("zenml-client-config")
        env = {
            **_clean_environ(),
            "ZENML_STORE_URL": facts["url"],
            "ZENML_STORE_USERNAME": "admin",
            "ZENML_STORE_PASSWORD": facts["password"],
            "ZENML_CONFIG_PATH": str(client_config),
            "ZENML_ANALYTICS_OPT_IN": "false",
            "ZENML_LOGGING_VERBOSITY": "WARN",
            "ZENML_ENABLE_RICH_TRACEBACK": "false",
            "NO_COLOR": "1",
            "COLUMNS": "200",
        }
        server = ZenMLServer(
            url=facts["url"], username="admin", password=facts["password"], env=env,
            python=python, log_path=Path(facts["log_path"]),
        )  # fmt: skip
        try:
            yield server
        finally:
            server.close()


@pytest.fixture
def unique_prefix() -> str:
    """A name prefix no other test uses, so tests share one server without clashing."""
    return f"t{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def make_secret(zenml_server: ZenMLServer) -> Iterator[Callable[..., str]]:
    """Create secrets through the REST API (``make_secret(name, values, private=False)``).

    Each is deleted after the test.
    """
    created: list[str] = []

    def make(name: str, values: Mapping[str, str] | None = None, **options: Any) -> str:
        secret_id = zenml_server.create_secret(name, values or {"k": "v"}, **options)
        created.append(secret_id)
        return secret_id

    yield make
    for secret_id in created:
        zenml_server.delete_secret(secret_id)
