"""One real ZenML pipeline run of a 20-reference stack at 50 ms round trip: the time spent
validating secrets with ZenML's own check, and with stacksecrets' ``on_init`` hook.

    STACKSECRETS_ZENML_PYTHON=~/.cache/stacksecrets/zenml-0.98.0/bin/python \\
        python benchmarks/pipeline_run.py [--reps 3] [--rtt-ms 50] [--refs 20]

A real ZenML 0.98 server (SQLite, password login) behind the latency proxy; the stack has one
component of the benchmark flavor whose ``refs`` fields each reference a different secret
(``{{bench-sNN.key}}``), all present. Each rep runs the pipeline once per mode on the local
orchestrator, in a fresh process with a fresh HOME (stacksecrets' metadata cache cold):

- ``zenml``: ``ZENML_SECRET_VALIDATION_LEVEL=SECRET_AND_KEY_EXISTS``, no hook: every call of
  ``Stack._validate_secrets`` during the run is timed and summed.
- ``stacksecrets``: ``ZENML_SECRET_VALIDATION_LEVEL=NONE``,
  ``STACKSECRETS_VALIDATION_LEVEL=SECRET_AND_KEY_EXISTS``, ``on_init=validate_active_stack_hook``:
  the hook is timed (it includes opening the client and its login).

Prints the medians side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

from _infra import ROOT, ZENML_SIDE, Server, latency, zenml_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    parser.add_argument("--refs", type=int, default=20)
    args = parser.parse_args()

    with zenml_server() as server:
        rest = server.rest()
        for i in range(1, args.refs + 1):
            answer = rest.post(
                "/secrets",
                json={"name": f"bench-s{i:02d}", "private": False, "values": {"key": f"v{i}"}},
            )
            answer.raise_for_status()
        server.zenml_cli(
            "experiment-tracker", "flavor", "register", "bench_flavor.BenchTrackerFlavor"
        )
        configuration = {
            f"f{i:02d}": f"{{{{bench-s{i:02d}.key}}}}" for i in range(1, args.refs + 1)
        }
        server.run_zenml_side("seed", {"stacks": {"bench-pipeline": configuration}})

        results: dict[str, list[dict[str, float]]] = {"zenml": [], "stacksecrets": []}
        with latency(server, args.rtt_ms) as url:
            for _rep in range(args.reps):
                for mode, runs in results.items():
                    runs.append(_one_run(server, url, mode))

    def median(mode: str, field: str) -> float:
        return statistics.median(run[field] for run in results[mode])

    zenml_s, ours_s = median("zenml", "zenml_check_s"), median("stacksecrets", "hook_s")
    print(
        f"pipeline run, {args.refs} references, {args.rtt_ms:g} ms round trip, "
        f"median of {args.reps} runs each"
    )
    print(f"{'':34}{'ZenML check':>14}{'stacksecrets':>14}")
    print(f"{'seconds validating secrets':34}{zenml_s:>14.3f}{ours_s:>14.3f}")
    calls = median("zenml", "zenml_check_calls")
    print(f"{'validations per run':34}{calls:>14.0f}{1:>14}")
    run_z, run_o = median("zenml", "run_s"), median("stacksecrets", "run_s")
    print(f"{'seconds for the whole run':34}{run_z:>14.3f}{run_o:>14.3f}")
    print(f"ratio (ZenML / stacksecrets), validating: {zenml_s / ours_s:.1f}x")
    print(json.dumps(results))


def _one_run(server: Server, url: str, mode: str) -> dict[str, float]:
    env = server.client_env(url, name=f"pipeline-{mode}")
    env["PYTHONPATH"] = f"{ROOT / 'src'}:{ZENML_SIDE}"
    env["STACKSECRETS_METADATA_CACHE"] = "0"
    if mode == "zenml":
        env["ZENML_SECRET_VALIDATION_LEVEL"] = "SECRET_AND_KEY_EXISTS"
    else:
        env["ZENML_SECRET_VALIDATION_LEVEL"] = "NONE"
        env["STACKSECRETS_VALIDATION_LEVEL"] = "SECRET_AND_KEY_EXISTS"
    with tempfile.TemporaryDirectory(prefix="bench-home-") as home:
        env["HOME"] = home
        result = subprocess.run(
            [str(server.python), str(ZENML_SIDE / "pipeline_bench.py"), mode, "bench-pipeline"],
            env=env,
            cwd=ZENML_SIDE,
            capture_output=True,
            text=True,
            check=False,
        )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        sys.exit(f"pipeline run ({mode}) failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return dict(json.loads(lines[-1]))


if __name__ == "__main__":
    main()
