"""stacksecrets on AWS Secrets Manager (moto's server) against a sequential boto3 validator and
a hand-written floor, at 0 and 50 ms of round trip.

    nox -s bench -- --aws           # full: 5 repetitions, benchmarks/results/tmp/aws.json
    nox -s bench -- --aws --quick   # 50 ms only, 2 repetitions
    python benchmarks/aws_bench.py --rtt 50 --no-sequential --reps 9 --out OUT.json
                                    # side by side: run once per version (PYTHONPATH)

Contenders, per level, each from stacks in hand to an answer per reference:

- ``stacksecrets``: a fresh ``AsyncClient`` (empty cache) on one ``AwsSecretsManagerStore``,
  with the defaults (``max_concurrency`` 16, the store's 20 connections:
  ``stacksecrets_c16``) and with 32 of each (``stacksecrets_c32``), where scenario (b)'s 17
  batch reads are all in flight without the engine's batch slack.
- ``sequential``: what a naive validator does with boto3: one ``GetSecretValue`` per unique
  (name, key) pair at the key level, one ``DescribeSecret`` per unique name at the existence
  level, one after another.
- ``floor``: the same batched calls stacksecrets plans (``ListSecrets`` with 10 names per
  filter, ``BatchGetSecretValue`` with 20 ids), every one in flight at once on boto3 threads,
  with exact-name and key checks but nothing else: no cache, no retries, no report.

The latency proxy (tests/fault_proxy.py, its own process) adds the round trip to every request.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import boto3
import botocore.config
import botocore.exceptions

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _infra
import scenarios

from stacksecrets import AsyncClient, Component, Stack, ValidationLevel
from stacksecrets.stores import AwsSecretsManagerStore

KEY = ValidationLevel.SECRET_AND_KEY_EXISTS
EXISTS = ValidationLevel.SECRET_EXISTS
REGION = "eu-west-1"
REF = re.compile(r"\{\{\s*([^.{}\s]+)\.([^{}\s]+)\s*\}\}")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@contextlib.contextmanager
def moto_server() -> Iterator[types.SimpleNamespace]:
    port = _infra.free_port()
    binary = Path(sys.executable).with_name("moto_server")
    with tempfile.TemporaryFile() as log_file:
        process = subprocess.Popen(
            [str(binary), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            server = types.SimpleNamespace(port=port, url=f"http://127.0.0.1:{port}")
            deadline = time.monotonic() + 60
            while True:
                try:
                    admin(server.url).list_secrets(MaxResults=1)
                    break
                except Exception:  # noqa: BLE001 - not up yet
                    if time.monotonic() > deadline or process.poll() is not None:
                        sys.exit("moto_server did not start")
                    time.sleep(0.2)
            yield server
        finally:
            process.terminate()
            process.wait(10)


def admin(url: str, pool: int = 10) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=botocore.config.Config(max_pool_connections=pool, retries={"total_max_attempts": 1}),
    )


def seed(url: str, count: int) -> None:
    client = admin(url, pool=8)

    def create(index: int) -> None:
        # moto's secret dict is not thread-safe: a concurrent create can answer 500. Retry.
        for _ in range(10):
            try:
                client.create_secret(
                    Name=scenarios.secret_name(index),
                    SecretString=json.dumps(scenarios.secret_values(index)),
                )
            except client.exceptions.ResourceExistsException:
                return
            except botocore.exceptions.ClientError as exc:
                if exc.response["ResponseMetadata"]["HTTPStatusCode"] != 500:
                    raise
                time.sleep(0.05)
            else:
                return
        sys.exit(f"moto kept failing to create secret {index}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(count)))


def build_stacks() -> dict[str, list[Stack]]:
    def stack(name: str, config: dict[str, str]) -> Stack:
        return Stack(name, [Component("experiment_tracker", scenarios.FLAVOR, "t", config)])

    return {
        "a": [stack("a", scenarios.realistic_stack(broken=True))],
        "b": [stack(n, c) for n, c in scenarios.platform_stacks(50, 300).items()],
    }


def pairs_of(stacks: list[Stack]) -> list[tuple[str, str]]:
    """Unique (name, key) pairs, in order of appearance."""
    found: dict[tuple[str, str], None] = {}
    for stack in stacks:
        for component in stack.components:
            for value in component.configuration.values():
                for match in REF.finditer(str(value)):
                    found[(match.group(1), match.group(2))] = None
    return list(found)


# ---------------------------------------------------------------------- contenders


def sequential(client: Any, stacks: list[Stack], level: ValidationLevel) -> tuple[int, int]:
    """(problems, calls): one call per unique pair (key level) or name (existence)."""
    pairs = pairs_of(stacks)
    problems = calls = 0
    if level is EXISTS:
        for name in dict.fromkeys(n for n, _ in pairs):
            calls += 1
            try:
                client.describe_secret(SecretId=name)
            except client.exceptions.ResourceNotFoundException:
                problems += 1
        return problems, calls
    for name, key in pairs:
        calls += 1
        try:
            answer = client.get_secret_value(SecretId=name)
        except client.exceptions.ResourceNotFoundException:
            problems += 1
            continue
        if key not in json.loads(answer["SecretString"]):
            problems += 1
    return problems, calls


def floor(
    client: Any, pool: ThreadPoolExecutor, stacks: list[Stack], level: ValidationLevel
) -> tuple[int, int]:
    """(problems, calls): stacksecrets' batched calls, all in flight at once."""
    pairs = pairs_of(stacks)
    names = list(dict.fromkeys(n for n, _ in pairs))
    if level is EXISTS:
        chunks = [names[i : i + 10] for i in range(0, len(names), 10)]

        def listed(chunk: list[str]) -> set[str]:
            answer = client.list_secrets(Filters=[{"Key": "name", "Values": chunk}], MaxResults=100)
            return {entry["Name"] for entry in answer["SecretList"]} & set(chunk)

        found = set().union(*pool.map(listed, chunks))
        return sum(name not in found for name in names), len(chunks)
    chunks = [names[i : i + 20] for i in range(0, len(names), 20)]

    def read(chunk: list[str]) -> dict[str, set[str]]:
        answer = client.batch_get_secret_value(SecretIdList=chunk)
        return {e["Name"]: set(json.loads(e["SecretString"])) for e in answer["SecretValues"]}

    keys: dict[str, set[str]] = {}
    for part in pool.map(read, chunks):
        keys.update(part)
    problems = sum(1 for name, key in pairs if key not in keys.get(name, ()))
    return problems, len(chunks)


async def ours(
    store: AwsSecretsManagerStore, stacks: list[Stack], level: ValidationLevel, limit: int
) -> tuple[int, int]:
    """(problems, calls) of a fresh client: empty cache."""
    store.calls.clear()
    async with AsyncClient(store, max_concurrency=limit) as client:
        report = await client.validate_stacks(stacks, level=level)
    bad = {(p.secret, p.key) for p in report.problems}
    if level is EXISTS:
        problems = len({name for name, _ in bad})
    else:
        problems = sum((n, None) in bad or (n, k) in bad for n, k in pairs_of(stacks))
    return problems, sum(store.calls.values())


def timed(reps: int, run: Callable[[], tuple[int, int]]) -> dict[str, Any]:
    result: dict[str, Any] = interleaved(reps, {"run": run})["run"]
    return result


def interleaved(reps: int, runs: dict[str, Callable[[], tuple[int, int]]]) -> dict[str, Any]:
    """Each contender once per repetition, in turn: a load that changes during the run
    weighs on every contender alike."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    outcomes: dict[str, tuple[int, int]] = {}
    for _ in range(reps):
        for name, run in runs.items():
            started, used = time.perf_counter(), time.process_time()
            outcomes[name] = run()
            seconds[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - used)
    return {
        name: {
            "median_s": statistics.median(seconds[name]),
            "runs_s": [round(s, 4) for s in seconds[name]],
            # This process's CPU (every thread; not moto's or the proxy's): what the
            # contender costs a loaded machine, whatever the load.
            "cpu_median_s": statistics.median(cpu[name]),
            "problems": outcomes[name][0],
            "calls": outcomes[name][1],
        }
        for name in runs
    }


def measure(
    url: str, rtt: int, reps: int, stacks: dict[str, list[Stack]], *, with_sequential: bool = True
) -> list[dict[str, Any]]:
    """Every contender, scenario and level through ``url``."""
    stores = {
        16: AwsSecretsManagerStore(region=REGION, endpoint_url=url),  # the defaults
        32: AwsSecretsManagerStore(region=REGION, endpoint_url=url, max_connections=32),
    }
    client = admin(url, pool=64)
    pool = ThreadPoolExecutor(64)
    rows = []
    for scenario, chosen in stacks.items():
        for level in (KEY, EXISTS):

            def run_ours(limit: int, chosen: list[Stack] = chosen, level: Any = level) -> Any:
                return anyio.run(ours, stores[limit], chosen, level, limit)

            pairs = pairs_of(chosen)
            row: dict[str, Any] = {
                "rtt_ms": rtt,
                "scenario": scenario,
                "level": level.value,
                "pairs": len(pairs),
                "unique_secrets": len({n for n, _ in pairs}),
                **interleaved(
                    reps,
                    {
                        "stacksecrets_c16": lambda run_ours=run_ours: run_ours(16),
                        "stacksecrets_c32": lambda run_ours=run_ours: run_ours(32),
                        "floor": lambda chosen=chosen, level=level: floor(
                            client, pool, chosen, level
                        ),
                    },
                ),
                "load_average": round(os.getloadavg()[0], 1),
            }
            if with_sequential:
                row["sequential"] = timed(
                    1 if rtt and scenario == "b" else min(reps, 3),
                    lambda chosen=chosen, level=level: sequential(client, chosen, level),
                )
            for name in ("stacksecrets_c16", "stacksecrets_c32"):
                ours_s = row[name]["median_s"]
                row[name]["x_floor"] = round(ours_s / row["floor"]["median_s"], 3)
                if with_sequential:
                    row[name]["x_faster_than_sequential"] = round(
                        row["sequential"]["median_s"] / ours_s, 1
                    )
            rows.append(row)
            names = [
                n
                for n in ("stacksecrets_c16", "stacksecrets_c32", "floor", "sequential")
                if n in row
            ]
            log(
                f"rtt {rtt} ms, ({scenario}) {level.value}: "
                + ", ".join(
                    f"{n} {row[n]['median_s'] * 1000:.0f} ms/{row[n]['calls']} calls"
                    f"/{row[n]['problems']} problems/{row[n]['cpu_median_s'] * 1000:.0f} ms CPU"
                    for n in names
                )
                + f"; defaults / floor {row['stacksecrets_c16']['x_floor']:.2f}x, "
                f"32 / floor {row['stacksecrets_c32']['x_floor']:.2f}x "
                f"(load average {row['load_average']})"
            )
    pool.shutdown()
    for store in stores.values():
        anyio.run(store.aclose)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rtt", type=int, action="append", help="round trip(s) in ms")
    parser.add_argument("--reps", type=int, help="repetitions (default 5, --quick 2)")
    parser.add_argument(
        "--no-sequential",
        action="store_true",
        help="leave out the sequential validator (minutes at 50 ms): for side-by-side runs",
    )
    parser.add_argument("--out", type=Path, help="the JSON results (default results/tmp/aws.json)")
    args = parser.parse_args()
    rtts = [50] if args.quick else args.rtt or [0, 50]
    reps = args.reps or (2 if args.quick else 5)
    stacks = build_stacks()
    results: dict[str, Any] = {"mode": "quick" if args.quick else "full", "runs": []}
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.pop("AWS_PROFILE", None)
    # moto takes any key; the store reads them through the standard chain, like boto3.
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    with moto_server() as server:
        log(f"moto on {server.url}; seeding 300 secrets")
        seed(server.url, 300)
        for rtt in rtts:
            with _infra.latency(server, rtt) as url:  # type: ignore[arg-type]
                results["runs"].extend(
                    measure(url, rtt, reps, stacks, with_sequential=not args.no_sequential)
                )
    out = args.out or _infra.ROOT / "benchmarks" / "results" / "tmp" / "aws.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
