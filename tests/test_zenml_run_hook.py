"""What a ZenML run will use is what gets validated (issue 22), on a real ZenML 0.98 server:
secrets attached to components and stacks, flavors' attribute types from the server's
schemas, and real pipeline runs configured by a file whose ``on_init:`` adds the hook.

Real runs are slow: two here (one failing, one passing), each batching several cases.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import attrs
import pytest

from cli_runner import Cli
from zenml_fixtures import ZenMLServer

pytestmark = pytest.mark.zenml

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = ROOT / "tests" / "data" / "zenml_config_pipeline.py"


@attrs.frozen
class Seeded:
    prefix: str
    url: str = attrs.field(repr=False)


def _post(server: ZenMLServer, path: str, body: dict[str, object]) -> str:
    answer = server.rest().post(path, json=body)
    assert answer.status_code < 300, f"POST {path}: {answer.status_code} {answer.text[:500]}"
    return str(answer.json()["id"])


def _component_id(server: ZenMLServer, kind: str, name: str) -> str:
    answer = server.rest().get("/components", params={"type": kind, "name": f"equals:{name}"})
    answer.raise_for_status()
    return str(answer.json()["items"][0]["id"])


@pytest.fixture(scope="module")
def seeded(zenml_server: ZenMLServer) -> Seeded:
    """Secrets, components and stacks, created through ZenML's REST API as its CLI would."""
    p = f"h{uuid.uuid4().hex[:6]}-"
    server = zenml_server
    server.create_secret(p + "feast", {"host": "h", "port": "6566"})
    server.create_secret(p + "att", {"TOKEN": "t"})
    server.create_secret(p + "att-old", {"TOKEN": "old"})
    server.create_secret(p + "img", {"name": "python:3.11"})
    server.create_secret(p + "listed", {"K": "v"})
    server.create_secret(p + "empty", {})
    gone = server.create_secret(p + "gone", {"K": "v"})
    orchestrators = {}
    for name, secrets in [("good", [p + "att"]), ("bad", [p + "empty", p + "gone"])]:
        orchestrators[name] = _post(
            server,
            "/components",
            {
                "name": p + "orch-" + name,
                "type": "orchestrator",
                "flavor": "local",
                "configuration": {},
                "secrets": secrets,
            },
        )
    artifact_store = _component_id(server, "artifact_store", "default")
    for name in ("good", "bad"):
        _post(
            server,
            "/stacks",
            {
                "name": p + name,
                "components": {
                    "orchestrator": [orchestrators[name]],
                    "artifact_store": [artifact_store],
                },
                "secrets": [p + "listed"],
            },
        )
    server.delete_secret(gone)  # attached, then deleted
    url = f"zenml+{server.url}?username={server.username}&password={server.password}"
    return Seeded(p, url)


def test_zenml_drops_an_attachment_when_the_secret_is_deleted(
    zenml_server: ZenMLServer, seeded: Seeded
):
    """ZenML 0.98 removes a deleted secret from every component it was attached to: nothing
    is left that a validation could report (what docs/zenml-users.md says)."""
    answer = zenml_server.rest().get(
        "/components", params={"name": f"equals:{seeded.prefix}orch-bad", "hydrate": "true"}
    )
    (component,) = answer.json()["items"]
    assert len(component["metadata"]["secrets"]) == 1  # 'empty' only: 'gone' was dropped


def test_server_stack_attached_secrets(seeded: Seeded):
    """`validate --zenml-stack`: an attached secret without values is reported with its
    component (ZenML skips it at run time with only a warning); the good stack passes."""
    p = seeded.prefix
    result = Cli().invoke("validate", "--store", seeded.url, "--zenml-stack", p + "bad", "--json")
    assert result.exit_code == 1, result.stdout + result.stderr
    problems = json.loads(result.stdout)["problems"]
    found = {
        (q["kind"], q["secret"], u["component_name"], u["attribute"])
        for q in problems
        for u in q["usages"]
    }
    assert found == {("value_not_readable", p + "empty", p + "orch-bad", "secrets[0]")}
    good = Cli().invoke("validate", "--store", seeded.url, "--zenml-stack", p + "good")
    assert good.exit_code == 0, good.stdout + good.stderr


EXPORT = """\
stack_name: typed
zenml_version: 0.98.0
components:
  feature_store:
    - name: feast
      flavor: feast
      configuration:
        online_host: "{{{{{p}feast.host}}}}"
        online_port: "{{{{{p}feast.port}}}}"
        feast_repo: "{{{{{p}feast.nokey}}}}"
        not_an_attribute: "{{{{{p}feast.host}}}}"
"""


def test_registered_flavor_types_from_the_server(seeded: Seeded, tmp_path: Path):
    """A zenml stack export validated against a ZenML server: the types come from the
    flavor's config schema the server stores. A reference in feast's int attribute
    online_port is flagged (ZenML refuses it: 422 when registered), one in its str attribute
    online_host is not; an attribute feast does not have is named."""
    path = tmp_path / "typed.yaml"
    path.write_text(EXPORT.format(p=seeded.prefix))
    result = Cli().invoke("validate", str(path), "--store", seeded.url, "--json")
    assert result.exit_code == 1, result.stdout + result.stderr
    problems = json.loads(result.stdout)["problems"]
    typed = {
        u["attribute"]: q["detail"]
        for q in problems
        if q["kind"] == "zenml_unresolvable"
        for u in q["usages"]
    }
    assert set(typed) == {"configuration.online_port", "configuration.not_an_attribute"}
    assert (
        "FeastFeatureStoreConfig.online_port, which takes an integer"
        in typed["configuration.online_port"]
    )
    assert "does not have" in typed["configuration.not_an_attribute"]
    assert {(q["kind"], q["key"]) for q in problems if q["kind"] == "missing_key"} == {
        ("missing_key", "nokey")
    }


def test_zenml_refuses_a_reference_in_an_int_attribute(zenml_server: ZenMLServer, seeded: Seeded):
    """What the check above agrees with: ZenML's server refuses the same configuration."""
    answer = zenml_server.rest().post(
        "/components",
        json={
            "name": seeded.prefix + "feast-int",
            "type": "feature_store",
            "flavor": "feast",
            "configuration": {"online_port": "{{" + seeded.prefix + "feast.port}}"},
        },
    )
    assert answer.status_code == 422
    assert "online_port" in answer.text


# -- real pipeline runs ------------------------------------------------------------------------


def _run(server: ZenMLServer, stack: str, config: Path, marker: Path) -> str:
    env = {
        **server.env,
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT / "src"),
        "ZENML_SECRET_VALIDATION_LEVEL": "NONE",
        "STACKSECRETS_VALIDATION_LEVEL": "SECRET_AND_KEY_EXISTS",
        "STACKSECRETS_METADATA_CACHE": "0",
    }
    result = subprocess.run(
        [str(server.python), str(PIPELINE), stack, str(config), str(marker)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=config.parent,
    )
    return f"exit={result.returncode}\n{result.stdout}\n{result.stderr}"


RUN_CONFIG = """\
run_name: "{run}"
on_init: stacksecrets.zenml.validate_active_stack_hook
secrets: [{listed}]
settings:
  docker:
    parent_image: "{{{{{image}.name}}}}"
steps:
  trainer:
    secrets: [{step_listed}]
"""


def test_a_file_configured_run_fails_before_its_step_when_something_is_missing(
    zenml_server: ZenMLServer, seeded: Seeded, tmp_path: Path
):
    """One real run, two cases: a missing secret in a setting, and an attached secret without
    values (ZenML itself would only warn); the step never runs and the report names each
    with its place. (A missing listed secret fails ZenML's own compile: see the docs.)"""
    p = seeded.prefix
    config = tmp_path / "run.yaml"
    config.write_text(
        RUN_CONFIG.format(
            run=p + "bad-{time}",
            listed=p + "listed",
            image=p + "no-such-img",
            step_listed=p + "att",
        )
    )
    marker = tmp_path / "ran"
    output = _run(zenml_server, p + "bad", config, marker)
    assert not output.startswith("exit=0"), output[-3000:]
    assert not marker.exists(), "the step ran although the run's secrets are missing"
    assert "HookExecutionException" in output, output[-3000:]
    assert f"missing secret: '{p}no-such-img'" in output, output[-4000:]
    assert "settings.docker.parent_image" in output
    assert f"value not readable: '{p}empty'" in output
    assert f"orchestrator '{p}orch-bad', secrets[0]" in output
    assert "stacksecrets.zenml.run_not_found" not in output


def test_a_file_configured_run_passes_when_everything_exists(
    zenml_server: ZenMLServer, seeded: Seeded, tmp_path: Path
):
    """With everything present the same route lets the run go on (the failing run above shows
    that ZenML applies `on_init:` from the file and the hook validates the run)."""
    p = seeded.prefix
    config = tmp_path / "run.yaml"
    config.write_text(
        RUN_CONFIG.format(
            run=p + "good-{time}", listed=p + "listed", image=p + "img", step_listed=p + "att"
        )
    )
    marker = tmp_path / "ran"
    output = _run(zenml_server, p + "good", config, marker)
    assert output.startswith("exit=0"), output[-4000:]
    assert marker.read_text() == "ran"


# -- the typed check against ZenML's own classes (slow: every flavor ZenML ships) ----------


SWEEP = ROOT / "tests" / "data" / "zenml_type_sweep.py"


@pytest.mark.slow
def test_typed_check_agrees_with_zenml_on_every_shipped_flavor(zenml_server: ZenMLServer):
    """A reference in every attribute of every flavor config class of ZenML 0.98: what ZenML
    does (its own type and validator checks) against stacksecrets' verdict from the class's
    schema (what the server stores). No false alarm; false passes only where a validator
    decides, which a schema cannot show (documented)."""
    from stacksecrets._zenml.types import schema_refusal

    out = zenml_server.run_python(SWEEP.read_text(encoding="utf-8"))
    cases = json.loads(out.split("SWEEP ", 1)[1])
    assert len(cases) > 500
    false_alarms, false_passes = [], []
    for case in cases:
        flagged = schema_refusal(case["schema"], case["attr"], "{{a.b}}") is not None
        refused = case["zenml"] != "ok"
        if flagged and not refused:
            false_alarms.append((case["flavor"], case["attr"]))
        if refused and not flagged:
            false_passes.append((case["flavor"], case["attr"], case["zenml"]))
    assert false_alarms == []
    assert {kind for _, _, kind in false_passes} <= {"validator"}, false_passes


FIELD_TYPES = """
import sys
from stacksecrets import StackLoadError, load_stack_file
try:
    load_stack_file(sys.argv[1])
except StackLoadError as exc:
    print("REFUSED", exc)
else:
    print("READ")
"""


def test_run_configuration_field_types_through_zenml(zenml_server: ZenMLServer, tmp_path: Path):
    """Where ZenML is importable, a run configuration's field types are checked through
    ZenML's own PipelineRunConfiguration: `enable_cache: maybe` is refused, naming the field
    and never the value; a well-typed file is read."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("run_name: r\nenable_cache: maybe-s3cr3t\n")
    good = tmp_path / "good.yaml"
    good.write_text("run_name: r\nenable_cache: false\non_init: a.b\n")
    code = f"import sys; sys.path.insert(0, {str(ROOT / 'src')!r})\n" + FIELD_TYPES
    refused = zenml_server.run_python(code, str(bad))
    assert refused.startswith("REFUSED"), refused
    assert "enable_cache" in refused
    assert "s3cr3t" not in refused
    assert zenml_server.run_python(code, str(good)).startswith("READ")
