"""The fixtures' server-process helper (tests/server_process.py): started, ready, stopped, and
shared by pytest-xdist's workers."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from server_process import (
    Facts,
    ServerDidNotStartError,
    answers,
    join_early_starts,
    shared_server,
    start_early,
    start_server,
    stop_process,
    stop_shared_servers,
)


def _http_server(workdir: Path) -> Facts:
    process, port = start_server(
        lambda port: [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        ready=lambda port: answers(f"http://127.0.0.1:{port}/"),
        log_path=lambda _port: workdir / "server.log",
        env=os.environ,
        cwd=workdir,
        what="http.server",
    )
    return {"url": f"http://127.0.0.1:{port}/", "pid": process.pid}


def test_a_server_that_exits_is_reported_at_once_with_its_log(tmp_path: Path):
    """No waiting out the start timeout: the exit code and the log's tail say why."""
    with pytest.raises(ServerDidNotStartError, match="exited with code 3") as caught:
        start_server(
            lambda _port: [sys.executable, "-c", "print('cannot bind'); raise SystemExit(3)"],
            ready=lambda _port: False,
            log_path=lambda _port: tmp_path / "server.log",
            env=os.environ,
            timeout=120,
            what="the server",
        )
    assert "cannot bind" in str(caught.value)


def test_a_started_server_answers_until_stopped(tmp_path: Path):
    facts = _http_server(tmp_path)
    assert answers(facts["url"])
    stop_process(facts["pid"])
    assert not answers(facts["url"])


class Factory:
    """What a worker's tmp_path_factory gives: its folder inside the session's."""

    def __init__(self, base: Path, worker: str) -> None:
        self.base, self.worker = base, worker

    def getbasetemp(self) -> Path:
        return self.base / self.worker


def test_workers_share_one_server_which_the_controller_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Two xdist workers ask for the server: the first starts it, the second reads its facts;
    the controller's stop at the session's end ends it."""
    started: list[Facts] = []

    def start(workdir: Path) -> Facts:
        started.append(_http_server(workdir))
        return started[-1]

    seen = []
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        with shared_server(Factory(tmp_path, worker), "web", start) as facts:  # type: ignore[arg-type]
            seen.append(facts)
    assert len(started) == 1
    assert seen == [started[0], started[0]]
    assert answers(started[0]["url"])  # a worker's end does not stop it
    stop_shared_servers(tmp_path)
    assert not answers(started[0]["url"])


def test_a_worker_starts_the_server_its_tests_need_before_they_ask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """``start_early``: once a worker has collected a test using the server's fixture, the
    server starts on a thread; the fixture's ``shared_server`` later gets that server. With no
    test using the fixture, nothing starts."""
    started: list[Facts] = []

    def start(workdir: Path) -> Facts:
        started.append(_http_server(workdir))
        return started[-1]

    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    factory = Factory(tmp_path, "gw0")

    def session(*fixtures: str) -> pytest.Session:
        item = SimpleNamespace(fixturenames=["tmp_path", *fixtures])
        config = SimpleNamespace(
            _tmp_path_factory=factory, option=SimpleNamespace(collectonly=False)
        )
        return SimpleNamespace(items=[item], config=config)  # type: ignore[return-value]

    start_early(session(), "web_server", "web", start)
    start_early(session("web_server"), "web_server", "web", start)
    join_early_starts()  # as a worker does before it ends
    try:
        assert (tmp_path / "web.server.json").exists()
        with shared_server(factory, "web", start) as facts:  # type: ignore[arg-type]
            assert facts == started[0]
        assert len(started) == 1
        assert answers(started[0]["url"])
    finally:
        stop_shared_servers(tmp_path)
