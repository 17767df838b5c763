"""One real pipeline run on the local orchestrator, timing the secret validation in it.

Usage (in the ZenML venv, from this folder, with PYTHONPATH holding stacksecrets' src):
    python pipeline_bench.py MODE STACK
MODE ``zenml``: ZenML's own check (``Stack._validate_secrets``, at the level in
``ZENML_SECRET_VALIDATION_LEVEL``). MODE ``stacksecrets``: the ``on_init`` hook of
``stacksecrets.zenml`` (run with ``ZENML_SECRET_VALIDATION_LEVEL=NONE``). Prints one JSON line:
seconds spent in ZenML's check (every call of it during the run), in the hook, and the run.
``Stack._validate_secrets`` is wrapped with a timer only to measure it; its behaviour is ZenML's.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from zenml import pipeline, step
from zenml.client import Client
from zenml.stack import Stack

from stacksecrets.zenml import validate_active_stack_hook

MODE, STACK = sys.argv[1:3]
spent = {"zenml_check_s": 0.0, "zenml_check_calls": 0, "hook_s": 0.0}
original = Stack._validate_secrets  # noqa: SLF001


def timed_zenml_check(self: Stack, raise_exception: bool) -> None:
    started = time.perf_counter()
    try:
        original(self, raise_exception)
    finally:
        spent["zenml_check_s"] += time.perf_counter() - started
        spent["zenml_check_calls"] += 1


def timed_hook() -> None:
    started = time.perf_counter()
    try:
        validate_active_stack_hook()
    finally:
        spent["hook_s"] += time.perf_counter() - started


Stack._validate_secrets = timed_zenml_check  # type: ignore[method-assign]  # noqa: SLF001


@step
def trivial() -> int:
    return 1


def main() -> None:
    Client().activate_stack(STACK)
    hooks: dict[str, Any] = {"on_init": timed_hook} if MODE == "stacksecrets" else {}
    started = time.perf_counter()
    run = pipeline(name="bench_run", enable_cache=False, **hooks)(_body)
    run()
    spent["run_s"] = time.perf_counter() - started
    print(json.dumps(spent))


def _body() -> None:
    trivial()


if __name__ == "__main__":
    main()
