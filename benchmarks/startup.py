"""Start-up of the ``stacksecrets`` command against importing the libraries it needs.

    python benchmarks/startup.py [RUNS]       # default 9 runs of each command

Each pair of commands runs side by side (interleaved, ``RUNS`` times each, after one warm-up),
and the ratios of their minimum wall-clock times and of their minimum CPU times (user+sys of the
child process) are printed (the minimum is the run the machine disturbed least; on a loaded
machine the CPU ratio is the steadier one). Byte-code is written on the warm-up run, as after
an install (``PYTHONDONTWRITEBYTECODE`` is dropped). The targets (issue 20): ``stacksecrets
--help`` within 2.5x ``import click``, and
validating the example stacks within 2.0x ``import click, attrs, anyio, yaml``. A third line
shows what starting anyio's asyncio backend alone costs over that baseline (no target). With
``hyperfine`` installed, ``hyperfine -N -w 1 -r 9 CMD1 CMD2`` measures the same pairs.
"""

from __future__ import annotations

import os
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def pairs(store: Path) -> list[tuple[str, list[str], list[str], float | None]]:
    """(name, command, baseline, target ratio; ``None``: shown, not a target)."""
    validate = [
        PY,
        "-m",
        "stacksecrets",
        "validate",
        str(ROOT / "examples" / "stacks"),
        "--store",
        store.as_uri(),
    ]
    return [
        (
            "stacksecrets --help",
            [PY, "-m", "stacksecrets", "--help"],
            [PY, "-c", "import click"],
            2.5,
        ),
        ("validate examples", validate, [PY, "-c", "import click, attrs, anyio, yaml"], 2.0),
        # Not a target: what running anything on anyio's asyncio backend costs over the
        # baseline (asyncio and the backend's imports), the part of a validation's start-up
        # no change of ours removes.
        (
            "anyio.run (floor)",
            [PY, "-c", "import click, attrs, anyio, yaml; anyio.run(anyio.sleep, 0)"],
            [PY, "-c", "import click, attrs, anyio, yaml"],
            None,
        ),
    ]


def best(command: list[str], times: list[tuple[float, float]], env: dict[str, str]) -> None:
    """Run ``command`` once; append (wall seconds, user+sys CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    times.append((wall, cpu))


def main(runs: int = 9) -> int:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STACKSECRETS_", "ZENML_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    failed = False
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "secrets.json"
        shutil.copy(ROOT / "examples" / "secrets.json", store)
        store.chmod(stat.S_IRUSR | stat.S_IWUSR)
        env["STACKSECRETS_CACHE_DIR"] = folder
        for name, command, baseline, target in pairs(store):
            ours: list[tuple[float, float]] = []
            theirs: list[tuple[float, float]] = []
            best(command, [], env)
            best(baseline, [], env)
            for _ in range(runs):
                best(command, ours, env)
                best(baseline, theirs, env)
            wall = (min(w for w, _ in ours), min(w for w, _ in theirs))
            cpu = (min(c for _, c in ours), min(c for _, c in theirs))
            ratio = wall[0] / wall[1]
            cpu_ratio = cpu[0] / cpu[1] if cpu[1] else float("inf")
            failed |= target is not None and ratio > target
            print(
                f"{name:18} {wall[0] * 1000:6.1f} ms vs {' '.join(baseline[1:]):35} "
                f"{wall[1] * 1000:6.1f} ms: {ratio:.2f}x wall, CPU {cpu[0] * 1000:.0f} vs "
                f"{cpu[1] * 1000:.0f} ms: {cpu_ratio:.2f}x "
                + (f"(target {target}x)" if target is not None else "(not a target)")
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 9))
