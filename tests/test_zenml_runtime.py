"""stacksecrets' ZenML compatibility rule against ZenML 0.98's real run time and parsers.

One script in the ZenML venv (importing ZenML takes seconds) builds component configurations,
settings and run configurations with references, against the session's real ZenML server
where the secrets exist, and says for each value what ZenML's run time returned: the secret
(``resolved``), the text as written (``literal``), or an error. The tests then check that
stacksecrets predicts exactly that, and agrees with ZenML on what a run configuration's
settings are.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from cli_runner import Cli
from stacksecrets import load_stack_file
from stacksecrets._references import scan
from stacksecrets._zenml.rules import GENERAL_SETTINGS, value_reason
from stacksecrets._zenml.runconfig import (
    COMPONENT_TYPES,
    CONFIGURE_ARGS,
    RUN_CONFIG_FIELDS,
    RUN_CONFIG_KEYS,
    STEP_KEYS,
)
from zenml_fixtures import ZenMLServer

pytestmark = pytest.mark.zenml

# Values of a top-level string attribute; {p} is the test's secret prefix.
TOP_LEVEL = [
    "{{{p}a.b}}",
    "{{ {p}a.b }}",
    "https://{{{p}a.b}}@host",
    "{{{p}a.b}}{{{p}c.d}}",
    "{{{p}a.b}} {{{p}c.d}}",
    "\\{{{p}a.b}}",
    "no reference",
]

PROBE = r"""
import json, sys
from typing import Any, Dict, List, Optional
from zenml.config.base_settings import BaseSettings
from zenml.config import DockerSettings, ResourceSettings, DeploymentSettings
from zenml.config.pipeline_run_configuration import PipelineRunConfiguration
from zenml.config.settings_resolver import SettingsResolver
from zenml.config.step_configurations import StepConfigurationUpdate
from zenml.enums import StackComponentType
from zenml.stack.stack_component import StackComponentConfig

secret_value = sys.argv[1]
values = json.loads(sys.argv[2])
nested_ref = sys.argv[3]
run_yaml = sys.argv[4]

class ProbeSettings(BaseSettings):
    token: Optional[str] = None
    env: Dict[str, Any] = {}
    hosts: List[str] = []

class ProbeConfig(StackComponentConfig):
    token: Optional[str] = None
    env: Dict[str, Any] = {}
    hosts: List[str] = []

def outcome(read, written):
    try:
        got = read()
    except Exception as exc:
        return "error:" + type(exc).__name__
    if got == written:
        return "literal"
    return "resolved" if got == secret_value else "other"

out = {"top": {}, "nested": {}, "general": {}}
for cls in (ProbeSettings, ProbeConfig):
    out["top"][cls.__name__] = {v: outcome(lambda: cls(token=v).token, v) for v in values}
    out["nested"][cls.__name__] = {
        "env": outcome(lambda: cls(env={"T": nested_ref}).env["T"], nested_ref),
        "hosts": outcome(lambda: cls(hosts=[nested_ref]).hosts[0], nested_ref),
    }
out["docker_environment"] = outcome(
    lambda: DockerSettings(environment={"TOKEN": nested_ref}).environment["TOKEN"], nested_ref)
out["docker_parent_image"] = outcome(
    lambda: DockerSettings(parent_image=nested_ref).parent_image, nested_ref)
out["resources_cpu_count"] = outcome(
    lambda: SettingsResolver("resources", BaseSettings(cpu_count=nested_ref))
    ._convert_settings(ResourceSettings), nested_ref)

# The general settings: which attributes take a string (where a reference can resolve).
for key, cls in (("docker", DockerSettings), ("resources", ResourceSettings),
                 ("deployment", DeploymentSettings)):
    strings, others = [], []
    for name in cls.model_fields:
        try:
            cls(**{name: "{{zz-none.k}}"})
            strings.append(name)
        except KeyError:  # a model validator read it: it was resolved while building
            strings.append(name)
        except Exception:
            others.append(name)
    out["general"][key] = [cls.__name__, sorted(strings), sorted(others)]

out["run_config_keys"] = sorted(PipelineRunConfiguration.model_fields)
import inspect
from zenml.pipelines.pipeline_definition import Pipeline
out["configure_args"] = sorted(set(inspect.getfullargspec(Pipeline.configure)[0]) - {"self"})
out["step_keys"] = sorted(StepConfigurationUpdate.model_fields)
out["component_types"] = sorted(StackComponentType.values())

# ZenML's own reading of a run configuration file, and its run time on the settings in it.
config = PipelineRunConfiguration.from_yaml(run_yaml)
def dump(settings):
    return {k: v.model_dump(exclude_unset=True) for k, v in (settings or {}).items()}
out["run_config"] = {"pipeline": dump(config.settings)}
for step, update in (config.steps or {}).items():
    out["run_config"]["step " + step] = dump(update.settings)
docker = SettingsResolver("docker", config.steps["trainer"].settings["docker"])._convert_settings(
    DockerSettings)
out["run_config_nested"] = outcome(lambda: docker.environment["TOKEN"], nested_ref)
out["run_config_top"] = outcome(lambda: docker.parent_image, nested_ref)
print("PROBE " + json.dumps(out))
"""


@attrs.frozen
class Probe:
    prefix: str
    values: list[str]
    secret_value: str
    run_yaml: Path
    out: dict[str, Any]


def run_config_text(p: str) -> str:
    return f"""\
run_name: compat
settings:
  docker:
    parent_image: "{{{{{p}a.b}}}}"
  resources:
    memory: 1GB
steps:
  trainer:
    settings:
      docker:
        parent_image: "{{{{{p}a.b}}}}"
        environment:
          TOKEN: "{{{{{p}a.b}}}}"
      experiment_tracker.mlflow:
        experiment_name: "{{{{{p}missing.key}}}}"
  evaluator:
    enable_cache: false
"""


@pytest.fixture(scope="module")
def probe(zenml_server: ZenMLServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probe]:
    p = f"r{uuid.uuid4().hex[:6]}-"
    secret_value = f"value-{uuid.uuid4().hex[:8]}"
    ids = [
        zenml_server.create_secret(f"{p}a", {"b": secret_value}),
        zenml_server.create_secret(f"{p}c", {"d": "other"}),
    ]
    run_yaml = tmp_path_factory.mktemp("runconfig") / "run.yaml"
    run_yaml.write_text(run_config_text(p))
    values = [v.replace("{p}", p) for v in TOP_LEVEL]
    stdout = zenml_server.run_python(
        PROBE, secret_value, json.dumps(values), "{{" + p + "a.b}}", str(run_yaml)
    )
    line = next(line for line in stdout.splitlines() if line.startswith("PROBE "))
    try:
        yield Probe(p, values, secret_value, run_yaml, json.loads(line.removeprefix("PROBE ")))
    finally:
        for secret_id in ids:
            zenml_server.delete_secret(secret_id)


def predicted(value: str) -> str:
    """What stacksecrets says ZenML's run time does with a top-level string value."""
    found = scan(value)
    if found.whole and value_reason(value) is None:
        return "resolved"
    if value_reason(value) is not None and "fails at run time" in str(value_reason(value)):
        return "error:KeyError"
    return "literal"


@pytest.mark.parametrize("model", ["ProbeSettings", "ProbeConfig"])
def test_top_level_rule_equals_zenml_run_time(probe: Probe, model: str):
    """Whole value resolves; embedded, several, escaped stay literal; '{{a.b}}{{c.d}}' fails:
    for settings and for component configuration alike."""
    observed = probe.out["top"][model]
    assert observed == {value: predicted(value) for value in probe.values}
    assert observed[probe.values[0]] == "resolved"  # the probe can tell resolved from literal


@pytest.mark.parametrize("model", ["ProbeSettings", "ProbeConfig"])
def test_nested_references_stay_literal_in_zenml(probe: Probe, model: str):
    """A reference in a mapping or a list below a top-level attribute is never resolved."""
    assert probe.out["nested"][model] == {"env": "literal", "hosts": "literal"}


def test_real_docker_settings(probe: Probe):
    """DockerSettings: environment.TOKEN stays literal, parent_image resolves; a reference in
    ResourceSettings.cpu_count (a number) makes ZenML fail to build the settings."""
    assert probe.out["docker_environment"] == "literal"
    assert probe.out["docker_parent_image"] == "resolved"
    assert probe.out["resources_cpu_count"] == "error:SettingsResolvingError"


def test_general_settings_table_equals_zenml(probe: Probe):
    """The table of attributes that accept a reference is ZenML's own."""
    table = {key: [name, sorted(s), sorted(o)] for key, (name, s, o) in GENERAL_SETTINGS.items()}
    assert table == probe.out["general"]


def test_run_configuration_schema_equals_zenml(probe: Probe):
    """The run configuration and step keys and component types are ZenML's own: the keys ZenML
    applies from a file are PipelineRunConfiguration's fields and configure()'s arguments."""
    assert sorted(RUN_CONFIG_FIELDS) == probe.out["run_config_keys"]
    assert set(probe.out["configure_args"]) - RUN_CONFIG_FIELDS == CONFIGURE_ARGS
    assert RUN_CONFIG_FIELDS | set(probe.out["configure_args"]) == RUN_CONFIG_KEYS
    assert sorted(STEP_KEYS) == probe.out["step_keys"]
    assert sorted(COMPONENT_TYPES) == probe.out["component_types"]


def test_run_configuration_settings_equal_zenml_parsing(probe: Probe):
    """stacksecrets and ZenML's PipelineRunConfiguration read the same settings, with the
    same values, from the same file (steps without settings have none in both)."""
    (stack,) = load_stack_file(probe.run_yaml)
    ours = {
        ("pipeline" if c.type == "pipeline" else f"step {c.name}"): dict(c.settings)
        for c in stack.components
    }
    assert ours == probe.out["run_config"]


def test_nested_run_configuration_setting_is_reported_and_left_literal_by_zenml(
    probe: Probe, cli: Cli
):
    """steps.trainer.settings.docker.environment.TOKEN: reported as not resolved by ZenML,
    and ZenML's run time indeed leaves it as text (parent_image beside it resolves)."""
    assert probe.out["run_config_nested"] == "literal"
    assert probe.out["run_config_top"] == "resolved"
    result = cli.invoke("validate", str(probe.run_yaml), "--level", "NONE", "--json")
    report = json.loads(result.stdout)
    places = {
        (u["component_name"], u["attribute"])
        for p in report["problems"]
        if p["kind"] == "zenml_unresolvable"
        for u in p["usages"]
    }
    assert places == {("trainer", "settings.docker.environment.TOKEN")}
    assert result.exit_code == 0  # NONE turns validation off: found without a store call, a warning


# -- a stack registered through ZenML's CLI ---------------------------------------------------

REGISTER = """
import sys
from zenml.cli.cli import cli

p = sys.argv[1]
def run(*args):
    try:
        cli.main(list(args), standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise
run("container-registry", "register", p + "reg", "--flavor=default",
    "--uri=https://{{" + p + "a.b}}@localhost:5000",
    "--authentication_secret={{" + p + "a.b}}{{" + p + "c.d}}",
    "--default_repository={{" + p + "a.b}}")
run("stack", "register", p + "stack", "-o", "default", "-a", "default", "-c", p + "reg")
"""


@pytest.fixture(scope="module")
def registered(probe: Probe, zenml_server: ZenMLServer) -> str:
    zenml_server.run_python(REGISTER, probe.prefix)
    return f"{probe.prefix}stack"


def server_url(server: ZenMLServer) -> str:
    return f"zenml+{server.url}?username={server.username}&password={server.password}"


def test_compat_problems_on_a_stack_registered_through_zenml(
    cli: Cli, probe: Probe, registered: str, zenml_server: ZenMLServer
):
    """ZenML's CLI accepts an embedded reference and two references in one value; the
    secrets exist, so only the compatibility problems are reported, each with its place."""
    result = cli.invoke(
        "validate", "--store", server_url(zenml_server), "--zenml-stack", registered
    )
    assert result.returncode == 1, result.stderr
    out = result.stdout
    p = probe.prefix
    place = f"stack '{registered}', container_registry '{p}reg', configuration."
    assert f"'{{{{{p}a.b}}}}' is embedded in a longer string" in out
    assert place + "uri" in out
    assert f"ZenML reads it as one reference to secret '{p}a', key 'b}}}}{{{{{p}c.d'" in out
    assert place + "authentication_secret" in out
    assert "default_repository" not in out  # a whole reference to an existing key: fine
    assert probe.secret_value not in out + result.stderr
    off = cli.invoke(
        "validate",
        "--store",
        server_url(zenml_server),
        "--zenml-stack",
        registered,
        "--no-zenml-runtime-check",
    )
    assert off.returncode == 0, off.stdout + off.stderr


def test_cli_run_config_with_zenml_stack_reports_missing_step_setting(
    cli: Cli, probe: Probe, registered: str, zenml_server: ZenMLServer
):
    """`stacksecrets validate run.yaml --zenml-stack NAME`: a missing secret in a step's
    settings is named with the step and the settings key; exit 1."""
    result = cli.invoke(
        "validate",
        str(probe.run_yaml),
        "--store",
        server_url(zenml_server),
        "--zenml-stack",
        registered,
        "--json",
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    (missing,) = [p for p in report["problems"] if p["kind"] == "missing_secret"]
    assert missing["secret"] == f"{probe.prefix}missing"
    assert [(u["source"], u["component_name"], u["attribute"]) for u in missing["usages"]] == [
        ("run config", "trainer", "settings['experiment_tracker.mlflow'].experiment_name")
    ]
    assert set(report["stacks"]) == {str(probe.run_yaml), registered}


# -- settings carried by a pipeline object ----------------------------------------------------

PIPELINE = """
import json, sys
from zenml import pipeline, step
from zenml.config import DockerSettings
from stacksecrets import Client
from stacksecrets.zenml import settings_sources

p = sys.argv[1]

@step(settings={
    "docker": DockerSettings(parent_image="{{" + p + "a.b}}",
                             environment={"TOKEN": "{{" + p + "a.b}}"}),
    "experiment_tracker.mlflow": {"experiment_name": "{{" + p + "gone.k}}"},
})
def trainer() -> int:
    return 1

@pipeline(settings={"resources": {"gpu_class": "{{" + p + "c.d}}"}}, enable_cache=False)
def training() -> None:
    trainer()

training.prepare()
report = Client(sys.argv[2]).validate_stacks(settings_sources(training))
print("REPORT " + report.to_json(indent=None))
"""


def test_settings_sources_of_a_real_pipeline(
    probe: Probe, zenml_server: ZenMLServer, tmp_path: Path
):
    """stacksecrets.zenml.settings_sources reads a real @pipeline's and @step's settings:
    the missing secret and the nested reference are named with the step and settings key."""
    # stacksecrets and its dependencies, behind the ZenML venv's own packages.
    site = next(p for p in sys.path if p.endswith("site-packages"))
    src = str(Path(__file__).resolve().parents[1] / "src")
    code = f"import sys; sys.path[1:1] = [{src!r}]; sys.path.append({site!r})\n" + PIPELINE
    stdout = zenml_server.run_python(code, probe.prefix, server_url(zenml_server))
    line = next(line for line in stdout.splitlines() if line.startswith("REPORT "))
    report = json.loads(line.removeprefix("REPORT "))
    found = {
        (p["kind"], p["secret"], u["component_name"], u["attribute"])
        for p in report["problems"]
        for u in p["usages"]
    }
    p = probe.prefix
    assert found == {
        (
            "missing_secret",
            f"{p}gone",
            "trainer",
            "settings['experiment_tracker.mlflow'].experiment_name",
        ),
        ("zenml_unresolvable", None, "trainer", "settings.docker.environment.TOKEN"),
    }
    assert probe.secret_value not in stdout
