"""Real server processes for the test fixtures (ZenML, OpenBao, moto): start one on a free
loopback port, wait until it answers, stop it; and share one between pytest-xdist workers.

``start_server`` polls the server's own readiness signal (an HTTP answer), never a fixed
sleep, and gives up early when the process exits. ``shared_server`` follows pytest-xdist's
pattern: under xdist, the first worker to take a file lock in the session's shared temporary
folder starts the server and writes its address to a JSON file beside the lock; the other
workers read it. The session's controller stops every server listed there when the session
ends (``stop_shared_servers``, called from tests/conftest.py); without xdist, the fixture that
started the server stops it. ``start_early`` begins that start on a thread as soon as a
worker knows its tests need the server, so a worker does not sit idle while it starts.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from filelock import FileLock

#: The server processes this process started and has not stopped, by pid (kept so that a
#: server shared with other workers is not garbage-collected as a "still running" Popen).
_RUNNING: dict[int, subprocess.Popen[bytes]] = {}

#: What a started server's ``describe`` gives back: JSON-able facts the fixture rebuilds from.
Facts = dict[str, Any]


def server_venv(name: str) -> Path:
    """Where the noxfile builds a server's venv, once per user and version (``name`` is
    ``zenml-0.98.0``, ``openbao-2.7.2``): ``${XDG_CACHE_HOME:-~/.cache}/stacksecrets/NAME``."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "stacksecrets" / name


def free_port() -> int:
    """A loopback port nothing listens on right now (it can be taken before it is bound: the
    starters retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 60) -> str:
    """The end of a server's log, for a failure message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def answers(url: str, *, ok: Callable[[httpx.Response], bool] | None = None) -> bool:
    """Whether ``GET url`` answers (with a status ``ok`` accepts: 200 by default)."""
    try:
        response = httpx.get(url, timeout=2.0)
    except httpx.TransportError:
        return False
    return ok(response) if ok is not None else response.status_code == httpx.codes.OK


class ServerDidNotStartError(Exception):
    """Why a server process did not come up (with its log's tail)."""


def start_server(
    argv: Callable[[int], Sequence[str]],
    *,
    ready: Callable[[int], bool],
    log_path: Callable[[int], Path],
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float = 60.0,
    what: str = "the server",
    attempts: int = 3,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``argv(port)`` on a free port in its own process group, and wait until
    ``ready(port)``; the process and its port. A port taken between the probe and the bind is
    retried on another one."""
    failure = "not started"
    for _attempt in range(attempts):
        port = free_port()
        log = log_path(port)
        with log.open("ab") as out:
            process = subprocess.Popen(
                list(argv(port)),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, ended as one
            )
        _RUNNING[process.pid] = process
        failure = _wait_ready(process, functools.partial(ready, port), timeout, what)
        if not failure:
            return process, port
        stop_process(process.pid, process)
        if "address already in use" not in tail(log).lower():
            break
    raise ServerDidNotStartError(f"{failure}\n--- {log}\n{tail(log)}")


def _wait_ready(
    process: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float, what: str
) -> str:
    """'' once ``ready()``; else why not. Polls quickly at first, then every 0.2 s."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"{what} exited with code {process.returncode}"
        if ready():
            return ""
        time.sleep(pause)  # between two polls of the readiness signal
        pause = min(pause * 2, 0.2)
    return f"{what} did not answer within {timeout:.0f} s"


def stop_process(pid: int, process: subprocess.Popen[bytes] | None = None) -> None:
    """End a server's process group: SIGTERM, then SIGKILL after 15 s."""
    process = _RUNNING.pop(pid, process)
    if process is not None and process.poll() is not None:
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if _wait_gone(pid, process, 15):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _wait_gone(pid, process, 15)


def _wait_gone(pid: int, process: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    if process is not None:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    # Another process's child (a server a worker started): poll until it is gone.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if _is_zombie(pid):  # ended; its parent has not reaped it yet
            return True
        time.sleep(0.05)
    return False


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


# --------------------------------------------------------------- one server per session


def _worker() -> str | None:
    return os.environ.get("PYTEST_XDIST_WORKER")


def _shared_folder(factory: pytest.TempPathFactory) -> Path:
    """The controller's temporary folder, which every worker's is inside."""
    return factory.getbasetemp().parent


@contextlib.contextmanager
def shared_server(
    factory: pytest.TempPathFactory,
    name: str,
    start: Callable[[Path], Facts],
) -> Iterator[Facts]:
    """One ``name`` server for the whole test session: ``start(workdir)`` starts it and gives
    its facts (with ``pid``, its process group). Without xdist it is stopped on exit; under
    xdist the first worker starts it and the controller stops it at the session's end."""
    if _worker() is None:
        facts = start(factory.mktemp(name))
        try:
            yield facts
        finally:
            stop_process(int(facts["pid"]))
        return
    folder = _shared_folder(factory)
    record = folder / f"{name}.server.json"
    with FileLock(str(folder / f"{name}.server.lock")):
        if record.exists():
            facts = json.loads(record.read_text())
        else:
            workdir = folder / name
            workdir.mkdir(exist_ok=True)
            facts = start(workdir)
            record.write_text(json.dumps(facts))
    yield facts


def stop_shared_servers(basetemp: Path) -> None:
    """Stop every server the workers of this session started (the controller calls this)."""
    for record in sorted(basetemp.glob("*.server.json")):
        with contextlib.suppress(OSError, ValueError, KeyError):
            stop_process(int(json.loads(record.read_text())["pid"]))


def start_early(
    session: pytest.Session, fixture: str, name: str, start: Callable[[Path], Facts]
) -> None:
    """Under xdist, when a collected test uses ``fixture`` (directly or through another
    fixture), begin ``shared_server(..., name, start)`` on a thread now: ZenML takes ~10 s to
    start, which the worker spends on other tests instead of waiting at the first test that
    needs it (the fixture then waits on the server's lock, or reads its record). A start that
    fails here is left to the fixture, which starts it again and reports why. Called from a
    fixtures module's ``pytest_collection_finish``."""
    factory = getattr(session.config, "_tmp_path_factory", None)  # pytest's own, as xdist uses
    if _worker() is None or factory is None or session.config.option.collectonly:
        return
    if not any(fixture in getattr(item, "fixturenames", ()) for item in session.items):
        return
    if (_shared_folder(factory) / f"{name}.server.json").exists():
        return

    def begin() -> None:
        # Anything (pytest.skip and pytest.fail included) is for the fixture to report.
        with contextlib.suppress(BaseException), shared_server(factory, name, start):
            pass

    thread = threading.Thread(target=begin, name=f"start {name}", daemon=True)
    _STARTING.append(thread)
    thread.start()


#: The threads ``start_early`` began (joined before the worker ends: ``join_early_starts``).
_STARTING: list[threading.Thread] = []


def join_early_starts() -> None:
    """Wait for the starts ``start_early`` began, so that each started server is on record
    for the controller to stop (a worker that ends first would leave it running)."""
    while _STARTING:
        _STARTING.pop().join()
