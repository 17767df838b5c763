"""Runs inside the ZenML 0.98 venv: ZenML's own client as fleet pods, for fleet_bench.py.

    python fleet_pods.py PODS NAME...

Each pod does what a step or a pipeline launch does to resolve its secret references:
``Client().get_secret(name)`` for every name, one after the other, with ZenML's own retries
(urllib3: 429, 502, 503, 504 retried up to 10 times, ``Retry-After`` obeyed). PODS pods run
as threads of this process (a ZenML process takes ~200 MB: 200 of them do not fit one machine);
they share ZenML's client and its connection pool, each pod's calls and retries are its own.

The client connects as ``ZENML_STORE_URL`` / ``ZENML_STORE_API_TOKEN`` say. It is made (and
ZenML imported) before the clock: the script prints ``READY`` and waits for a line on its
standard input, then runs the pods and prints one JSON document: each pod's finish (seconds
from the go) and whether it failed (and why, without any value).
"""

from __future__ import annotations

import json
import sys
import threading
import time

from zenml.client import Client


def main() -> None:
    pods = int(sys.argv[1])
    names = sys.argv[2:]
    client = Client()
    client.zen_store  # noqa: B018 - connect (server info) before the clock
    print("READY", flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    results: list[dict[str, object]] = []

    def pod() -> None:
        error = None
        try:
            for name in names:
                secret = client.get_secret(name)
                assert secret.secret_values, "no values"
        except Exception as exc:  # noqa: BLE001 - a failed pod is a result here
            error = type(exc).__name__ + ": " + str(exc).splitlines()[0][:160]
        results.append({"finish": time.perf_counter() - started, "error": error})

    threads = [threading.Thread(target=pod) for _ in range(pods)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"pods": results}), flush=True)


if __name__ == "__main__":
    main()
