"""A fleet at once: N fresh clients against one store behind a quota-enforcing proxy.

    nox -s bench -- --fleet                       # ZenML and AWS, 60 and 200 clients
    nox -s bench -- --fleet --clients 60 --store zenml
    nox -s bench -- --fleet --steps 40            # also the step-pod fleet (processes)
    nox -s bench -- --fleet --plot                # plot the saved before/after results

Every client is a fresh pod: its own ``AsyncClient`` and store (its own connections), the
metadata cache off (a fresh machine has none), the ZenML API token from the environment
(``ZENML_STORE_API_TOKEN``, no login). All start together and validate one stack at the key
level. Between them and the real store sits tests/fault_proxy.py as its own process: 50 ms of
round trip and a token bucket per quota, answering ``429`` with ``Retry-After: 1`` beyond it.

- ZenML: a real ZenML 0.98 server, quota 20 requests/s for every request. Each client's stack
  references 10 secrets (2 keys each): 1 list call and 10 reads.
- AWS: moto's server, AWS's per-API quotas scaled down by 10 (``BatchGetSecretValue`` and
  ``ListSecrets`` 10/s, ``GetSecretValue``/``DescribeSecret`` 1,000/s). Each client's stack
  references 40 secrets: 2 ``BatchGetSecretValue`` calls of 20 names.
- Step pods (``--steps N``): N processes at once, each reading 3 secrets through the sync
  ``Client`` from the ZenML server behind the same 20 requests/s quota.

Reported per run: clients, quota, calls needed (one unthrottled client's requests times N),
requests sent, throttled answers (the proxy's 429s), failed clients (an exception, or a store
error in the report), the last client's finish and that time over the quota bound (calls
needed / quota). ``--label before`` with ``PYTHONPATH=/work/main/src`` measures the engine
before this change; results go to benchmarks/results/fleet-LABEL.json.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _infra
import aws_bench
import scenarios
from run import _seed_secrets

from stacksecrets import AsyncClient, Component, ProblemKind, Stack, ValidationLevel
from stacksecrets.stores import AwsSecretsManagerStore, ZenMLStore

KEY = ValidationLevel.SECRET_AND_KEY_EXISTS
RESULTS = Path(__file__).resolve().parent / "results"
PLOT = _infra.ROOT / "docs" / "bench" / "fleet.png"
RTT_MS = 50
ZENML_QUOTA = 20.0
AWS_QUOTAS = {
    "BatchGetSecretValue": 10.0,
    "ListSecrets": 10.0,
    "GetSecretValue": 1000.0,
    "DescribeSecret": 1000.0,
}
ZENML_SECRETS = 10
AWS_SECRETS = 40
STEP_SECRETS = 3
DEADLINE = 900.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def stack_of(count: int) -> Stack:
    config = {
        f"f{i:02d}_{key}": "{{" + scenarios.secret_name(i) + "." + key + "}}"
        for i in range(count)
        for key in scenarios.KEYS
    }
    return Stack("fleet", [Component("experiment_tracker", scenarios.FLAVOR, "t", config)])


# -- the quota proxy -----------------------------------------------------------------------


class QuotaProxy:
    """tests/fault_proxy.py as a process: latency and quotas; ``stats()`` reads its counters."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    def stats(self, *, reset: bool = False) -> dict[str, int]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("stats\n" + ("reset\n" if reset else ""))
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if reset:
            self.process.stdout.readline()  # the counters after the reset: zero
        return dict(json.loads(line.split(" ", 1)[1]))


@contextlib.contextmanager
def quota_proxy(target_port: int, quotas: dict[str, float]) -> Iterator[QuotaProxy]:
    quota_args = [
        f"--quota={op}={rate}" if op else f"--quota={rate}" for op, rate in quotas.items()
    ]
    with _infra.proxy_process(target_port, RTT_MS, "--retry-after=1", *quota_args) as process:
        yield QuotaProxy(process, _infra.proxy_port(process, "quota proxy"))


# -- one fleet -----------------------------------------------------------------------------


def _failed(report: Any) -> bool:
    return any(p.kind in {ProblemKind.STORE_ERROR, ProblemKind.FORBIDDEN} for p in report.problems)


#: ``--share``: each client's ``rate_limit`` is its share of the quota (a known quota).
SHARE: list[float | None] = [None]


async def fleet(
    clients: int, open_store: Callable[[], Any], stack: Stack
) -> tuple[list[float], int, int, int]:
    """Finish times, failed clients, and the throttled answers and retries clients counted."""
    finishes: list[float] = []
    failed = throttled = retries = 0
    reasons: collections.Counter[str] = collections.Counter()
    # The stores (a botocore client: ~0.3 s of CPU each) are made before the start: pods have
    # their own CPUs, the clients of this benchmark share two cores.
    stores = [open_store() for _ in range(clients)]
    started = anyio.current_time()
    go = anyio.Event()

    async def one() -> None:
        nonlocal failed, throttled, retries
        store = stores.pop()
        try:
            await go.wait()
            paced = {} if SHARE[0] is None else {"rate_limit": SHARE[0] / clients}
            async with (
                store,
                AsyncClient(store, metadata_cache=False, deadline=DEADLINE, **paced) as c,
            ):
                report = await c.validate_stack(stack, level=KEY)
            if _failed(report):
                failed += 1
                problem = next(p for p in report.problems if p.kind is not ProblemKind.MISSING_KEY)
                reasons[problem.detail.split(": ", 1)[-1][:120]] += 1
            throttled += getattr(report.stats, "throttled", 0)
            retries += getattr(report.stats, "retries", 0)
        except Exception as exc:  # noqa: BLE001 - a failed client is a result here
            failed += 1
            log(f"client failed: {type(exc).__name__}: {str(exc)[:200]}")
        finishes.append(anyio.current_time() - started)

    async with anyio.create_task_group() as group:
        for _ in range(clients):
            group.start_soon(one)
        go.set()
    for reason, count in reasons.most_common(5):
        log(f"{count} clients failed with: {reason}")
    return finishes, failed, throttled, retries


def run_fleet(
    name: str,
    clients: int,
    proxy: QuotaProxy,
    open_store: Callable[[], Any],
    stack: Stack,
    quota: float,
) -> dict[str, Any]:
    # One client alone, to count the calls one client needs.
    anyio.run(fleet, 1, open_store, stack)
    alone = proxy.stats(reset=True)
    per_client = alone["requests"] - alone["throttled"]
    time.sleep(2)  # the bucket fills again
    proxy.stats(reset=True)
    wall = time.perf_counter()
    finishes, failed, client_throttled, retries = anyio.run(fleet, clients, open_store, stack)
    wall = time.perf_counter() - wall
    sent = proxy.stats(reset=True)
    needed = per_client * clients
    bound = needed / quota
    row = {
        "store": name,
        "clients": clients,
        "quota": quota,
        "calls_needed": needed,
        "requests": sent["requests"],
        "throttled": sent["throttled"],
        "client_throttled": client_throttled,
        "retries": retries,
        "failed": failed,
        "last_finish": round(max(finishes), 2),
        "bound": round(bound, 2),
        "ratio": round(max(finishes) / bound, 2),
        "wall": round(wall, 2),
    }
    log(json.dumps(row))
    return row


# -- the stores ----------------------------------------------------------------------------


def zenml_fleets(counts: list[int], steps: int) -> list[dict[str, Any]]:
    rows = []
    with _infra.zenml_server() as server:
        anyio.run(_seed_secrets, server, max(ZENML_SECRETS, STEP_SECRETS))
        rest = server.rest()
        token = str(rest.headers["Authorization"]).split(" ", 1)[1]
        rest.close()
        with quota_proxy(server.port, {"": ZENML_QUOTA}) as proxy:
            env = {"ZENML_STORE_URL": proxy.url, "ZENML_STORE_API_TOKEN": token}

            def open_store() -> ZenMLStore:
                return ZenMLStore.from_url("zenml://", environ=env)

            stack = stack_of(ZENML_SECRETS)
            rows.extend(
                run_fleet("zenml", count, proxy, open_store, stack, ZENML_QUOTA) for count in counts
            )
            if steps:
                rows.append(step_pods(steps, proxy, env))
    return rows


STEP = """
import sys
from stacksecrets import Client
with Client("zenml://", deadline=%(deadline)s, metadata_cache=False) as client:
    for index in range(%(count)s):
        client.get_secret("s%%04d" %% index)
"""


def step_pods(count: int, proxy: QuotaProxy, env: dict[str, str]) -> dict[str, Any]:
    """``count`` processes at once, each reading a few secrets through the sync Client."""
    script = STEP % {"deadline": DEADLINE, "count": STEP_SECRETS}
    full_env = {**os.environ, **env, "STACKSECRETS_METADATA_CACHE": "0"}
    proxy.stats(reset=True)
    alone_started = time.perf_counter()
    subprocess.run([sys.executable, "-c", script], env=full_env, check=True)
    alone_seconds = time.perf_counter() - alone_started
    alone = proxy.stats(reset=True)
    per_pod = alone["requests"] - alone["throttled"]
    time.sleep(2)
    proxy.stats(reset=True)
    started = time.perf_counter()
    processes = [
        subprocess.Popen([sys.executable, "-c", script], env=full_env, stderr=subprocess.PIPE)
        for _ in range(count)
    ]
    finishes, failed = [], 0
    pending = dict(enumerate(processes))
    while pending:
        for index, process in list(pending.items()):
            if process.poll() is not None:
                finishes.append(time.perf_counter() - started)
                failed += process.returncode != 0
                del pending[index]
        time.sleep(0.02)
    sent = proxy.stats(reset=True)
    needed = per_pod * count
    row = {
        "store": "zenml-steps",
        "clients": count,
        "quota": ZENML_QUOTA,
        "calls_needed": needed,
        "requests": sent["requests"],
        "throttled": sent["throttled"],
        "failed": failed,
        "last_finish": round(max(finishes), 2),
        "bound": round(needed / ZENML_QUOTA, 2),
        "ratio": round(max(finishes) / (needed / ZENML_QUOTA), 2),
        # One pod alone (process start-up included): the floor when the quota is not the limit.
        "alone": round(alone_seconds, 2),
    }
    log(json.dumps(row))
    return row


def aws_fleets(counts: list[int]) -> list[dict[str, Any]]:
    rows = []
    with aws_bench.moto_server() as moto:
        aws_bench.seed(moto.url, AWS_SECRETS)
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": aws_bench.REGION,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        with quota_proxy(moto.port, AWS_QUOTAS) as proxy:

            def open_store() -> AwsSecretsManagerStore:
                return AwsSecretsManagerStore(endpoint_url=proxy.url, region=aws_bench.REGION)

            stack = stack_of(AWS_SECRETS)
            quota = AWS_QUOTAS["BatchGetSecretValue"]
            rows.extend(
                run_fleet("aws", count, proxy, open_store, stack, quota) for count in counts
            )
    return rows


# -- report --------------------------------------------------------------------------------


def print_table(rows: list[dict[str, Any]], label: str) -> None:
    print(f"\n{label}:")
    print(
        "| store | clients | quota/s | calls needed | requests | throttled | failed"
        " | last / bound |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['store']} | {r['clients']} | {r['quota']:g} | {r['calls_needed']} | "
            f"{r['requests']} | {r['throttled']} | {r['failed']} | "
            f"{r['last_finish']:.1f} s / {r['bound']:.1f} s = {r['ratio']:.2f}x |"
        )


def plot() -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    runs = {}
    for label in ("before", "after"):
        path = RESULTS / f"fleet-{label}.json"
        if path.exists():
            runs[label] = json.loads(path.read_text())["rows"]
    if not runs:
        sys.exit("no results: run the benchmark first")
    names = [f"{r['store']}\n{r['clients']} clients" for r in next(iter(runs.values()))]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(runs)
    for i, (label, rows) in enumerate(runs.items()):
        xs = [x + i * width for x in range(len(rows))]
        left.bar(xs, [r["ratio"] for r in rows], width, label=label)
        right.bar(xs, [r["failed"] / r["clients"] * 100 for r in rows], width, label=label)
    for axis in (left, right):
        axis.set_xticks([x + width * (len(runs) - 1) / 2 for x in range(len(names))], names)
        axis.legend()
    left.axhline(1.2, color="grey", linestyle="--", linewidth=1)
    left.set_ylabel("last finish / quota bound")
    right.set_ylabel("failed clients (%)")
    fig.suptitle("Fresh clients at once behind a quota (429 + Retry-After: 1, 50 ms)")
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=110)
    log(f"plot: {PLOT}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[60, 200])
    parser.add_argument("--store", choices=["zenml", "aws", "all"], default="all")
    parser.add_argument("--steps", type=int, default=0, help="also N step-pod processes")
    parser.add_argument("--label", default="after")
    parser.add_argument("--plot", action="store_true", help="only plot saved results")
    parser.add_argument(
        "--share", action="store_true", help="each client's rate_limit: quota / clients"
    )
    args = parser.parse_args()
    if args.plot:
        plot()
        return
    os.environ["STACKSECRETS_METADATA_CACHE"] = "0"
    if args.share:
        SHARE[0] = ZENML_QUOTA if args.store == "zenml" else AWS_QUOTAS["BatchGetSecretValue"]
    rows: list[dict[str, Any]] = []
    runs: list[Callable[[], Awaitable[Any]] | Any] = []
    if args.store in {"zenml", "all"}:
        runs.append(lambda: zenml_fleets(args.clients, args.steps))
    if args.store in {"aws", "all"}:
        runs.append(lambda: aws_fleets(args.clients))
    for run in runs:
        rows.extend(run())
    print_table(rows, args.label)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"fleet-{args.label}.json"
    out.write_text(json.dumps({"label": args.label, "rows": rows}, indent=2) + "\n")
    log(f"results: {out}")


if __name__ == "__main__":
    main()
