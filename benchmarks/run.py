"""stacksecrets against ZenML's own secret validation, on one real ZenML server, in one run.

    nox -s bench                 # the full run: docs/bench/results.json and bench.png
    nox -s bench -- --quick      # a smoke run (< 3 minutes): benchmarks/results/tmp/
    nox -s bench -- --only metacache   # scenario (b) at 50 ms: ZenML's key level, ours cold
                                       # and warm (new processes), SECRET_EXISTS
    nox -s bench -- --only floor       # scenario (b) at 50 ms: ours cold, one pass, against
                                       # the floor client, in turn

See docs/benchmarks.md for what is measured and what bounds each number.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio
import httpx
import stamina

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _infra
import metacache_bench
import scenarios

import stacksecrets.references
from stacksecrets import AsyncClient, Stack, ValidationLevel
from stacksecrets.stores import MemoryStore
from stacksecrets.stores._zenml import ZenMLStore

KEY = ValidationLevel.SECRET_AND_KEY_EXISTS
EXISTS = ValidationLevel.SECRET_EXISTS
LEVELS = (KEY, EXISTS)
CONCURRENCY = 16  # stacksecrets' default max_concurrency


def _config(quick: bool) -> dict[str, Any]:
    if quick:
        # Only the 50 ms setting, scenario (b) cut to 5 stacks, few repetitions: a smoke run.
        return {
            "mode": "quick",
            "rtts": [50],
            "secrets": 100,
            "b_stacks": 5,
            "reps": 2,
            "reps_b_per_stack": 1,
            "zenml_reps_a": 1,
            "zenml_reps_b": 1,
            "curve_unique": [10, 100],
            "curve_concurrency": [1, 16],
            "curve_reps": 1,
            "engine_reps": 1,
            "engine_validations": False,
            "out": _infra.ROOT / "benchmarks" / "results" / "tmp",
        }
    return {
        "mode": "full",
        "rtts": [0, 50],
        "secrets": 1000,
        "b_stacks": 50,
        "reps": 5,
        "reps_b_per_stack": 1,
        "zenml_reps_a": 5,
        "zenml_reps_b": 1,
        "curve_unique": [10, 100, 300, 1000],
        "curve_concurrency": [1, 4, 16, 64],
        "curve_reps": 2,
        "engine_reps": 5,
        "engine_validations": True,
        "out": _infra.ROOT / "docs" / "bench",
    }


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- seeding -------------------------------------------------------------------------------


async def _seed_secrets(server: _infra.Server, count: int) -> None:
    """Create ``count`` secrets through the REST API, 8 at a time."""
    async with httpx.AsyncClient(base_url=server.url + _infra.API, timeout=60) as client:
        answer = await client.post(
            "/login", data={"username": server.username, "password": server.password}
        )
        answer.raise_for_status()
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        limiter = anyio.CapacityLimiter(8)

        async def create(index: int) -> None:
            body = {
                "name": scenarios.secret_name(index),
                "private": False,
                "values": scenarios.secret_values(index),
            }
            # SQLite under concurrent writes sometimes answers 500 ("database is locked").
            async for attempt in stamina.retry_context(on=_server_error, attempts=5):
                with attempt:
                    async with limiter:
                        answer = await client.post("/secrets", json=body)
                    if answer.status_code == httpx.codes.CONFLICT:
                        return  # an earlier attempt did create it
                    answer.raise_for_status()

        async with anyio.create_task_group() as tg:
            for index in range(count):
                tg.start_soon(create, index)


def _server_error(exc: Exception) -> bool:
    return isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code >= 500


def seed(server: _infra.Server, config: dict[str, Any]) -> dict[str, list[str]]:
    started = time.perf_counter()
    anyio.run(_seed_secrets, server, config["secrets"])
    log(f"seeded {config['secrets']} secrets in {time.perf_counter() - started:.1f} s")
    server.zenml_cli("experiment-tracker", "flavor", "register", "bench_flavor.BenchTrackerFlavor")
    stacks = {
        "a-realistic": scenarios.realistic_stack(broken=True),
        "a-clean": scenarios.realistic_stack(broken=False),
        **scenarios.platform_stacks(config["b_stacks"]),
    }
    server.run_zenml_side("seed", {"stacks": stacks})
    log(
        f"seeded {len(stacks)} stacks (zenml CLI + client) in {time.perf_counter() - started:.1f} s"
    )
    return {
        "a": ["a-realistic"],
        "pipeline": ["a-clean"],
        "b": [name for name in stacks if name.startswith("b-")],
    }


# -- measuring stacksecrets ----------------------------------------------------------------


def _store(url: str, server: _infra.Server, connections: int = CONCURRENCY) -> ZenMLStore:
    return ZenMLStore(
        url, username=server.username, password=server.password, max_connections=connections
    )


async def _timed(
    store: ZenMLStore, reps: int, body: Callable[[], Awaitable[Any]]
) -> list[dict[str, float]]:
    runs = []
    for _ in range(reps):
        before = store.http_calls
        started = time.perf_counter()
        await body()
        runs.append({"seconds": time.perf_counter() - started, "calls": store.http_calls - before})
    return runs


async def measure_stacksecrets(
    url: str, server: _infra.Server, names: dict[str, list[str]], config: dict[str, Any]
) -> dict[str, Any]:
    """Per-stack (a new client, so no cache, for every stack) and one-pass validations, and
    the pipeline-run pattern; on one warm (logged-in) store, as ZenML's client is warm."""
    out: dict[str, Any] = {}
    reps = config["reps"]
    async with _store(url, server) as store:
        everything = await store.stacks.get_stacks(names["a"] + names["pipeline"] + names["b"])
        stacks = {stack.name: stack for stack in everything}
        await store.secrets_exist(["warm-up"])  # log in before any clock starts

        for level in LEVELS:

            async def per_stack(group: list[str], level: ValidationLevel = level) -> None:
                for name in group:
                    await AsyncClient(store, level=level).validate_stack(stacks[name])

            async def one_pass(group: list[str], level: ValidationLevel = level) -> None:
                await AsyncClient(store, level=level).validate_stacks([stacks[n] for n in group])

            out[f"a/{level.value}/per_stack"] = await _timed(
                store, reps, lambda: per_stack(names["a"])
            )
            out[f"b/{level.value}/per_stack"] = await _timed(
                store, config["reps_b_per_stack"], lambda: per_stack(names["b"])
            )
            out[f"b/{level.value}/one_pass"] = await _timed(
                store, reps, lambda: one_pass(names["b"])
            )

        async def pipeline() -> None:
            client = AsyncClient(store, level=KEY)
            stack = stacks[names["pipeline"][0]]
            for _ in range(3):
                (await client.validate_stack(stack)).raise_for_problems()
            await client.resolve_stack(stack)

        out["pipeline/SECRET_AND_KEY_EXISTS/one_client"] = await _timed(store, reps, pipeline)

    return out


async def curve(
    url: str, server: _infra.Server, config: dict[str, Any], b_names: list[str]
) -> dict[str, Any]:
    """Total one-pass key-level time against unique secrets, and against max_concurrency."""
    by_unique = []
    async with _store(url, server) as store:
        await store.secrets_exist(["warm-up"])
        for unique in config["curve_unique"]:
            if unique > config["secrets"]:
                continue
            stacks = scenarios.curve_stacks(unique)
            runs = await _timed(
                store,
                config["curve_reps"],
                lambda stacks=stacks: AsyncClient(store, level=KEY).validate_stacks(stacks),
            )
            floor = await floor_client(
                url, server, [scenarios.secret_name(i) for i in range(unique)]
            )
            by_unique.append({"unique": unique, "runs": runs, "floor_seconds": floor["seconds"]})
            log(
                f"  curve: {unique} unique secrets: {_median(runs):.3f} s "
                f"(floor client {floor['seconds']:.3f} s)"
            )
    by_concurrency = []
    for limit in config["curve_concurrency"]:
        async with _store(url, server, max(limit, 1)) as store:
            stacks = await store.stacks.get_stacks(b_names)
            await store.secrets_exist(["warm-up"])
            runs = await _timed(
                store,
                config["curve_reps"],
                lambda stacks=stacks, store=store, limit=limit: AsyncClient(
                    store, level=KEY, max_concurrency=limit
                ).validate_stacks(stacks),
            )
        by_concurrency.append({"max_concurrency": limit, "runs": runs})
        log(f"  curve: max_concurrency {limit}: {_median(runs):.3f} s")
    return {"unique_secrets": by_unique, "max_concurrency": by_concurrency}


# -- the floor: a hand-written client, and the server's own throughput ---------------------


async def floor_client(
    url: str, server: _infra.Server, names: list[str], concurrency: int = CONCURRENCY
) -> dict[str, Any]:
    """What the server allows: batched ``oneof:`` lists, then concurrent reads by id.

    Logged in and connected before the clock starts. Chunks of 50 names, as ZenMLStore."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url + _infra.API, timeout=60, limits=limits) as client:
        answer = await client.post(
            "/login", data={"username": server.username, "password": server.password}
        )
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        limiter = anyio.CapacityLimiter(concurrency)
        ids: dict[str, str] = {}
        calls = 0

        async def listing(chunk: list[str]) -> None:
            nonlocal calls
            async with limiter:
                calls += 1
                page = await client.get(
                    "/secrets", params={"name": "oneof:" + json.dumps(chunk), "size": "10000"}
                )
            for item in sorted(page.json()["items"], key=lambda i: i["body"]["private"]):
                ids.setdefault(item["name"], item["id"])

        values: dict[str, dict[str, str]] = {}

        async def read(name: str, secret_id: str) -> None:
            nonlocal calls
            async with limiter:
                calls += 1
                answer = await client.get(f"/secrets/{secret_id}")
            values[name] = answer.json()["body"]["values"]

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for start in range(0, len(names), 50):
                tg.start_soon(listing, names[start : start + 50])
        async with anyio.create_task_group() as tg:
            for name, secret_id in ids.items():
                tg.start_soon(read, name, secret_id)
        seconds = time.perf_counter() - started
    assert len(values) == len(ids)
    return {"seconds": seconds, "calls": calls, "found": len(ids)}


async def server_throughput(server: _infra.Server, count: int) -> dict[str, float]:
    """Reads by id per second, straight to the server (no added latency), 32 in flight."""
    names = [scenarios.secret_name(i) for i in range(count)]
    runs = [await floor_client(server.url, server, names, concurrency=32) for _ in range(3)]
    best = min(runs, key=lambda r: r["seconds"])
    return {
        "reads_per_second": best["found"] / best["seconds"],
        "reads": best["found"],
        "concurrency": 32,
    }


# -- the engine's CPU cost -------------------------------------------------------------------


def engine_cost(reps: int, *, validations: bool) -> dict[str, Any]:
    """The engine's CPU cost on 100,000 references, with no I/O at all.

    ``collect`` is the walk and the plan (every reference grouped by secret and key). With
    ``validations``: the first validation in this process against a zero-latency memory store
    (it fills the cache and the log redactor), cached validations (collect, plan, cache look-ups,
    report: no store call), and validations by new clients (empty cache, known values)."""
    stacks = scenarios.engine_stacks()
    collect_times = []
    for _ in range(reps):
        started = time.perf_counter()
        refs = stacksecrets.references.collect(stacks)
        collect_times.append(time.perf_counter() - started)
    result: dict[str, Any] = {
        "stacks": len(stacks),
        "references": refs.count,
        "unique_secrets": len(refs.secrets),
        "collect_seconds": collect_times,
    }
    if not validations:
        return result
    store = MemoryStore(
        {scenarios.secret_name(i): scenarios.secret_values(i) for i in range(len(refs.secrets))}
    )

    async def validate() -> dict[str, Any]:
        client = AsyncClient(store, level=KEY)
        started = time.perf_counter()
        await client.validate_stacks(stacks)
        first = time.perf_counter() - started
        cached, cold = [], []
        for _ in range(reps):
            started = time.perf_counter()
            report = await client.validate_stacks(stacks)
            cached.append(time.perf_counter() - started)
            assert report.stats.store_calls == 0
        for _ in range(reps):
            started = time.perf_counter()
            await AsyncClient(store, level=KEY).validate_stacks(stacks)
            cold.append(time.perf_counter() - started)
        return {
            "validate_first_in_process_seconds": first,
            "validate_cached_seconds": cached,
            "validate_memory_store_seconds": cold,
        }

    result.update(anyio.run(validate))
    return result


# -- reporting -----------------------------------------------------------------------------


def _median(runs: list[dict[str, float]]) -> float:
    return statistics.median(run["seconds"] for run in runs)


def _calls(runs: list[dict[str, float]]) -> int:
    return int(statistics.median(run["calls"] for run in runs))


def floor_model(existence_calls: int, found: int, rtt_s: float, reads_per_s: float) -> float:
    """(batched existence calls + ceil(found / C)) x RTT, bounded below by throughput."""
    return max((existence_calls + math.ceil(found / CONCURRENCY)) * rtt_s, found / reads_per_s)


def build_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    reads_per_s = results["server"]["reads_per_second"]
    for rtt_key, data in results["by_rtt"].items():
        rtt = float(rtt_key)
        zen = data["zenml"]
        ours = data["stacksecrets"]
        for scenario in ("a", "b", "pipeline"):
            for level in (KEY.value, EXISTS.value):
                zkey = f"{scenario}/{level}"
                if zkey not in zen:
                    continue
                unique, found = data["counts"][scenario]
                existence_calls = math.ceil(unique / 50)
                row: dict[str, Any] = {
                    "scenario": scenario,
                    "rtt_ms": rtt,
                    "level": level,
                    "zenml_seconds": _median(zen[zkey]),
                    "zenml_calls": _calls(zen[zkey]),
                }
                for variant in ("per_stack", "one_pass", "one_client"):
                    runs = ours.get(f"{zkey}/{variant}")
                    if runs:
                        row[f"{variant}_seconds"] = _median(runs)
                        row[f"{variant}_calls"] = _calls(runs)
                best = row.get("one_pass_seconds") or row.get("one_client_seconds")
                best = best or row["per_stack_seconds"]
                row["ratio_zenml_over_stacksecrets"] = row["zenml_seconds"] / best
                if level == KEY.value and scenario != "pipeline":
                    row["floor_model_seconds"] = floor_model(
                        existence_calls, found, rtt / 1000, reads_per_s
                    )
                    row["floor_client_seconds"] = data["floor"][scenario]["seconds"]
                    row["floor_client_calls"] = data["floor"][scenario]["calls"]
                    row["stacksecrets_over_floor_client"] = best / row["floor_client_seconds"]
                elif level == EXISTS.value and scenario != "pipeline":
                    row["floor_model_seconds"] = max(existence_calls * rtt / 1000, 0.0)
                rows.append(row)
    return rows


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_table(rows: list[dict[str, Any]], results: dict[str, Any]) -> None:
    def fmt(row: dict[str, Any], name: str) -> str:
        seconds = row.get(f"{name}_seconds")
        if seconds is None:
            return "-"
        calls = row.get(f"{name}_calls")
        return f"{seconds:8.3f} ({calls})" if calls is not None else f"{seconds:8.3f}"

    header = (
        f"{'scenario':9} {'RTT':>4} {'level':22} {'ZenML s (calls)':>17} "
        f"{'ours per-stack':>16} {'ours one pass':>16} {'ZenML/ours':>10} "
        f"{'floor model':>11} {'floor client':>14} {'ours/floor':>10}"
    )
    print()
    print(header)
    print("-" * len(header))
    for row in rows:
        one = fmt(row, "one_pass") if "one_pass_seconds" in row else fmt(row, "one_client")
        floor_client_text = fmt(row, "floor_client") if "floor_client_seconds" in row else "-"
        over = row.get("stacksecrets_over_floor_client")
        print(
            f"{row['scenario']:9} {row['rtt_ms']:4.0f} {row['level']:22} "
            f"{fmt(row, 'zenml'):>17} {fmt(row, 'per_stack'):>16} {one:>16} "
            f"{row['ratio_zenml_over_stacksecrets']:9.1f}x "
            f"{_seconds(row.get('floor_model_seconds')):>11} {floor_client_text:>14} "
            f"{'-' if over is None else f'{over:.2f}x':>10}"
        )
    server = results["server"]
    engine = results["engine"]
    print()
    print(f"server throughput: {server['reads_per_second']:.0f} reads/s (by id, 32 in flight)")
    print(
        f"engine CPU: collect {engine['references']:,} references in {engine['stacks']:,} stacks: "
        f"{statistics.median(engine['collect_seconds']):.3f} s (median)"
    )
    if "validate_cached_seconds" in engine:
        print(
            "engine CPU: cached validation (collect + plan + report, no store call) "
            f"{statistics.median(engine['validate_cached_seconds']):.3f} s; new client, "
            "zero-latency memory store "
            f"{statistics.median(engine['validate_memory_store_seconds']):.3f} s (medians); "
            "first validation in the process "
            f"{engine['validate_first_in_process_seconds']:.3f} s"
        )


def plot(results: dict[str, Any], rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    top = max(float(r) for r in results["by_rtt"])
    labels, zen, ours, floors = [], [], [], []
    for row in rows:
        if row["rtt_ms"] != top:
            continue
        labels.append(f"{row['scenario']}\n{row['level'].replace('SECRET_', '')}")
        zen.append(row["zenml_seconds"])
        best = row.get("one_pass_seconds") or row.get("one_client_seconds")
        ours.append(best or row["per_stack_seconds"])
        floors.append(row.get("floor_client_seconds", float("nan")))
    xs = range(len(labels))
    ax = axes[0]
    ax.bar([x - 0.27 for x in xs], zen, 0.27, label="ZenML _validate_secrets")
    ax.bar(xs, ours, 0.27, label="stacksecrets")
    ax.bar([x + 0.27 for x in xs], floors, 0.27, label="floor client")
    ax.set_yscale("log")
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_ylabel("seconds (median, log scale)")
    ax.set_title(f"Scenarios at {top:.0f} ms RTT")
    ax.legend(fontsize=8)

    curves = results["curves"]
    ax = axes[1]
    points = curves["unique_secrets"]
    ax.plot(
        [p["unique"] for p in points],
        [_median(p["runs"]) for p in points],
        "o-",
        label="stacksecrets",
    )
    ax.plot(
        [p["unique"] for p in points],
        [p["floor_seconds"] for p in points],
        "s--",
        label="floor client",
    )
    ax.set_xscale("log")
    ax.set_xlabel("unique secrets (key level, one pass)")
    ax.set_ylabel("seconds")
    ax.set_title(f"Time against unique secrets ({top:.0f} ms RTT)")
    ax.legend(fontsize=8)

    ax = axes[2]
    points = curves["max_concurrency"]
    ax.plot([p["max_concurrency"] for p in points], [_median(p["runs"]) for p in points], "o-")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("max_concurrency")
    ax.set_ylabel("seconds")
    ax.set_title(f"(b) one pass against max_concurrency ({top:.0f} ms RTT)")
    fig.suptitle(
        f"stacksecrets {results['machine']['stacksecrets']} vs ZenML "
        f"{results['machine']['zenml']}, {results['machine']['cpus']} CPUs, "
        f"{results['machine']['date'][:10]}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine(server: _infra.Server) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "zenml": "0.98.0",
        "zenml_python": str(server.python),
        "stacksecrets": metadata.version("stacksecrets"),
        "httpx": metadata.version("httpx"),
        "anyio": metadata.version("anyio"),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


# -- the run -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer settings and repetitions")
    parser.add_argument("--out", type=Path, help="where results.json and bench.png go")
    parser.add_argument(
        "--replot", type=Path, help="only redraw the table and plot of a results.json"
    )
    parser.add_argument("--only", choices=["metacache", "floor"], help="only these rows")
    args = parser.parse_args()
    _metadata_cache_off()
    if args.only:
        {"metacache": only_metacache, "floor": only_floor}[args.only](_config(args.quick))
        return
    if args.replot:
        results = json.loads(args.replot.read_text())
        plot(results, results["rows"], args.replot.with_name("bench.png"))
        print_table(results["rows"], results)
        return
    config = _config(args.quick)
    out: Path = args.out or config["out"]
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "config": {k: v for k, v in config.items() if k != "out"},
        "by_rtt": {},
    }

    log("engine CPU cost (no I/O)")
    results["engine"] = engine_cost(config["engine_reps"], validations=config["engine_validations"])

    with _infra.zenml_server() as server:
        log(f"ZenML server up on {server.url}")
        results["machine"] = machine(server)
        names = seed(server, config)
        results["server"] = anyio.run(server_throughput, server, min(300, config["secrets"]))
        log(f"server: {results['server']['reads_per_second']:.0f} reads/s")
        a_stack = [scenarios.realistic_stack(broken=True)]
        counts = {
            "a": _counts_of(a_stack),
            "b": _counts_of(list(scenarios.platform_stacks(config["b_stacks"]).values())),
            "pipeline": _counts_of([scenarios.realistic_stack(broken=False)]),
        }
        for rtt in config["rtts"]:
            with _infra.latency(server, rtt) as url:
                log(f"RTT {rtt} ms: ZenML's validation")
                data: dict[str, Any] = {"counts": counts}
                data["zenml"] = zenml_times(server, url, names, config, rtt)
                log(f"RTT {rtt} ms: stacksecrets")
                data["stacksecrets"] = anyio.run(measure_stacksecrets, url, server, names, config)
                log(f"RTT {rtt} ms: floor client")
                data["floor"] = {
                    "a": anyio.run(floor_client, url, server, _existing("a", a_stack)),
                    "b": anyio.run(
                        floor_client,
                        url,
                        server,
                        _existing(
                            "b", list(scenarios.platform_stacks(config["b_stacks"]).values())
                        ),
                    ),
                }
                if rtt == 50:
                    log(f"RTT {rtt} ms: metadata cache, new processes")
                    data["metacache"] = _metacache_rows(url, server, config)
                if rtt == max(config["rtts"]):
                    log(f"RTT {rtt} ms: curves")
                    results["curves"] = anyio.run(curve, url, server, config, names["b"])
                results["by_rtt"][str(rtt)] = data

    results["seconds"] = time.perf_counter() - started
    rows = build_rows(results)
    results["rows"] = rows
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    plot(results, rows, out / "bench.png")
    print_table(rows, results)
    print(f"\nwrote {out / 'results.json'} and {out / 'bench.png'} in {results['seconds']:.0f} s")


def _metadata_cache_off() -> None:
    """Every other row measures a process's first validation: the metadata cache stays off
    there (and off the user's cache folder); metacache_bench turns it on in its processes."""
    os.environ["STACKSECRETS_METADATA_CACHE"] = "0"
    os.environ["STACKSECRETS_CACHE_DIR"] = str(_infra.ROOT / "benchmarks" / "results" / "cache")


def _metacache_rows(url: str, server: _infra.Server, config: dict[str, Any]) -> dict[str, Any]:
    configurations = list(scenarios.platform_stacks(config["b_stacks"]).values())
    rows = metacache_bench.measure(
        url, server.username, server.password, configurations, config["reps"]
    )
    for row, data in rows.items():
        log(
            f"  b {row:28} {data['seconds']:7.3f} s  {data['calls']:5.0f} calls  "
            f"{data['metadata_hits']:4.0f} from the metadata cache"
        )
    return rows


def only_metacache(config: dict[str, Any]) -> None:
    """Scenario (b) at 50 ms: ZenML's own key-level validation, then ours (new processes)."""
    with _infra.zenml_server() as server:
        names = seed(server, config)
        with _infra.latency(server, 50) as url:
            log("RTT 50 ms: ZenML's validation of (b) at the key level")
            job = {
                "id": f"b/{KEY.value}",
                "kind": "validate",
                "stacks": names["b"],
                "level": KEY.value,
                "reps": config["zenml_reps_b"],
            }
            answer = server.run_zenml_side("time", {"jobs": [job]}, url, name="rtt50")
            zenml_runs = answer["results"][0]["runs"]
            zenml = _median(zenml_runs)
            log(f"  b ZenML {KEY.value:22} {zenml:7.3f} s  {_calls(zenml_runs):5d} calls")
            log("RTT 50 ms: stacksecrets, new processes")
            rows = _metacache_rows(url, server, config)
    warm = rows["SECRET_AND_KEY_EXISTS/warm"]["seconds"]
    print(
        f"\nwarm key level / SECRET_EXISTS: {warm / rows['SECRET_EXISTS']['seconds']:.2f}x; "
        f"ZenML / warm key level: {zenml / warm:.0f}x; cold / warm: "
        f"{rows['SECRET_AND_KEY_EXISTS/cold']['seconds'] / warm:.1f}x"
    )


def only_floor(config: dict[str, Any]) -> None:
    """Scenario (b) at 50 ms, the key level, cold (a new client, no metadata cache) in one
    pass against the floor client, in turn: the single-client check without ZenML's own
    (minutes-long) runs. 300 secrets seeded, as (b) references."""
    config = {**config, "secrets": 300}
    with _infra.zenml_server() as server:
        names = seed(server, config)
        with _infra.latency(server, 50) as url:
            wanted = _existing("b", list(scenarios.platform_stacks(config["b_stacks"]).values()))
            ours_runs: list[float] = []
            floor_runs: list[float] = []

            async def measure() -> None:
                async with _store(url, server) as store:
                    stacks = await store.stacks.get_stacks(names["b"])
                    await store.secrets_exist(["warm-up"])  # log in before any clock starts
                    for _ in range(config["reps"]):
                        started = time.perf_counter()
                        await AsyncClient(store, level=KEY).validate_stacks(stacks)
                        ours_runs.append(time.perf_counter() - started)
                        floor_runs.append((await floor_client(url, server, wanted))["seconds"])

            anyio.run(measure)
    ours, floor = statistics.median(ours_runs), statistics.median(floor_runs)
    log(f"  b key cold, one pass: {ours:.3f} s, runs {[round(s, 3) for s in ours_runs]}")
    log(f"  b floor client:       {floor:.3f} s, runs {[round(s, 3) for s in floor_runs]}")
    print(
        f"\ncold key level / floor client: {ours / floor:.2f}x "
        f"(load average {os.getloadavg()[0]:.1f})"
    )


def _refs_of(configurations: list[dict[str, str]]) -> stacksecrets.references.References:
    return stacksecrets.references.collect(
        [
            Stack(f"x{i}", [stacksecrets.Component("experiment_tracker", "x", "t", c)])
            for i, c in enumerate(configurations)
        ]
    )


def _counts_of(configurations: list[dict[str, str]]) -> tuple[int, int]:
    refs = _refs_of(configurations)
    return len(refs.secrets), sum(1 for name in refs.secrets if not name.startswith("gone"))


def _existing(_label: str, configurations: list[dict[str, str]]) -> list[str]:
    """Every referenced name (missing ones too: the floor's list call must look for them)."""
    return list(_refs_of(configurations).secrets)


def zenml_times(
    server: _infra.Server,
    url: str,
    names: dict[str, list[str]],
    config: dict[str, Any],
    rtt: float,
) -> dict[str, Any]:
    jobs = []
    for level in LEVELS:
        jobs.append(
            {
                "id": f"a/{level.value}",
                "kind": "validate",
                "stacks": names["a"],
                "level": level.value,
                "reps": config["zenml_reps_a"],
            }
        )
        jobs.append(
            {
                "id": f"b/{level.value}",
                "kind": "validate",
                "stacks": names["b"],
                "level": level.value,
                "reps": config["zenml_reps_b"],
            }
        )
    jobs.append(
        {
            "id": f"pipeline/{KEY.value}",
            "kind": "pipeline",
            "stacks": names["pipeline"],
            "level": KEY.value,
            "reps": config["zenml_reps_a"],
        }
    )
    answer = server.run_zenml_side("time", {"jobs": jobs}, url, name=f"rtt{rtt:g}")
    return {item["id"]: item["runs"] for item in answer["results"]}


if __name__ == "__main__":
    main()
