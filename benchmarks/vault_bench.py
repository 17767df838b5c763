"""stacksecrets against OpenBao (Vault KV v2): scenario (b), beside a floor client and hvac.

    nox -s bench -- --vault            # this benchmark only
    python benchmarks/vault_bench.py   # the same, with STACKSECRETS_BAO set

One real ``bao server -dev`` on loopback, 300 secrets ``s0000``... in the ``secret/`` mount,
scenario (b) (50 stacks x 20 references, see scenarios.py) and scenario (a) (one stack), at 0
and 50 ms of round trip (the latency proxy of tests/fault_proxy.py, in its own process):

- stacksecrets: one ``validate_stacks`` over all stacks, a fresh client (no cache) per run, on a
  warm store (connections open), at both levels; store calls and LIST calls counted.
- floor client: hand-written httpx, the same work with nothing else: one LIST of the folder,
  then a GET of every found name, all started at once, 16 in flight on 16 connections.
  Its runs alternate with stacksecrets' runs, so the (shared, noisy) machine weighs on both.
- hvac: a sequential validator, stack by stack, reading each secret a stack references one
  after the other (``read_secret_version``), as a validator without batching or a cross-stack
  cache would.

Prints a table and writes ``vault-results.json`` to ``--out`` (default docs/bench).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "tests"))

import _infra
import scenarios

import stacksecrets.references
from openbao_fixtures import start_openbao
from stacksecrets import AsyncClient, Component, Stack, ValidationLevel
from stacksecrets.stores._vault import VaultStore

HERE = Path(__file__).resolve().parent
KEY = ValidationLevel.SECRET_AND_KEY_EXISTS
EXISTS = ValidationLevel.SECRET_EXISTS
CONCURRENCY = 16
SECRETS = 300
B_STACKS = 50


def log(message: str) -> None:
    print(f"[vault bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def stacks_of(configurations: dict[str, dict[str, str]]) -> list[Stack]:
    return [
        Stack(name, [Component("experiment_tracker", scenarios.FLAVOR, "tracker", config)])
        for name, config in configurations.items()
    ]


def count_lists(store: VaultStore) -> list[int]:
    """A one-element counter of LIST requests the store sends from now on."""
    lists = [0]

    async def hook(request: httpx.Request) -> None:
        if request.method == "LIST":
            lists[0] += 1

    store._client.event_hooks["request"].append(hook)  # noqa: SLF001
    return lists


async def measure(
    address: str, token: str, scenario_stacks: dict[str, list[Stack]], names: list[str], reps: int
) -> dict[str, list[dict[str, float]]]:
    """stacksecrets (each scenario, each level) and the floor client on scenario (b),
    interleaved run by run, so the machine's noise falls on both alike."""
    out: dict[str, list[dict[str, float]]] = {}
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with (
        VaultStore(address, token=token, max_connections=CONCURRENCY) as store,
        httpx.AsyncClient(
            base_url=address + "/v1", headers={"X-Vault-Token": token}, limits=limits, timeout=60
        ) as floor,
    ):
        lists = count_lists(store)
        # Open the connections of both before any clock starts.
        async with anyio.create_task_group() as tg:
            for _ in range(CONCURRENCY):
                tg.start_soon(store.secrets_exist, ["warm-up"])
                tg.start_soon(floor.get, "/sys/health")
        for _ in range(reps):
            out.setdefault("floor/b", []).append(await floor_client(floor, names))
            for scenario, stacks in scenario_stacks.items():
                for level in (KEY, EXISTS):
                    calls, listed = store.http_calls, lists[0]
                    started = time.perf_counter()
                    report = await AsyncClient(store, level=level).validate_stacks(stacks)
                    seconds = time.perf_counter() - started
                    out.setdefault(f"{scenario}/{level.value}", []).append(
                        {
                            "seconds": seconds,
                            "calls": store.http_calls - calls,
                            "list_calls": lists[0] - listed,
                            "problems": len(report.problems),
                        }
                    )
    return out


async def floor_client(client: httpx.AsyncClient, names: list[str]) -> dict[str, float]:
    """One LIST of the folder, then every found secret read, 16 at a time."""
    started = time.perf_counter()
    listed = await client.request("LIST", "/secret/metadata/")
    present = set(listed.json()["data"]["keys"])
    found = [name for name in names if name in present]
    values: dict[str, dict[str, str]] = {}
    # All started at once, at most 16 in flight, as stacksecrets' limiter allows: httpx's
    # pool gets slow with hundreds of requests queued on it (about 95 ms a request measured
    # here with 300 queued on one connection, 11 ms when awaited one by one).
    limiter = anyio.CapacityLimiter(CONCURRENCY)

    async def read(name: str) -> None:
        async with limiter:
            answer = await client.get(f"/secret/data/{name}")
        values[name] = answer.json()["data"]["data"]

    async with anyio.create_task_group() as tg:
        for name in found:
            tg.start_soon(read, name)
    seconds = time.perf_counter() - started
    assert len(values) == len(found)
    return {"seconds": seconds, "calls": 1 + len(found), "found": len(found)}


def hvac_validator(address: str, token: str, configurations: dict[str, dict[str, str]]) -> dict:
    """Stack by stack, each referenced secret read one after the other with hvac."""
    import hvac
    import hvac.exceptions

    client = hvac.Client(url=address, token=token)
    calls = 0
    problems = 0
    started = time.perf_counter()
    for config in configurations.values():
        refs = stacksecrets.references.collect(
            [Stack("x", [Component("experiment_tracker", "x", "t", config)])]
        )
        for name, keys in refs.secrets.items():
            calls += 1
            try:
                answer = client.secrets.kv.v2.read_secret_version(
                    path=name, mount_point="secret", raise_on_deleted_version=True
                )
            except hvac.exceptions.InvalidPath:
                problems += 1
                continue
            problems += sum(1 for key in keys if key not in answer["data"]["data"])
    seconds = time.perf_counter() - started
    client.adapter.close()
    return {"seconds": seconds, "calls": calls, "problems": problems}


def median(runs: list[dict[str, float]], field: str = "seconds") -> float:
    return statistics.median(run[field] for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--rtts", default="0,50", help="round trips in ms, comma-separated")
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "bench")
    args = parser.parse_args()
    rtts = [float(x) for x in args.rtts.split(",")]
    b = scenarios.platform_stacks(B_STACKS, SECRETS)
    a = {"a": scenarios.realistic_stack(broken=True)}
    b_stacks, a_stacks = stacks_of(b), stacks_of(a)
    b_names = list(stacksecrets.references.collect(b_stacks).secrets)
    results: dict[str, Any] = {"reps": args.reps, "concurrency": CONCURRENCY, "by_rtt": {}}

    with tempfile.TemporaryDirectory(prefix="stacksecrets-vault-bench-") as tmp:
        bao = start_openbao(Path(tmp))
        try:
            log(f"OpenBao up on {bao.address}; seeding {SECRETS} secrets")
            bao.write_many(
                {scenarios.secret_name(i): scenarios.secret_values(i) for i in range(SECRETS)}
            )
            port = int(bao.address.rsplit(":", 1)[1])
            server = SimpleNamespace(port=port, url=bao.address)
            for rtt in rtts:
                with _infra.latency(server, rtt) as address:  # type: ignore[arg-type]
                    log(f"RTT {rtt:g} ms: stacksecrets and the floor client")
                    data: dict[str, Any] = anyio.run(
                        measure,
                        address,
                        bao.root_token,
                        {"a": a_stacks, "b": b_stacks},
                        b_names,
                        args.reps,
                    )
                    log(f"RTT {rtt:g} ms: hvac, sequential")
                    data["hvac_b"] = [hvac_validator(address, bao.root_token, b)]
                    results["by_rtt"][f"{rtt:g}"] = data
        finally:
            bao.close()

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vault-results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"{'RTT':>5} {'scenario/level':<28} {'stacksecrets':>13} {'calls':>6} {'LISTs':>6} "
          f"{'floor':>8} {'ours/floor':>10} {'hvac':>9} {'hvac calls':>10}")  # fmt: skip
    for rtt, data in results["by_rtt"].items():
        for scenario in ("a", "b"):
            for level in (KEY.value, EXISTS.value):
                runs = data[f"{scenario}/{level}"]
                ours = median(runs)
                floor = hvac = "-"
                ratio = ""
                hvac_calls = ""
                if scenario == "b" and level == KEY.value:
                    floor_s = median(data["floor/b"])
                    floor, ratio = f"{floor_s:.3f}", f"{ours / floor_s:.2f}x"
                    hvac = f"{data['hvac_b'][0]['seconds']:.2f}"
                    hvac_calls = str(data["hvac_b"][0]["calls"])
                print(
                    f"{rtt:>5} {scenario + '/' + level:<28} {ours:>12.3f}s "
                    f"{runs[0]['calls']:>6.0f} {runs[0]['list_calls']:>6.0f} {floor:>8} "
                    f"{ratio:>10} {hvac:>9} {hvac_calls:>10}"
                )
    print(f"\nwrote {args.out / 'vault-results.json'}")


if __name__ == "__main__":
    main()
