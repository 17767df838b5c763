"""Writer processes for the file store's multi-process tests.

``python _store_writer.py PATH GO_FILE`` (with the project's python) imports stacksecrets once,
prints ``started``, then forks one writer process per command line on stdin (forking saves a
slow Python start-up per process; no event loop or thread runs in this parent, so forking is
safe). Each command answers ``child PID`` at once; the child prints its own line later, or
``failed PID`` (and a traceback on stderr) if it fails.

``create BACKEND PREFIX COUNT``
    The child waits until GO_FILE exists (so that all writers start together), creates COUNT
    secrets named ``PREFIX-0`` ... with one key each, prints ``done PID`` and exits.

``churn BACKEND SIZE``
    The child rewrites the existing secret ``churn`` forever, as
    ``{"n": str(i), "blob": letter(i) * SIZE}`` with ``i`` counting on from the stored ``n``, and
    prints ``ready PID`` after its first write. It is meant to be killed.

``reap PID``
    Waits for that child to end; prints ``reaped PID EXIT_STATUS``.
"""

from __future__ import annotations

import os
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
    print(f"done {os.getpid()}", flush=True)


async def churn(path: str, size: int) -> None:
    async with FileStore(path) as store:
        n = int((await store.get_secret("churn")).values["n"])  # go on from the last one
        first = n + 1
        while True:
            n += 1
            await store.update_secret("churn", {"n": str(n), "blob": letter(n) * size})
            if n == first:
                print(f"ready {os.getpid()}", flush=True)


def child(path: str, go_file: Path, command: str, args: list[str]) -> None:
    if command == "create":
        backend, prefix, count = args
        while not go_file.exists():
            time.sleep(0.002)
        anyio.run(create, path, prefix, int(count), backend=backend)
    else:
        backend, size = args
        anyio.run(churn, path, int(size), backend=backend)


def main(path: str, go_file: Path) -> None:
    print("started", flush=True)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "reap":
            _, status = os.waitpid(int(args[0]), 0)
            print(f"reaped {args[0]} {status}", flush=True)
            continue
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                child(path, go_file, command, args)
                status = 0
            except BaseException:
                print(f"failed {os.getpid()}", flush=True)
                raise
            finally:
                os._exit(status)
        print(f"child {pid}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
