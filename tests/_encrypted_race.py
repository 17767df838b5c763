"""One side of the encrypted file store's read/write race (tests/test_file_local_trust.py).

``python _encrypted_race.py write|read PATH SECONDS`` (with ``STACKSECRETS_FILE_KEY`` set) runs
for SECONDS: ``write`` updates the secret ``race`` in a loop, ``read`` reads it in a loop with a
fresh store each time (no value cache). Prints ``count N`` when done; on any stacksecrets error
prints ``error TYPE`` (never the message: it is checked for content elsewhere) and exits 1.
"""

from __future__ import annotations

import sys
import time

import anyio

from stacksecrets import StackSecretsError
from stacksecrets.stores._file import FileStore


async def run(mode: str, path: str, seconds: float) -> int:
    count = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        async with FileStore(path) as store:
            if mode == "write":
                await store.update_secret("race", {"n": str(count)})
            else:
                await store.get_secret("race")
        count += 1
    return count


def main() -> None:
    mode, path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    try:
        count = anyio.run(run, mode, path, seconds)
    except StackSecretsError as exc:
        print(f"error {type(exc).__name__}: {exc}", flush=True)
        sys.exit(1)
    print(f"count {count}", flush=True)


if __name__ == "__main__":
    main()
