"""Runs inside the ZenML 0.98 venv: seeds stacks, and times ZenML's own secret validation.

    python zenml_bench.py seed SPEC.json    # register the flavor's components and stacks
    python zenml_bench.py time SPEC.json    # time the jobs, print one JSON document

The ZenML client connects as configured by ZENML_STORE_URL / _USERNAME / _PASSWORD (the
benchmark points it at the server directly, or through the latency proxy). Every HTTP request
the client sends is counted by wrapping ``requests.Session.request``. Only the validation
itself is timed: stacks are loaded (and ZenML's ``Stack`` objects built) before the clock starts.
The working directory must be this folder, so that ZenML can import ``bench_flavor``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import requests

CALLS = [0]
_request = requests.Session.request


def _counting_request(self: requests.Session, *args: Any, **kwargs: Any) -> Any:
    CALLS[0] += 1
    return _request(self, *args, **kwargs)


requests.Session.request = _counting_request  # type: ignore[method-assign]

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zenml.client import Client  # noqa: E402
from zenml.enums import StackComponentType  # noqa: E402
from zenml.exceptions import StackValidationError  # noqa: E402
from zenml.stack import Stack  # noqa: E402


def seed(spec: dict[str, Any]) -> None:
    client = Client()
    for stack_name, configuration in spec["stacks"].items():
        component = client.create_stack_component(
            name=f"{stack_name}-tracker",
            flavor="bench_refs",
            component_type=StackComponentType.EXPERIMENT_TRACKER,
            configuration=configuration,
        )
        client.create_stack(
            name=stack_name,
            components={
                StackComponentType.ORCHESTRATOR: "default",
                StackComponentType.ARTIFACT_STORE: "default",
                StackComponentType.EXPERIMENT_TRACKER: component.id,
            },
        )
    print(json.dumps({"stacks": len(spec["stacks"])}))


def _validate(stack: Stack) -> bool:
    try:
        stack._validate_secrets(raise_exception=True)  # noqa: SLF001
    except StackValidationError:
        return False
    return True


def _resolve_every_reference(stack: Stack) -> int:
    """Read every referenced attribute as step code would: ZenML resolves each read."""
    resolved = 0
    for component in stack.components.values():
        config = component.config
        for field, value in config.model_dump().items():
            if isinstance(value, str) and value.startswith("{{"):
                getattr(config, field)
                resolved += 1
    return resolved


def time_jobs(spec: dict[str, Any]) -> None:
    client = Client()
    client.list_secrets(size=1)  # log in and open the connection before any clock starts
    names = sorted({name for job in spec["jobs"] for name in job["stacks"]})
    stacks = {name: Stack.from_model(client.get_stack(name)) for name in names}
    results = []
    for job in spec["jobs"]:
        os.environ["ZENML_SECRET_VALIDATION_LEVEL"] = job["level"]
        runs = []
        for _ in range(job["reps"]):
            CALLS[0] = 0
            started = time.perf_counter()
            if job["kind"] == "validate":
                ok = [_validate(stacks[name]) for name in job["stacks"]]
            else:  # the pipeline-run pattern: validated three times, then every reference read
                stack = stacks[job["stacks"][0]]
                ok = [_validate(stack) for _ in range(3)]
                _resolve_every_reference(stack)
            seconds = time.perf_counter() - started
            runs.append({"seconds": seconds, "calls": CALLS[0], "ok_stacks": sum(ok)})
        results.append({"id": job["id"], "runs": runs})
    print(json.dumps({"results": results}))


def main() -> None:
    command, path = sys.argv[1], sys.argv[2]
    spec = json.loads(Path(path).read_text())
    {"seed": seed, "time": time_jobs}[command](spec)


if __name__ == "__main__":
    main()
