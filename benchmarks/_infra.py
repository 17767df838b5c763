"""What the benchmark runs against: a real ZenML server, the latency proxy, ZenML's own client.

The server is ZenML 0.98's FastAPI app under uvicorn, from its own venv
(``$STACKSECRETS_ZENML_PYTHON``, else the per-user one the noxfile builds,
``${XDG_CACHE_HOME:-~/.cache}/stacksecrets/zenml-0.98.0/bin/python``), on SQLite in a
temporary folder, with password authentication on, listening on loopback only.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
ZENML_SIDE = Path(__file__).resolve().parent / "zenml_side"
PROXY_SCRIPT = ROOT / "tests" / "fault_proxy.py"
DEFAULT_PYTHON = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "stacksecrets/zenml-0.98.0/bin/python"
)
API = "/api/v1"


def zenml_python() -> Path:
    configured = os.environ.get("STACKSECRETS_ZENML_PYTHON")
    python = Path(configured) if configured else DEFAULT_PYTHON
    if not python.exists():
        sys.exit(
            f"no ZenML venv at {python}: run `nox -s bench` (it creates one), or set "
            "STACKSECRETS_ZENML_PYTHON to the python of a venv with zenml[server]==0.98.0"
        )
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}


@dataclass
class Server:
    """A running ZenML server."""

    port: int
    username: str
    password: str
    python: Path
    workdir: Path
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client_env(self, url: str | None = None, name: str = "client") -> dict[str, str]:
        """Variables for ZenML's CLI and Python client talking to ``url`` (default: direct)."""
        config = self.workdir / f"config-{name}"
        config.mkdir(exist_ok=True)
        return {
            **_clean_environ(),
            "ZENML_CONFIG_PATH": str(config),
            "ZENML_ANALYTICS_OPT_IN": "false",
            "ZENML_STORE_URL": url or self.url,
            "ZENML_STORE_USERNAME": self.username,
            "ZENML_STORE_PASSWORD": self.password,
            "ZENML_LOGGING_VERBOSITY": "ERROR",
            "ZENML_ENABLE_RICH_TRACEBACK": "false",
            "ZENML_LOGGING_COLORS_DISABLED": "true",
        }

    def run_zenml_side(
        self, command: str, spec: dict[str, Any], url: str | None = None, name: str = "client"
    ) -> dict[str, Any]:
        """Run ``zenml_bench.py COMMAND`` in the ZenML venv; the JSON it prints."""
        spec_path = self.workdir / f"spec-{name}-{command}.json"
        spec_path.write_text(json.dumps(spec))
        result = subprocess.run(
            [str(self.python), str(ZENML_SIDE / "zenml_bench.py"), command, str(spec_path)],
            env=self.client_env(url, name),
            cwd=ZENML_SIDE,
            capture_output=True,
            text=True,
            check=False,
        )
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        if result.returncode != 0 or not lines:
            sys.exit(
                f"zenml_bench.py {command} failed ({result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return dict(json.loads(lines[-1]))

    def zenml_cli(self, *args: str) -> None:
        cli = self.python.parent / "zenml"
        result = subprocess.run(
            [str(cli), *args],
            env=self.client_env(),
            cwd=ZENML_SIDE,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            sys.exit(f"zenml {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    def rest(self) -> httpx.Client:
        """A logged-in sync REST client (for setting up)."""
        client = httpx.Client(base_url=self.url + API, timeout=60.0)
        answer = client.post("/login", data={"username": self.username, "password": self.password})
        answer.raise_for_status()
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        return client


@contextlib.contextmanager
def zenml_server() -> Iterator[Server]:
    python = zenml_python()
    with tempfile.TemporaryDirectory(prefix="stacksecrets-bench-") as tmp:
        workdir = Path(tmp)
        server = Server(free_port(), "admin", secrets.token_urlsafe(16), python, workdir)
        env = {
            **_clean_environ(),
            "ZENML_CONFIG_PATH": str(workdir / "server-config"),
            "ZENML_ANALYTICS_OPT_IN": "false",
            "ZENML_STORE_URL": f"sqlite:///{workdir / 'zenml.db'}",
            "ZENML_SERVER_AUTO_ACTIVATE": "true",
            "ZENML_DEFAULT_USER_NAME": server.username,
            "ZENML_DEFAULT_USER_PASSWORD": server.password,
            "ZENML_SERVER_JWT_SECRET_KEY": secrets.token_hex(32),
            "ZENML_SERVER_AUTH_SCHEME": "OAUTH2_PASSWORD_BEARER",
            "ZENML_LOGGING_VERBOSITY": "WARN",
        }
        log = (workdir / "server.log").open("ab")
        argv = [str(python), "-m", "uvicorn", "zenml.zen_server.zen_server_api:app"]
        argv += ["--host", "127.0.0.1", "--port", str(server.port), "--log-level", "warning"]
        server._process = subprocess.Popen(  # noqa: SLF001
            argv,
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            _wait_ready(server)
            yield server
        finally:
            process = server._process  # noqa: SLF001
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + 90
    process = server._process  # noqa: SLF001
    assert process is not None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(server.url + API + "/info", timeout=2).is_success:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    log = (server.workdir / "server.log").read_text(errors="replace")[-3000:]
    sys.exit(f"the ZenML server did not start:\n{log}")


@contextlib.contextmanager
def proxy_process(target_port: int, rtt_ms: float, *extra: str) -> Iterator[subprocess.Popen[str]]:
    """The fault proxy (tests/fault_proxy.py) in front of ``127.0.0.1:target_port`` with
    ``rtt_ms`` of round trip added and ``extra`` options; its first line (``PORT n``) read.
    It takes commands on stdin and stops when stdin closes."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(PROXY_SCRIPT),
            *("--target", f"127.0.0.1:{target_port}"),
            *("--latency-ms", str(rtt_ms)),
            *extra,
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    try:
        yield process
    finally:
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        process.stdout.close()


def proxy_port(process: subprocess.Popen[str], what: str) -> int:
    """The port from the proxy's first line, or exit naming ``what`` did not start."""
    assert process.stdout is not None
    first = process.stdout.readline().split()
    if first[:1] != ["PORT"]:
        sys.exit(f"the {what} did not start")
    return int(first[1])


@contextlib.contextmanager
def latency(server: Server, rtt_ms: float) -> Iterator[str]:
    """The server's URL with ``rtt_ms`` of round trip added (0: the server itself)."""
    if not rtt_ms:
        yield server.url
        return
    with proxy_process(server.port, rtt_ms) as process:
        yield f"http://127.0.0.1:{proxy_port(process, 'latency proxy')}"
