"""Attribute types from ZenML's own flavor config classes, where ZenML is importable (the
pipeline hook; ``stacksecrets validate`` in ZenML's environment) and no server is asked.

One subprocess in the ZenML venv checks every case (importing ZenML's flavor registry takes
a few seconds)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from zenml_fixtures import _clean_environ, _zenml_python

SRC = Path(__file__).resolve().parents[1] / "src"

SCRIPT = r"""
import json
from stacksecrets import Client, Component, Stack

client = Client("memory://")
client.create_secret("s", {"k": "v"})
stack = Stack(
    "prod",
    [
        Component("deployer", "local", "d", {"lcm_timeout": "{{s.k}}", "auth_key": "{{s.k}}"}),
        Component("experiment_tracker", "mlflow", "m", {"tracking_password": "{{s.k}}"}),
        Component("artifact_store", "local", "a", {"path": "{{s.k}}"}),
        Component("orchestrator", "no_such_flavor", "o", {"x": "{{s.k}}"}),
    ],
    runtime="zenml",
)
report = client.validate_stack(stack)
print(json.dumps({
    "problems": [
        {"kind": p.kind.value, "detail": p.detail, "usages": [str(u) for u in p.usages]}
        for p in report.problems
    ],
    "notes": list(report.notes),
}))
"""


def test_types_from_flavor_config_classes_without_a_server(tmp_path: Path) -> None:
    python = _zenml_python()
    environ = {
        **_clean_environ(),
        "PYTHONPATH": str(SRC),
        "ZENML_CONFIG_PATH": str(tmp_path / "zenml-config"),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "STACKSECRETS_CONFIG_DIR": str(tmp_path / "ss"),
        "HOME": os.environ.get("HOME", str(tmp_path)),
    }
    done = subprocess.run(
        [str(python), "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    by_place = {u: p for p in result["problems"] for u in p["usages"]}
    places = set(by_place)
    # An int attribute refuses the reference's text: known from the class, no server asked.
    timeout = [p for p in places if p.endswith("configuration.lcm_timeout")]
    assert timeout, result
    assert "an integer" in by_place[timeout[0]]["detail"]
    assert by_place[timeout[0]]["kind"] == "zenml_unresolvable"
    # Optional[str] and SecretStr-like str attributes take it: not flagged.
    assert not [p for p in places if "auth_key" in p or "tracking_password" in p], result
    # A field with a validator: said to be checked before ZenML resolves the reference.
    path = [p for p in places if p.endswith("configuration.path")]
    assert path, result
    assert "validator" in by_place[path[0]]["detail"]
    # A flavor ZenML does not have: not guessed, said once in the report.
    assert not [p for p in places if p.endswith("configuration.x")], result
    (note,) = result["notes"]
    assert "1 component (orchestrator/no_such_flavor)" in note
    assert "v" not in {p["detail"] for p in result["problems"]}
