"""The loopback fault proxy: latency added, bytes unchanged, requests counted, faults injected.

A real HTTP server (``python -m http.server`` in a subprocess) sits behind the proxy.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fault_proxy import Fault, FaultProxy, ProxyThread
from server_process import answers, start_server, stop_process

PAYLOAD_SIZE = 300_000


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, bytes]]:
    """A real HTTP server on loopback serving ``payload.bin`` (random bytes); (port, bytes)."""
    root = tmp_path_factory.mktemp("www")
    payload = os.urandom(PAYLOAD_SIZE)
    (root / "payload.bin").write_bytes(payload)
    (root / "small.txt").write_bytes(b"ok\n")
    process, port = start_server(
        lambda port: [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        ready=lambda port: answers(f"http://127.0.0.1:{port}/small.txt"),
        log_path=lambda _port: root.parent / "http-server.log",
        env=os.environ,
        cwd=root,
        timeout=20,
        what="python -m http.server",
    )
    try:
        yield port, payload
    finally:
        stop_process(process.pid, process)


def _get(port: int, path: str, timeout: float = 10.0) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=timeout)


def test_bytes_pass_unchanged(http_server: tuple[int, bytes]) -> None:
    """A large answer arrives through the proxy byte for byte."""
    port, payload = http_server
    with ProxyThread("127.0.0.1", port, latency_ms=10) as proxy:
        body = _get(proxy.port, "/payload.bin").content
    assert hashlib.sha256(body).digest() == hashlib.sha256(payload).digest()
    assert proxy.bytes_down >= PAYLOAD_SIZE


def test_round_trip_costs_at_least_the_latency(http_server: tuple[int, bytes]) -> None:
    """Each request through a 100 ms proxy takes at least 100 ms (median of five)."""
    port, _ = http_server
    with ProxyThread("127.0.0.1", port, latency_ms=100, handshake=False) as proxy:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            assert _get(proxy.port, "/small.txt").status_code == 200
            times.append(time.perf_counter() - started)
    assert statistics.median(times) >= 0.1


def test_new_connection_pays_a_handshake(http_server: tuple[int, bytes]) -> None:
    """With ``handshake=True`` a request on a new connection costs two round trips."""
    port, _ = http_server
    with ProxyThread("127.0.0.1", port, latency_ms=100) as proxy:
        started = time.perf_counter()
        _get(proxy.port, "/small.txt")
        assert time.perf_counter() - started >= 0.2


def test_requests_and_connections_are_counted(http_server: tuple[int, bytes]) -> None:
    """Three requests on one keep-alive client count three requests."""
    port, _ = http_server
    with ProxyThread("127.0.0.1", port) as proxy, httpx.Client() as client:
        for _ in range(3):
            client.get(f"http://127.0.0.1:{proxy.port}/small.txt")
        assert proxy.requests == 3
        assert proxy.connections >= 1


def test_dropped_request_fails_then_next_succeeds(http_server: tuple[int, bytes]) -> None:
    """An injected DROP closes the connection without an answer; the next request is served."""
    port, _ = http_server
    with ProxyThread("127.0.0.1", port) as proxy:
        proxy.inject(Fault.DROP)
        with pytest.raises(httpx.TransportError):
            _get(proxy.port, "/small.txt")
        assert _get(proxy.port, "/small.txt").status_code == 200


def test_reset_cuts_the_answer(http_server: tuple[int, bytes]) -> None:
    """An injected RESET lets a few bytes through, then resets: the client sees an error."""
    port, _ = http_server
    with ProxyThread("127.0.0.1", port, reset_after_bytes=200) as proxy:
        proxy.inject(Fault.RESET)
        with pytest.raises(httpx.TransportError):
            _get(proxy.port, "/payload.bin")


def test_stall_never_answers(http_server: tuple[int, bytes]) -> None:
    """An injected STALL leaves the request unanswered until the client gives up."""
    port, _ = http_server
    with ProxyThread("127.0.0.1", port) as proxy:
        proxy.inject(Fault.STALL)
        with pytest.raises(httpx.ReadTimeout):
            _get(proxy.port, "/small.txt", timeout=0.5)


def test_refuses_non_loopback_targets() -> None:
    """The proxy never forwards anywhere but loopback."""
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy("192.0.2.1", 80)


def test_runs_as_a_process(http_server: tuple[int, bytes]) -> None:
    """``python tests/fault_proxy.py`` prints its port, proxies, and reports its counters."""
    port, _ = http_server
    script = Path(__file__).with_name("fault_proxy.py")
    process = subprocess.Popen(
        [sys.executable, str(script), "--target", f"127.0.0.1:{port}", "--latency-ms", "20"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        first = process.stdout.readline().split()
        assert first[0] == "PORT"
        assert _get(int(first[1]), "/small.txt").content == b"ok\n"
        process.stdin.write("stats\n")
        process.stdin.flush()
        assert '"requests": 1' in process.stdout.readline()
    finally:
        process.stdin.close()
        code = process.wait(10)
        process.stdout.close()
    assert code == 0
