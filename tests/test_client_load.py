"""The blocking ``Client`` under load: 16 threads reading many names at once.

Every thread reads every name (each in its own order, so threads ask for the same name at the
same moment): every answer must be right, and the store must be asked for each name once
within the cache lifetime, however many threads want it.

The default run does this with 1,000 names on the local file store and 100 names on the real
ZenML server; ``nox -s slow`` runs the ZenML case with 1,000 names (seeding them costs the
server about a minute).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import pytest

from stacksecrets import Client, Secret
from stacksecrets.stores import FileStore
from stacksecrets.stores._zenml import ZenMLStore
from zenml_fixtures import ZenMLServer

THREADS = 16


def value_of(name: str) -> dict[str, str]:
    return {"user": f"user-of-{name}", "password": f"password-of-{name}"}


def read_everything(client: Client, names: list[str]) -> tuple[int, int]:
    """Every thread reads every name in its own shuffled order; (right answers, reads)."""
    right = 0
    lock = threading.Lock()

    def worker(seed: int) -> None:
        nonlocal right
        order = list(names)
        random.Random(seed).shuffle(order)  # noqa: S311 - an order, not a secret
        correct = 0
        for name in order:
            secret = client.get_secret(name)
            correct += secret.name == name and secret.secret_values == value_of(name)
        with lock:
            right += correct

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(worker, range(THREADS)))
    return right, THREADS * len(names)


class CountingFileStore(FileStore):
    """The real file store, counting the reads the engine asks of it."""

    reads = 0

    async def get_secret(self, name: str) -> Secret:
        self.reads += 1
        return await super().get_secret(name)


@pytest.fixture
def thousand_secrets(tmp_path: Path) -> tuple[Path, list[str]]:
    """A store file with 1,000 secrets (written directly, in the store's format)."""
    names = [f"name-{i:04d}" for i in range(1000)]
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"version": 1, "secrets": {n: value_of(n) for n in names}}))
    path.chmod(0o600)
    return path, names


@pytest.mark.slow
def test_sixteen_threads_read_1000_names_from_the_file_store(
    thousand_secrets: tuple[Path, list[str]],
) -> None:
    """16 threads x 1,000 names on the file store: 16,000 right answers, 1,000 store reads."""
    path, names = thousand_secrets
    store = CountingFileStore(path)
    with Client(store) as client:
        right, reads = read_everything(client, names)
    anyio.run(store.aclose)
    assert right == reads == 16_000
    assert store.reads == 1000


def _seed(server: ZenMLServer, names: list[str]) -> list[str]:
    """Create the secrets through the REST API, eight at a time; their ids."""
    return server.create_secrets({name: value_of(name) for name in names})


@pytest.fixture
def zenml_names(
    request: pytest.FixtureRequest, zenml_server: ZenMLServer, unique_prefix: str
) -> Iterator[list[str]]:
    """``request.param`` secrets on the real ZenML server, deleted afterwards."""
    names = [f"{unique_prefix}load-{i:04d}" for i in range(request.param)]
    ids = _seed(zenml_server, names)
    try:
        yield names
    finally:
        for secret_id in ids:
            zenml_server.delete_secret(secret_id)


@pytest.mark.zenml
@pytest.mark.parametrize(
    "zenml_names",
    [pytest.param(100, id="100"), pytest.param(1000, id="1000", marks=pytest.mark.slow)],
    indirect=True,
)
def test_sixteen_threads_read_every_name_from_zenml_once(
    zenml_server: ZenMLServer, zenml_names: list[str]
) -> None:
    """16 threads x N names on the real ZenML server: every answer right, and exactly two
    HTTP requests per name (find its id, read it), whatever the number of threads."""
    store = ZenMLStore(
        zenml_server.url,
        username=zenml_server.username,
        password=zenml_server.password,
        token=zenml_server.admin_token,
    )
    with Client(store) as client:
        right, reads = read_everything(client, zenml_names)
        again, _ = read_everything(client, zenml_names[:10])  # all from the cache
    anyio.run(store.aclose)
    assert right == reads == THREADS * len(zenml_names)
    assert again == THREADS * 10
    assert store.http_calls == 2 * len(zenml_names)
