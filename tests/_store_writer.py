"""A writer process for the file store's multi-process tests (run with the project's python).

Each command first prints ``waiting`` and waits until GO_FILE exists, so that the test can
start processes ahead of time (Python's start-up is slow) and let them go together.

``python _store_writer.py create PATH GO_FILE BACKEND PREFIX COUNT``
    Creates COUNT secrets named ``PREFIX-0`` ... with one key each, prints ``done``.

``python _store_writer.py churn PATH GO_FILE BACKEND SIZE``
    Rewrites the existing secret ``churn`` forever, as ``{"n": str(i), "blob": letter(i) * SIZE}``
    with ``i`` counting on from the stored ``n``, and prints ``ready`` after the first write. It
    is meant to be killed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import anyio

from stacksecrets.stores._file import FileStore


def letter(n: int) -> str:
    return chr(ord("a") + n % 26)


async def create(path: str, prefix: str, count: int) -> None:
    async with FileStore(path) as store:
        for i in range(count):
            await store.create_secret(f"{prefix}-{i}", {"value": f"{prefix}/{i}"})
    print("done", flush=True)


async def churn(path: str, size: int) -> None:
    async with FileStore(path) as store:
        n = int((await store.get_secret("churn")).values["n"])  # go on from the last one
        first = n + 1
        while True:
            n += 1
            await store.update_secret("churn", {"n": str(n), "blob": letter(n) * size})
            if n == first:
                print("ready", flush=True)


def main(argv: list[str]) -> None:
    command, path, go_file, backend = argv[0], argv[1], Path(argv[2]), argv[3]
    print("waiting", flush=True)
    while not go_file.exists():
        time.sleep(0.005)
    if command == "create":
        anyio.run(create, path, argv[4], int(argv[5]), backend=backend)
    elif command == "churn":
        anyio.run(churn, path, int(argv[4]), backend=backend)
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
