"""A fleet at once: N fresh clients against one store behind a quota-enforcing proxy.

    nox -s bench -- --fleet                       # ZenML, ZenML's client, AWS, OpenBao; 60, 200
    nox -s bench -- --fleet --clients 60 --store zenml openbao
    nox -s bench -- --fleet --steps 40            # also the step-pod fleet (processes)
    nox -s bench -- --fleet --plot                # plot the saved before/after results

Every client is a fresh pod: its own ``AsyncClient`` and store (its own connections), the
metadata cache off (a fresh machine has none), the ZenML API token from the environment
(``ZENML_STORE_API_TOKEN``, no login). All start together and validate one stack at the key
level. Between them and the real store sits tests/fault_proxy.py as its own process: 50 ms of
round trip and a token bucket per quota, answering ``429`` with ``Retry-After: 1`` beyond it.

- ZenML (``zenml``): a real ZenML 0.98 server, quota 20 requests/s for every request. Each
  client's stack references 10 secrets (2 keys each): 1 list call and 10 reads.
- ZenML's own client (``zenml-client``), the comparison: the same job as ZenML resolves
  references for a step or a pipeline launch, ``Client().get_secret(name)`` of the 10 secrets
  one after the other, with ZenML's retries (urllib3: 429 retried up to 10 times,
  ``Retry-After`` obeyed), in processes of the ZenML venv (zenml_side/fleet_pods.py; 20 pods
  a process as threads, ZenML imported before the clock).
- AWS (``aws``): moto's server, AWS's per-API quotas scaled down by 10
  (``BatchGetSecretValue`` and ``ListSecrets`` 10/s, ``GetSecretValue``/``DescribeSecret``
  1,000/s). Each client's stack references 40 secrets: 2 ``BatchGetSecretValue`` calls of 20.
- OpenBao (``openbao``): a real ``bao server -dev`` (KV v2), quota 20 requests/s. Each
  client's stack references 10 secrets: 1 LIST and 10 reads.
- Step pods (``--steps N``): N processes at once, each reading 3 secrets through the sync
  ``Client`` from the ZenML server behind the same 20 requests/s quota; each process starts
  before the clock and waits for a go (start-up is the pod's own CPU, not the store's quota).

Reported per run: clients, quota, calls needed (one unthrottled client's requests times N),
requests sent (throttled ones included), throttled answers (the proxy's 429s), forwarded
requests the store answered, failed clients (an exception, or a store error in the report),
the last client's finish and that time over the quota bound (calls needed / quota).
``--label before`` with ``PYTHONPATH=/work/main/src`` measures the landed engine with this
script; results go to benchmarks/results/fleet-LABEL.json.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import multiprocessing
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
BAO_QUOTA = 20.0
BAO_SECRETS = 10
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
    clients: int, open_store: Callable[[], Any], stack: Stack, barrier: Any = None
) -> tuple[list[float], int, int, int]:
    """Finish times, failed clients, and the throttled answers and retries clients counted.
    With a ``barrier`` (one of several processes), the clients start once all are ready."""
    finishes: list[float] = []
    failed = throttled = retries = 0
    reasons: collections.Counter[str] = collections.Counter()
    # The stores (a botocore client: ~0.3 s of CPU each) are made before the start: pods have
    # their own CPUs, the clients of this benchmark share two cores.
    stores = [open_store() for _ in range(clients)]
    if barrier is not None:
        barrier.wait()
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


#: ``--processes``: the fleet's clients spread over this many processes, as pods are over
#: machines; one process of 200 clients would measure its own event loop on a shared CPU.
PROCESSES = [4]


def fleet_in_processes(
    clients: int, open_store: Callable[[], Any], stack: Stack
) -> tuple[list[float], int, int, int]:
    """``fleet`` with the clients spread over ``PROCESSES`` forked processes started together."""
    workers = min(PROCESSES[0], clients)
    if workers <= 1:
        return anyio.run(fleet, clients, open_store, stack)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(workers)
    results = context.Queue()

    def work(count: int) -> None:
        results.put(anyio.run(fleet, count, open_store, stack, barrier))

    shares = [clients // workers + (i < clients % workers) for i in range(workers)]
    processes = [context.Process(target=work, args=(share,)) for share in shares]
    for process in processes:
        process.start()
    parts = [results.get() for _ in processes]
    for process in processes:
        process.join()
    return (
        [finish for part in parts for finish in part[0]],
        sum(part[1] for part in parts),
        sum(part[2] for part in parts),
        sum(part[3] for part in parts),
    )


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
    finishes, failed, client_throttled, retries = fleet_in_processes(clients, open_store, stack)
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
        "answered": sent.get("answered", 0),
        "answered_errors": sent.get("answered_errors", 0),
        "client_throttled": client_throttled,
        "retries": retries,
        "failed": failed,
        "last_finish": round(max(finishes), 2),
        "bound": round(bound, 2),
        "ratio": round(max(finishes) / bound, 2),
        "wall": round(wall, 2),
        "processes": min(PROCESSES[0], clients),
    }
    log(json.dumps(row))
    return row


# -- the stores ----------------------------------------------------------------------------


def zenml_fleets(
    counts: list[int], steps: int, *, ours: bool, theirs: bool
) -> list[dict[str, Any]]:
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
            for count in counts:
                if ours:
                    rows.append(run_fleet("zenml", count, proxy, open_store, stack, ZENML_QUOTA))
                if theirs:
                    rows.append(zenml_client_fleet(count, proxy, server, token))
            if steps:
                rows.append(step_pods(steps, proxy, env))
    return rows


STEP = """
import sys, time
from stacksecrets import Client
with Client("zenml://", deadline=%(deadline)s, metadata_cache=False) as client:
    print("READY", flush=True)
    sys.stdin.readline()
    for index in range(%(count)s):
        client.get_secret("s%%04d" %% index)
"""


def step_pods(count: int, proxy: QuotaProxy, env: dict[str, str]) -> dict[str, Any]:
    """``count`` processes at once, each reading a few secrets through the sync Client.

    Each process starts (Python, imports, its ``Client``) before the clock, prints READY and
    waits for a line: the fleet's time is the store's part, not start-up on two shared cores
    (a pod has its own CPU). One pod alone, start-up included, is timed too (``alone``)."""
    script = STEP % {"deadline": DEADLINE, "count": STEP_SECRETS}
    full_env = {**os.environ, **env, "STACKSECRETS_METADATA_CACHE": "0"}

    def launch() -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", script],
            env=full_env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        if process.stdout.readline().strip() != "READY":
            sys.exit(f"a step pod did not start: {process.communicate()[1][-2000:]}")
        return process

    def go(processes: list[subprocess.Popen[str]]) -> tuple[list[float], int]:
        started = time.perf_counter()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.close()
        finishes, failed = [], 0
        pending = list(processes)
        while pending:
            for process in list(pending):
                if process.poll() is not None:
                    finishes.append(time.perf_counter() - started)
                    failed += process.returncode != 0
                    pending.remove(process)
            time.sleep(0.02)
        return finishes, failed

    proxy.stats(reset=True)
    alone_started = time.perf_counter()
    go([launch()])
    alone_seconds = time.perf_counter() - alone_started
    alone = proxy.stats(reset=True)
    per_pod = alone["requests"] - alone["throttled"]
    processes = [launch() for _ in range(count)]
    time.sleep(2)  # the bucket fills again
    proxy.stats(reset=True)
    finishes, failed = go(processes)
    sent = proxy.stats(reset=True)
    needed = per_pod * count
    row = {
        "store": "zenml step pods",
        "clients": count,
        "quota": ZENML_QUOTA,
        "calls_needed": needed,
        "requests": sent["requests"],
        "throttled": sent["throttled"],
        "answered": sent.get("answered", 0),
        "failed": failed,
        "last_finish": round(max(finishes), 2),
        "bound": round(needed / ZENML_QUOTA, 2),
        "ratio": round(max(finishes) / (needed / ZENML_QUOTA), 2),
        # One pod alone, process start-up included.
        "alone": round(alone_seconds, 2),
    }
    log(json.dumps(row))
    return row


#: ZenML's own client pods per process (threads; a ZenML process takes ~200 MB).
PODS_PER_PROCESS = 20


def zenml_client_fleet(
    count: int, proxy: QuotaProxy, server: _infra.Server, token: str
) -> dict[str, Any]:
    """ZenML's own client doing the same job: ``count`` pods, each ``Client().get_secret``
    of the stack's 10 secrets, in processes of the ZenML venv (zenml_side/fleet_pods.py)."""
    names = [scenarios.secret_name(i) for i in range(ZENML_SECRETS)]
    env = {
        k: v
        for k, v in server.client_env(proxy.url, "fleet").items()
        if k not in {"ZENML_STORE_USERNAME", "ZENML_STORE_PASSWORD"}
    }
    env["ZENML_STORE_API_TOKEN"] = token

    def launch(pods: int) -> subprocess.Popen[str]:
        script = str(_infra.ZENML_SIDE / "fleet_pods.py")
        process = subprocess.Popen(
            [str(server.python), script, str(pods), *names],
            env=env,
            cwd=_infra.ZENML_SIDE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        if process.stdout.readline().strip() != "READY":
            sys.exit("fleet_pods.py did not start")
        return process

    def run(sizes: list[int]) -> tuple[list[dict[str, Any]], float]:
        processes = [launch(size) for size in sizes]
        proxy.stats(reset=True)
        time.sleep(2)  # the bucket fills again
        proxy.stats(reset=True)
        started = time.perf_counter()
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        pods: list[dict[str, Any]] = []
        for process in processes:
            out, _ = process.communicate()
            lines = [line for line in out.splitlines() if line.startswith("{")]
            pods.extend(json.loads(lines[-1])["pods"] if lines else [{"finish": 0, "error": "?"}])
        return pods, time.perf_counter() - started

    run([1])
    alone = proxy.stats(reset=True)
    per_pod = alone["requests"] - alone["throttled"]
    sizes = [PODS_PER_PROCESS] * (count // PODS_PER_PROCESS)
    if count % PODS_PER_PROCESS:
        sizes.append(count % PODS_PER_PROCESS)
    pods, wall = run(sizes)
    sent = proxy.stats(reset=True)
    errors = collections.Counter(p["error"] for p in pods if p["error"])
    for reason, times in errors.most_common(3):
        log(f"{times} ZenML client pods failed with: {reason}")
    needed = per_pod * count
    bound = needed / ZENML_QUOTA
    last = max(p["finish"] for p in pods)
    row = {
        "store": "zenml (ZenML's client)",
        "clients": count,
        "quota": ZENML_QUOTA,
        "calls_needed": needed,
        "requests": sent["requests"],
        "throttled": sent["throttled"],
        "answered": sent.get("answered", 0),
        "failed": sum(errors.values()),
        "last_finish": round(last, 2),
        "bound": round(bound, 2),
        "ratio": round(last / bound, 2),
        "wall": round(wall, 2),
    }
    log(json.dumps(row))
    return row


def bao_fleets(counts: list[int]) -> list[dict[str, Any]]:
    """OpenBao (a real dev server, KV v2) behind the same 20 requests/s quota."""
    sys.path.insert(1, str(_infra.ROOT / "tests"))
    import tempfile

    from openbao_fixtures import start_openbao
    from stacksecrets.stores import VaultStore

    rows = []
    with tempfile.TemporaryDirectory(prefix="stacksecrets-fleet-bao-") as tmp:
        bao = start_openbao(Path(tmp))
        try:
            bao.write_many(
                {scenarios.secret_name(i): scenarios.secret_values(i) for i in range(BAO_SECRETS)}
            )
            port = int(bao.address.rsplit(":", 1)[1])
            with quota_proxy(port, {"": BAO_QUOTA}) as proxy:

                def open_store() -> VaultStore:
                    return VaultStore(proxy.url, token=bao.root_token)

                stack = stack_of(BAO_SECRETS)
                rows.extend(
                    run_fleet("openbao", count, proxy, open_store, stack, BAO_QUOTA)
                    for count in counts
                )
        finally:
            bao.close()
    return rows


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
            runs[label] = {_key(r): r for r in json.loads(path.read_text())["rows"]}
    if not runs:
        sys.exit("no results: run the benchmark first")
    keys = list(dict.fromkeys(key for rows in reversed(runs.values()) for key in rows))
    names = [f"{store}\n{clients} clients" for store, clients in keys]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    width = 0.8 / len(runs)
    for i, (label, rows) in enumerate(runs.items()):
        xs = [x + i * width for x, key in enumerate(keys) if key in rows]
        shown = [rows[key] for key in keys if key in rows]
        # ZenML's own client (one run, not ours before or after) in grey.
        colors = ["grey" if "ZenML's client" in r["store"] else f"C{i}" for r in shown]
        left.bar(xs, [r["ratio"] for r in shown], width, label=label, color=colors)
        right.bar(
            xs, [r["failed"] / r["clients"] * 100 for r in shown], width, label=label, color=colors
        )
    for axis in (left, right):
        axis.bar([0], [0], 0, color="grey", label="ZenML's client")  # its legend entry
        ticks = [x + width * (len(runs) - 1) / 2 for x in range(len(names))]
        axis.set_xticks(ticks, names, fontsize=7, rotation=30, ha="right")
        axis.legend()
    left.axhline(1.2, color="grey", linestyle="--", linewidth=1)
    left.set_ylabel("last finish / quota bound")
    right.set_ylabel("failed clients (%)")
    fig.suptitle("Fresh clients at once behind a quota (429 + Retry-After: 1, 50 ms)")
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=110)
    print_comparison(runs, keys)
    numbers = PLOT.parent / "fleet-results.json"
    numbers.write_text(json.dumps({k: list(v.values()) for k, v in runs.items()}, indent=2) + "\n")
    log(f"plot: {PLOT}, numbers: {numbers}")


def print_comparison(
    runs: dict[str, dict[tuple[str, int], dict[str, Any]]], keys: list[tuple[str, int]]
) -> None:
    """The before/after table of docs/benchmarks.md (forwarded: requests the proxy let through)."""
    print(
        "| store | clients | quota/s | calls needed | | requests sent | forwarded | throttled"
        " | failed | last finish / bound |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---|")
    for key in keys:
        for label, rows in runs.items():
            r = rows.get(key)
            if r is None:
                continue
            print(
                f"| {r['store']} | {r['clients']} | {r['quota']:g} | {r['calls_needed']:,} | "
                f"{label} | {r['requests']:,} | {r['requests'] - r['throttled']:,} | "
                f"{r['throttled']:,} | {r['failed']} | {r['last_finish']:.1f} s / "
                f"{r['bound']:.1f} s = **{r['ratio']:.2f}x** |"
            )


def _key(row: dict[str, Any]) -> tuple[str, int]:
    return str(row["store"]), int(row["clients"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[60, 200])
    parser.add_argument(
        "--store",
        nargs="+",
        choices=["zenml", "zenml-client", "aws", "openbao", "all"],
        default=["all"],
        help="zenml-client: ZenML's own client pods as the comparison",
    )
    parser.add_argument("--steps", type=int, default=0, help="also N step-pod processes")
    parser.add_argument("--label", default="after")
    parser.add_argument(
        "--processes", type=int, default=PROCESSES[0], help="client processes of a fleet"
    )
    parser.add_argument("--plot", action="store_true", help="only plot saved results")
    parser.add_argument(
        "--share", action="store_true", help="each client's rate_limit: quota / clients"
    )
    args = parser.parse_args()
    if args.plot:
        plot()
        return
    os.environ["STACKSECRETS_METADATA_CACHE"] = "0"
    PROCESSES[0] = args.processes
    stores = {"zenml", "zenml-client", "aws", "openbao"} if "all" in args.store else set(args.store)
    if args.share:
        SHARE[0] = AWS_QUOTAS["BatchGetSecretValue"] if stores == {"aws"} else ZENML_QUOTA
    rows: list[dict[str, Any]] = []
    runs: list[Callable[[], Awaitable[Any]] | Any] = []
    if stores & {"zenml", "zenml-client"} or args.steps:
        ours, theirs = "zenml" in stores, "zenml-client" in stores
        runs.append(lambda: zenml_fleets(args.clients, args.steps, ours=ours, theirs=theirs))
    if "aws" in stores:
        runs.append(lambda: aws_fleets(args.clients))
    if "openbao" in stores:
        runs.append(lambda: bao_fleets(args.clients))
    for run in runs:
        rows.extend(run())
    print_table(rows, args.label)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"fleet-{args.label}.json"
    # Runs of some stores add to (or replace the same rows of) the label's earlier results.
    merged = {_key(r): r for r in json.loads(out.read_text())["rows"]} if out.exists() else {}
    merged.update({_key(r): r for r in rows})
    out.write_text(
        json.dumps({"label": args.label, "rows": list(merged.values())}, indent=2) + "\n"
    )
    log(f"results: {out}")


if __name__ == "__main__":
    main()
