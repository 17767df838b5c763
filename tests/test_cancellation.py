"""Cancelling a validation stops it promptly and leaves nothing behind.

Against a real ZenML server behind the fault proxy: a cancel scope (or the client's deadline)
ends a validation stuck on a silent server or in a long retry back-off within a fraction of a
second, with no task, thread, single-flight entry or connection left over; and Ctrl-C in the
``stacksecrets`` command exits 130 with one short line, no traceback.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest

from cli_runner import Cli
from fault_proxy import Fault, FaultProxy, ProxyThread
from stacksecrets import AsyncClient, Component, Stack, StoreUnavailableError
from stacksecrets.stores import ZenMLStore
from zenml_fixtures import ZenMLServer

pytestmark = pytest.mark.zenml

#: A cancelled validation must be over within this many seconds of the cancel.
PROMPT = 0.5


def _port(server: ZenMLServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


@pytest.fixture
def proxy(zenml_server: ZenMLServer) -> Iterator[FaultProxy]:
    """A fault proxy (its own thread and event loop) in front of the real ZenML server."""
    with ProxyThread("127.0.0.1", _port(zenml_server)) as running:
        yield running


@pytest.fixture
def stack(make_secret: Callable[..., str], unique_prefix: str) -> Stack:
    """A stack using eight real secrets of the server."""
    names = [f"{unique_prefix}c{i}" for i in range(8)]
    for name in names:
        make_secret(name, {"user": "u", "password": "p"})
    config = {f"k{i}": f"{{{{{name}.password}}}}" for i, name in enumerate(names)}
    return Stack("cancel-me", [Component("orchestrator", "local", "o", config)])


def _store(server: ZenMLServer, port: int) -> ZenMLStore:
    return ZenMLStore(
        f"http://127.0.0.1:{port}",
        username=server.username,
        password=server.password,
        token=server.admin_token,  # no 0.4 s password hashing per test
    )


def _wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.anyio
async def test_a_cancelled_validation_stops_promptly_and_leaves_nothing_behind(
    zenml_server: ZenMLServer, proxy: FaultProxy, stack: Stack
) -> None:
    """A validation stuck on a silent server ends within 0.5 s of its cancel scope's deadline;
    afterwards no task, thread or single-flight entry is left, the next validation works, and
    closing the client closes every connection."""
    async with _store(zenml_server, proxy.port) as store, AsyncClient(store) as client:
        assert (await client.validate_stack(stack)).ok  # warm-up: pool threads, connections
        client.clear_cache()
        threads = set(threading.enumerate())
        tasks = len(anyio.get_running_tasks())

        proxy.default_fault = Fault.STALL
        started = time.perf_counter()
        with anyio.move_on_after(0.3) as scope:
            await client.validate_stack(stack)
        elapsed = time.perf_counter() - started

        assert scope.cancelled_caught
        assert elapsed < 0.3 + PROMPT
        assert len(anyio.get_running_tasks()) == tasks
        assert client.in_flight == 0
        assert set(threading.enumerate()) - threads == set()

        proxy.default_fault = Fault.NONE
        assert (await client.validate_stack(stack)).ok
    assert _wait_until(lambda: proxy.open_connections == 0)
    assert set(threading.enumerate()) - threads == set()


@pytest.mark.anyio
async def test_a_long_retry_back_off_ends_at_the_deadline(
    zenml_server: ZenMLServer, proxy: FaultProxy, stack: Stack
) -> None:
    """A 503 asking for a 20 s wait (within the 60 s retry budget) is waited for with an
    async sleep, so the client's 0.5 s deadline still ends the validation on time, with
    StoreUnavailableError naming the store; the event loop stays responsive meanwhile."""
    proxy.retry_after = "20"
    proxy.inject(Fault.HTTP_503)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.05)
            ticks += 1

    async with _store(zenml_server, proxy.port) as store, anyio.create_task_group() as group:
        group.start_soon(tick)
        started = time.perf_counter()
        async with AsyncClient(store, deadline=0.5, retry_timeout=60) as client:
            with pytest.raises(StoreUnavailableError, match=r"did not finish within 0\.5 s"):
                await client.validate_stack(stack)
        elapsed = time.perf_counter() - started
        group.cancel_scope.cancel()
    assert 0.5 <= elapsed < 0.5 + PROMPT
    assert proxy.faults_applied[Fault.HTTP_503] == 1
    assert proxy.requests == 1  # the retry was never sent
    assert ticks >= 5  # the loop ran other tasks during the back-off


STACK_FILE = """\
stacks:
  - name: interrupted
    components:
      - type: orchestrator
        flavor: local
        name: o
        configuration:
          password: "{{some_secret.password}}"
"""


@pytest.mark.parametrize("fault", [Fault.STALL, Fault.HTTP_503], ids=["silent", "back-off"])
def test_ctrl_c_in_the_cli_exits_130_with_one_line(
    cli: Cli, zenml_server: ZenMLServer, proxy: FaultProxy, tmp_path: Path, fault: Fault
) -> None:
    """SIGINT while `stacksecrets validate` waits on a silent server (or in a 20 s retry
    back-off) ends it within 3 s: exit code 130, 'interrupted' as the last line of stderr
    (after at most the retry notices), no traceback, nothing on stdout."""
    stack_file = tmp_path / "stack.yaml"
    stack_file.write_text(STACK_FILE)
    proxy.retry_after = "20"
    proxy.default_fault = fault
    env = cli.environ(
        {
            "ZENML_STORE_USERNAME": zenml_server.username,
            "ZENML_STORE_PASSWORD": zenml_server.password,
        }
    )
    store = f"zenml+http://127.0.0.1:{proxy.port}"
    process = subprocess.Popen(
        cli.argv("validate", str(stack_file), "--store", store),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert _wait_until(lambda: proxy.requests >= 1, seconds=60), "the CLI never called"
        time.sleep(0.3)  # inside the wait (or the back-off) now
        interrupted = time.perf_counter()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=10)
        elapsed = time.perf_counter() - interrupted
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert elapsed < 3.0
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert lines[-1] == "stacksecrets: error: interrupted"
    # The store named (every command does, on stderr), then retry notices only.
    assert lines[0].startswith("Store: "), stderr
    assert all("stamina.retry_scheduled" in line for line in lines[1:-1]), stderr
    assert stdout == ""


def test_a_child_of_the_test_run_takes_sigint_as_from_a_shell() -> None:
    """The Ctrl-C tests' children start with SIGINT at its default disposition, so Python
    gives them ``KeyboardInterrupt``, even when the test run itself was started in the
    background with SIGINT ignored (tests/conftest.py)."""
    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    ran = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert ran.stdout.strip() == "True", ran.stderr
