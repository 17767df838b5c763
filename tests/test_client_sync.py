"""The blocking Client: plain scripts, many threads, inside a running event loop."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from counting_store import CountingStore
from stacksecrets import Client, ClosedError, Component, SecretNotFoundError, Stack


def portal_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "stacksecrets-portal"]


def test_plain_script_reads_a_secret_as_in_the_seed():
    """A script uses Client().get_secret(name).secret_values like ZenML step code, and exits."""
    script = textwrap.dedent(
        """
        from stacksecrets import Client
        Client("memory://").create_secret("mlflow_secret", {"username": "admin"})
        secret = Client("memory://").get_secret("mlflow_secret")
        print(secret.secret_values["username"])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "admin"


def test_clients_on_one_url_share_one_engine_and_cache():
    """Client() handles for the same store URL and options share the engine and its cache."""
    first, second = Client("memory://"), Client("memory://")
    assert first.async_client is second.async_client
    assert Client("memory://", max_concurrency=3).async_client is not first.async_client


def test_many_threads_each_name_fetched_once():
    """16 threads reading 200 names get correct answers; each name is read from the store once."""
    values = {f"n{i}": {"k": f"value-{i}"} for i in range(200)}
    store = CountingStore(values, latency=0.001)
    with Client(store) as client:

        def read(i: int) -> bool:
            return client.get_secret(f"n{i % 200}").secret_values == {"k": f"value-{i % 200}"}

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(read, range(1600)))
    assert all(answers)
    assert store.calls["get_secret"] == 200


def test_calls_start_no_event_loop_or_thread_per_call():
    """Repeated calls reuse the one portal thread: no new thread, no new event loop per call."""
    client = Client(CountingStore({"a": {"k": "v-value"}}))
    client.get_secret("a")
    before = threading.active_count()
    for _ in range(100):
        client.get_secret("a")
    assert threading.active_count() == before
    assert len(portal_threads()) == 1
    client.close()


@pytest.mark.anyio
async def test_sync_client_works_inside_a_running_event_loop():
    """Sync step code called from inside an event loop (asyncio or trio) still works."""
    store = CountingStore({"mlflow_secret": {"username": "admin", "password": "pw-value"}})
    client = Client(store)
    secret = client.get_secret("mlflow_secret")
    report = client.validate_stack(
        Stack("s", [Component("t", "f", "c", {"u": "{{mlflow_secret.username}}"})])
    )
    client.close()
    assert secret.secret_values["username"] == "admin"
    assert report.ok


def test_missing_secret_raises_key_error_like_zenml():
    """A missing secret raises SecretNotFoundError, which is a KeyError as in ZenML."""
    with Client(CountingStore({})) as client, pytest.raises(KeyError) as info:
        client.get_secret("nope")
    assert isinstance(info.value, SecretNotFoundError)
    assert str(info.value) == "The secret 'nope' does not exist in counting://."


def test_closed_client_refuses_use():
    """After close(), calls raise ClosedError; close() is idempotent."""
    client = Client(CountingStore({"a": {"k": "v-value"}}))
    client.close()
    client.close()
    with pytest.raises(ClosedError):
        client.get_secret("a")


def run_script(script: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("how", ["os.fork", "multiprocessing fork pool"])
def test_a_client_used_before_fork_works_in_the_child(how: str, tmp_path):
    """After ``fork`` the child has no portal thread: its clients start one and read the
    store, instead of hanging forever (the timeout turns a hang into a failure)."""
    store = (tmp_path / "secrets.json").as_uri()
    fork = """
        pid = os.fork()
        if pid == 0:
            os._exit(0 if Client(URL).get_secret("db").secret_values == {"user": "u2"} else 3)
        _, status = os.waitpid(pid, 0)
        print("child", os.waitstatus_to_exitcode(status))
    """
    pool = """
        def read(_):
            return Client(URL).get_secret("db").secret_values["user"]
        with multiprocessing.get_context("fork").Pool(2) as pool:
            print("child", pool.map(read, range(4)))
    """
    result = run_script(
        f"""
        import multiprocessing, os
        from stacksecrets import Client
        URL = {store!r}
        client = Client(URL)
        client.create_secret("db", {{"user": "u1"}})
        assert client.get_secret("db").secret_values == {{"user": "u1"}}
        client.update_secret("db", {{"user": "u2"}})
        """
        + (fork if how == "os.fork" else pool)
        + """
        print("parent", client.get_secret("db").secret_values["user"])
        """,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    child = "child 0" if how == "os.fork" else "child ['u2', 'u2', 'u2', 'u2']"
    assert result.stdout.split("\n")[:2] == [child, "parent u2"]


def test_a_client_around_a_store_object_refuses_use_after_fork():
    """A store object holds the parent's connections: the child gets a clear error, no hang."""
    result = run_script(
        """
        import os
        from stacksecrets import Client, ClosedError
        from stacksecrets.stores import MemoryStore
        client = Client(MemoryStore())
        client.create_secret("db", {"user": "u"})
        pid = os.fork()
        if pid == 0:
            try:
                client.get_secret("db")
            except ClosedError as exc:
                os._exit(0 if "fork" in str(exc) else 4)
            os._exit(5)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_ctrl_c_in_a_blocking_validation_stops_its_store_calls():
    """Ctrl-C (SIGINT) during ``Client.validate_stack`` cancels the validation before the
    caller sees ``KeyboardInterrupt``: no store call starts afterwards."""
    result = run_script(
        """
        import os, signal, threading, time
        import anyio
        from stacksecrets import Client, Component, Stack
        from stacksecrets.stores import MemoryStore

        class SlowStore(MemoryStore):
            calls = 0
            async def get_secret(self, name):
                SlowStore.calls += 1
                await anyio.sleep(0.2)
                return await super().get_secret(name)

        store = SlowStore()
        config = {f"k{i}": "{{s%d.key}}" % i for i in range(100)}
        stack = Stack("s", [Component("orchestrator", "local", "o", config)])
        client = Client(store, max_concurrency=1)
        for i in range(100):
            client.create_secret(f"s{i}", {"key": "v"})
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
        started = time.monotonic()
        try:
            client.validate_stack(stack, level="SECRET_AND_KEY_EXISTS")
        except KeyboardInterrupt:
            pass
        interrupted = time.monotonic() - started
        before = SlowStore.calls
        time.sleep(1.0)
        print(before, SlowStore.calls, round(interrupted))
        """
    )
    assert result.returncode == 0, result.stderr
    before, after, seconds = (int(x) for x in result.stdout.split())
    assert before == after, "store calls went on after Ctrl-C"
    assert 0 < before < 100
    assert seconds < 5
