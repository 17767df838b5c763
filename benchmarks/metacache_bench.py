"""Key-level validation with the shared metadata cache, each validation in a new process.

    python benchmarks/metacache_bench.py RUN SPEC.json   # (internal) one validation, JSON out

``measure`` runs, per repetition, a fresh cache folder and three new processes: SECRET_EXISTS,
then the key level cold (empty cache), then the key level warm (the cache the cold one wrote).
Each process logs in before its clock starts (as the other rows' warm store), then times one
validation of the stacks and counts its HTTP calls.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROWS = ("SECRET_EXISTS", "SECRET_AND_KEY_EXISTS/cold", "SECRET_AND_KEY_EXISTS/warm")


def measure(
    url: str, username: str, password: str, configurations: list[dict[str, str]], reps: int
) -> dict[str, Any]:
    """Medians (and every run) of the three rows; seconds and HTTP calls per run."""
    runs: dict[str, list[dict[str, float]]] = {row: [] for row in ROWS}
    with tempfile.TemporaryDirectory(prefix="stacksecrets-metacache-bench-") as work:
        spec_path = Path(work) / "spec.json"
        for rep in range(reps):
            cache = Path(work) / f"cache{rep}"
            for row in ROWS:
                spec = {
                    "url": url,
                    "username": username,
                    "password": password,
                    "level": row.split("/")[0],
                    "configurations": configurations,
                }
                spec_path.write_text(json.dumps(spec))
                env = {
                    **os.environ,
                    "STACKSECRETS_CACHE_DIR": str(cache),
                    "STACKSECRETS_METADATA_CACHE": "1",
                }
                result = subprocess.run(
                    [sys.executable, __file__, "RUN", str(spec_path)],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=600,
                )
                if result.returncode != 0:
                    sys.exit(f"metacache bench run failed:\n{result.stderr[-3000:]}")
                runs[row].append(json.loads(result.stdout.strip().splitlines()[-1]))
    return {
        row: {
            "seconds": statistics.median(r["seconds"] for r in rs),
            "calls": statistics.median(r["calls"] for r in rs),
            "metadata_hits": statistics.median(r["metadata_hits"] for r in rs),
            "runs": rs,
        }
        for row, rs in runs.items()
    }


def _run(spec_path: Path) -> None:
    import anyio

    from stacksecrets import AsyncClient, Component, Stack, ValidationLevel
    from stacksecrets.stores._zenml import ZenMLStore

    spec = json.loads(spec_path.read_text())
    stacks = [
        Stack(f"b{i}", [Component("experiment_tracker", "x", "t", c)])
        for i, c in enumerate(spec["configurations"])
    ]

    async def main() -> dict[str, float]:
        store = ZenMLStore(
            spec["url"], username=spec["username"], password=spec["password"], max_connections=16
        )
        async with store:
            await store.secrets_exist(["warm-up"])  # log in before the clock starts
            before = store.http_calls
            started = time.perf_counter()
            async with AsyncClient(store, level=ValidationLevel.parse(spec["level"])) as client:
                report = await client.validate_stacks(stacks)
            return {
                "seconds": time.perf_counter() - started,
                "calls": store.http_calls - before,
                "metadata_hits": report.stats.metadata_hits,
            }

    print(json.dumps(anyio.run(main)))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "RUN":
        _run(Path(sys.argv[2]))
    else:
        sys.exit(__doc__)
