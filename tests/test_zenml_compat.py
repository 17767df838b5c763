"""The ZenML run-time compatibility check and ZenML run configuration files, without ZenML.

What ZenML's run time really does with the same values is shown in tests/test_zenml_runtime.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from cli_runner import Cli
from stacksecrets import (
    AsyncClient,
    Client,
    ClientOptions,
    Component,
    ProblemKind,
    Stack,
    StackLoadError,
    load_stack_file,
)
from stacksecrets._options import OptionOverrides
from stacksecrets._zenml.rules import value_reason

RUN_YAML = """\
# As ZenML's docs show a run configuration (pipeline.with_options(config_path=...)).
run_name: nightly-{date}
enable_cache: false
parameters:
  epochs: 3
settings:
  docker:
    parent_image: "{{registry.image}}"
    environment:
      HF_TOKEN: "{{hf.token}}"
  resources:
    cpu_count: 2
steps:
  trainer:
    enable_cache: true
    experiment_tracker: mlflow
    settings:
      experiment_tracker.mlflow:
        experiment_name: "{{mlflow.experiment}}"
      docker:
        user: "{{deploy.user}}"
  evaluator:
    parameters:
      threshold: 0.5
"""


def stack_of(value: object, *, runtime: str = "zenml") -> Stack:
    return Stack(
        "s",
        [Component("container_registry", "default", "reg", {"uri": value})],
        runtime=runtime,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{a.b}}", None),
        ("{{ a.b }}", None),
        ("{{a.b.c}}", None),
        ("plain text", None),
        ("https://{{a.b}}@host", "'{{a.b}}' is embedded in a longer string"),
        ("{{a.b}}{{c.d}}", "ZenML reads it as one reference to secret 'a', key 'b}}{{c.d'"),
        ("{{a.b}}pw{{c.d}}", "to secret 'a', key the rest of the value, and fails"),
        ("{{a.b}} {{c.d}}", "'{{a.b}}', '{{c.d}}' are several references in one value"),
        ("\\{{a.b}}", "ZenML has no escape"),
        ("{{a b.c}}", None),  # malformed: reported as an invalid reference instead
    ],
)
def test_value_rule(value: str, expected: str | None):
    """Each top-level string gets the reason ZenML's run time would not resolve it, or none."""
    reason = value_reason(value)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason


def test_a_native_stack_gets_no_compatibility_problem():
    """Only stacks ZenML runs are held to ZenML's rule: stacksecrets resolves embedded ones."""
    report = Client("memory://").validate_stacks([stack_of("https://{{a.b}}@h", runtime="native")])
    assert ProblemKind.ZENML_UNRESOLVABLE not in {p.kind for p in report.problems}


def test_an_embedded_reference_in_a_zenml_stack_is_reported_at_level_none():
    """It is a configuration problem: reported with its place at every level, no store call."""
    report = Client("memory://").validate_stacks([stack_of("https://{{a.b}}@h")], level="NONE")
    (problem,) = report.problems
    assert problem.kind is ProblemKind.ZENML_UNRESOLVABLE
    assert str(problem.usages[0]) == "stack 's', container_registry 'reg', configuration.uri"
    assert report.stats.store_calls == 0
    assert "not resolved by ZenML: '{{a.b}}' is embedded" in report.to_text()
    assert "https" not in problem.detail  # the text around a reference is never shown


def test_text_between_references_is_never_shown():
    """ZenML reads '{{a.b}}TEXT{{c.d}}' as key 'b}}TEXT{{c.d'; the report names the
    references but not TEXT, which could be a credential typed in the wrong place."""
    report = Client("memory://").validate_stacks([stack_of("{{a.b}}S3cr3t-pw{{c.d}}")])
    assert any(p.kind is ProblemKind.ZENML_UNRESOLVABLE for p in report.problems)
    assert "S3cr3t" not in report.to_text() + report.to_json()


def test_nested_references_are_reported_with_their_path():
    """A reference inside a mapping or list below a top-level attribute stays literal."""
    stack = Stack(
        "s",
        [
            Component(
                "orchestrator",
                "k8s",
                "k",
                {"pod": {"env": ["{{a.b}}"]}},
                {"docker": {"environment": {"TOKEN": "{{c.d}}"}}},
            )
        ],
        runtime="zenml",
    )
    report = Client("memory://").validate_stacks([stack], level="NONE")
    places = {str(u): p.detail for p in report.problems for u in p.usages}
    assert (
        "nested inside 'pod' (a mapping)"
        in places["stack 's', orchestrator 'k', configuration.pod.env[0]"]
    )
    assert (
        "nested inside 'environment'"
        in places["stack 's', orchestrator 'k', settings.docker.environment.TOKEN"]
    )


def test_one_problem_per_reason_with_every_place():
    """The same unresolvable value in two stacks is one problem listing both places."""
    stacks = [
        Stack(name, [Component("x", "f", "c", {"u": "x{{a.b}}"})], runtime="zenml")
        for name in ("one", "two")
    ]
    report = Client("memory://").validate_stacks(stacks, level="NONE")
    (problem,) = report.problems
    assert [u.stack for u in problem.usages] == ["one", "two"]


def test_the_option_turns_the_check_off():
    """zenml_runtime_check=False: for users who resolve ZenML stacks through stacksecrets."""
    client = Client("memory://", zenml_runtime_check=False)
    assert client.validate_stacks([stack_of("x{{a.b}}")], level="NONE").ok


def test_the_option_refuses_a_non_boolean():
    """A wrong type is a ConfigurationError naming the option."""
    with pytest.raises(Exception, match="zenml_runtime_check"):
        ClientOptions(zenml_runtime_check="no")  # type: ignore[arg-type]


def test_options_and_overrides_list_the_same_fields():
    """Every ClientOptions field can be given as a keyword argument, and only those."""
    assert set(OptionOverrides.__annotations__) == set(ClientOptions.__annotations__)


def test_a_zenml_export_file_is_run_by_zenml(tmp_path: Path):
    """A `zenml stack export` file is a stack ZenML runs; a native file is not."""
    export = tmp_path / "export.yaml"
    export.write_text(
        "stack_name: s\ncomponents:\n  orchestrator:\n"
        "  - {name: o, flavor: local, type: orchestrator, configuration: {}}\n"
    )
    native = tmp_path / "native.yaml"
    native.write_text("name: n\ncomponents: [{type: orchestrator, flavor: local, name: o}]\n")
    assert load_stack_file(export)[0].runtime == "zenml"
    assert load_stack_file(native)[0].runtime == "native"


# -- run configuration files -------------------------------------------------------------------


@pytest.fixture
def run_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(RUN_YAML)
    return path


def test_a_run_configuration_is_read_as_pipeline_and_steps(run_yaml: Path):
    """Detected by its keys; the pipeline's and each step's settings, runtime ZenML."""
    (stack,) = load_stack_file(run_yaml)
    assert (stack.kind, stack.runtime, stack.name) == ("run config", "zenml", str(run_yaml))
    by_name = {(c.type, c.name): c for c in stack.components}
    assert set(by_name) == {("pipeline", ""), ("step", "trainer"), ("step", "evaluator")}
    assert by_name["step", "trainer"].settings["docker"] == {"user": "{{deploy.user}}"}
    assert by_name["pipeline", ""].configuration == {}


def test_run_configuration_places_read_naturally(run_yaml: Path):
    """A report names the file, the step and the settings path."""
    report = Client("memory://").validate_stacks(load_stack_file(run_yaml))
    text = report.to_text()
    assert f"run config '{run_yaml}', step 'trainer', settings.docker.user" in text
    assert f"run config '{run_yaml}', pipeline, settings.docker.parent_image" in text
    assert (
        f"run config '{run_yaml}', step 'trainer', "
        "settings['experiment_tracker.mlflow'].experiment_name"
    ) in text
    kinds = {(p.kind, p.secret) for p in report.problems}
    assert (ProblemKind.MISSING_SECRET, "deploy") in kinds
    assert (ProblemKind.ZENML_UNRESOLVABLE, None) in kinds  # docker.environment.HF_TOKEN


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("settings:\n  dockr:\n    user: x\n", "'dockr' is not a settings key ZenML accepts", 2),
        ("settings:\n  docker: [1]\n", "settings.docker: must be a mapping", 2),
        ("steps:\n  t:\n    setings: {}\n", "steps.t: unknown key 'setings'", 3),
        ("run_name: x\nenable_cachee: s3cr3t\n", "unknown key 'enable_cachee'", 2),
        ("steps: [a]\n", "steps: must be a mapping", 1),
    ],
)
def test_run_configuration_errors_name_file_and_line(
    tmp_path: Path, text: str, message: str, line: int
):
    """Errors say what is wrong, in which file and on which line, never a value."""
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(StackLoadError) as caught:
        load_stack_file(path)
    assert message in str(caught.value)
    assert caught.value.line == line
    assert str(path) in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_cli_validates_a_run_configuration_with_a_stack_file(
    cli: Cli, run_yaml: Path, tmp_path: Path
):
    """Run configurations and stack files in one pass; the flag turns the ZenML check off."""
    store = tmp_path / "store.json"
    stack = tmp_path / "stack.yaml"
    stack.write_text(
        "name: s\ncomponents:\n"
        "- {type: orchestrator, flavor: k8s, name: k, configuration: {t: '{{deploy.user}}'}}\n"
    )
    assert cli.invoke("secret", "create", "other", "--k=v", store=store).exit_code == 0
    result = cli.invoke("validate", str(run_yaml), str(stack), "--json", store=store)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    (deploy,) = [p for p in report["problems"] if p["secret"] == "deploy"]
    assert {(u["source"], u["stack"]) for u in deploy["usages"]} == {
        ("run config", str(run_yaml)),
        ("stack", "s"),
    }
    kinds = {p["kind"] for p in report["problems"]}
    assert "zenml_unresolvable" in kinds
    off = cli.invoke(
        "validate", str(run_yaml), "--level", "NONE", "--no-zenml-runtime-check", store=store
    )
    assert off.exit_code == 0, off.stdout


@pytest.mark.anyio
async def test_async_client_validates_run_configuration_settings(run_yaml: Path):
    """On asyncio and trio: found secrets pass, the missing one is named with its step."""
    async with AsyncClient("memory://") as client:
        for name, key in [("registry", "image"), ("hf", "token"), ("mlflow", "experiment")]:
            await client.create_secret(name, {key: "v"})
        report = await client.validate_stacks(load_stack_file(run_yaml))
    missing = [p for p in report.problems if p.kind is ProblemKind.MISSING_SECRET]
    assert [(p.secret, [str(u) for u in p.usages]) for p in missing] == [
        ("deploy", [f"run config '{run_yaml}', step 'trainer', settings.docker.user"])
    ]


# -- run configurations read as ZenML reads them (issue 22) ------------------------------------

HOOKED_RUN = """\
run_name: nightly
on_init: stacksecrets.zenml.validate_active_stack_hook
on_init_kwargs: {}
on_failure: my_hooks.alert
merge: true
secrets: [db-creds]
environment:
  TOKEN: "{{api.token}}"
parameters:
  lr: "{{hp.lr}}"
extra:
  "{{key.name}}": x
steps:
  trainer:
    secrets: [train-creds]
    settings:
      docker:
        parent_image: "{{img.name}}"
"""


def test_every_key_zenml_applies_from_a_file_is_accepted(tmp_path: Path):
    """configure() arguments (on_init, on_failure, merge, ...) beside the model's fields."""
    path = tmp_path / "run.yaml"
    path.write_text(HOOKED_RUN)
    (stack,) = load_stack_file(path)
    pipeline = stack.components[0]
    assert pipeline.secrets == ("db-creds",)
    assert pipeline.environment == {"TOKEN": "{{api.token}}"}
    assert set(pipeline.fields) == {"parameters", "extra"}
    assert stack.components[1].secrets == ("train-creds",)


def test_cli_reports_listed_secrets_and_references_zenml_never_resolves(cli: Cli, tmp_path: Path):
    """`validate run.yaml` with on_init: missing listed secrets named with their place; a
    reference in environment, parameters or a mapping key is not resolved by ZenML."""
    path = tmp_path / "run.yaml"
    path.write_text(HOOKED_RUN)
    store = tmp_path / "store.json"
    for name, key in [("img", "name"), ("api", "token"), ("hp", "lr"), ("train-creds", "k")]:
        assert cli.invoke("secret", "create", name, f"--{key}=v", store=store).exit_code == 0
    result = cli.invoke("validate", str(path), "--json", store=store)
    assert result.exit_code == 1, result.stdout
    problems = json.loads(result.stdout)["problems"]
    missing = [
        (p["secret"], [u["attribute"] for u in p["usages"]])
        for p in problems
        if p["kind"] == "missing_secret"
    ]
    assert missing == [("db-creds", ["secrets[0]"])]
    unresolved = {
        u["attribute"]: p["detail"]
        for p in problems
        if p["kind"] == "zenml_unresolvable"
        for u in p["usages"]
    }
    assert set(unresolved) == {"environment.TOKEN", "parameters.lr", "extra['{{key.name}}']"}
    assert "is in 'environment'" in unresolved["environment.TOKEN"]
    assert "mapping key" in unresolved["extra['{{key.name}}']"]
    text = cli.invoke("validate", str(path), store=store).stdout
    assert f"run config '{path}', pipeline, secrets[0]" in text
    assert "ZenML skips a secret it cannot find" in text


def test_listed_secret_at_secret_exists_and_substring_look_up(tmp_path: Path):
    """At SECRET_EXISTS the listed name must exist exactly: 'db' is missing although 'db-old'
    exists, and the report says ZenML's look-up would inject 'db-old' instead."""
    path = tmp_path / "run.yaml"
    path.write_text("run_name: r\nsecrets: [db]\nsettings: {docker: {user: '{{db-old.u}}'}}\n")
    client = Client("memory://", level="SECRET_EXISTS")
    client.create_secret("db-old", {"u": "x"})
    report = client.validate_stacks(load_stack_file(path))
    (problem,) = report.problems
    assert (problem.kind, problem.secret) == (ProblemKind.MISSING_SECRET, "db")
    assert "would inject 'db-old' instead" in problem.detail


def test_attached_secrets_of_a_stack_and_its_components_are_checked():
    """Secrets attached to a component or a stack (ZenML 0.90+), named with where."""
    client = Client("memory://")
    client.create_secret("present", {"k": "v"})
    stack = Stack(
        "prod",
        [Component("orchestrator", "local", "orch", secrets=["present", "gone"])],
        runtime="zenml",
        secrets=["gone-too"],
    )
    report = client.validate_stack(stack)
    places = {p.secret: [str(u) for u in p.usages] for p in report.problems}
    assert places == {
        "gone": ["stack 'prod', orchestrator 'orch', secrets[1]"],
        "gone-too": ["stack 'prod', secrets[0]"],
    }
    # A native stack has no attached secrets to inject: nothing is checked for it.
    assert Client("memory://").validate_stack(attrs.evolve(stack, runtime="native")).ok


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("run_name: x\nsettings:\n  docker: null\n", "settings.docker: must be a mapping"),
        ("run_name: x\nsteps:\n  trainer: null\n", "steps.trainer: must be a mapping"),
        (
            "run_name: x\nsteps:\n  trainer:\n    settings: null\n",
            "steps.trainer.settings: must be a mapping",
        ),
        (
            'run_name: x\nsettings:\n  "orchestrator\\n.x": {}\n',
            "is not a settings key ZenML accepts",
        ),
        (
            "run_name: x\nsteps:\n  t:\n    settings:\n      deployment: {app_title: a}\n",
            "deployment settings apply to the whole pipeline only",
        ),
        ("run_name: x\nsecrets: db\n", "secrets: must be a list"),
        ("run_name: x\nenvironment: [a]\n", "environment: must be a mapping"),
        ("run_name: x\nname: training\n", "unknown key 'name'"),
    ],
)
def test_run_configuration_refused_where_zenml_refuses(tmp_path: Path, text: str, message: str):
    """Null where ZenML wants a mapping, a key with a line break (ZenML's pattern has no
    DOTALL), deployment settings on a step; `name:` beside `run_name:` is read as a run
    configuration (its unknown key named), not as a stack file."""
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(StackLoadError) as caught:
        load_stack_file(path)
    assert message in str(caught.value)
    assert "ZenML run configuration" in str(caught.value)


def test_top_level_nulls_are_dropped_as_zenml_drops_them(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text("run_name: x\nsettings: null\nsecrets: null\nenvironment: null\n")
    (stack,) = load_stack_file(path)
    assert stack.components[0].settings == {}


def test_run_configuration_aliases_are_bounded(tmp_path: Path):
    """Issue 21 item 13: a few KiB of aliases standing for ~1,000,000 references is refused
    when read, not validated for a minute."""
    lines = ["run_name: x", "extra:", '  a0: &a0 ["{{s.k}}", "{{s.k}}", "{{s.k}}", "{{s.k}}"]']
    lines += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 5)]
    lines.append("steps:")
    lines += [f"  s{j}: {{extra: {{x: *a4}}}}" for j in range(20)]
    path = tmp_path / "run.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 5000
    with pytest.raises(StackLoadError, match="aliases"):
        load_stack_file(path)


def test_settings_sources_carry_listed_secrets_and_environment():
    """A pipeline's and a step's `secrets` and `environment` come with their settings (the
    objects are read as given: here plain mappings, as ZenML's configurations dump)."""
    from types import SimpleNamespace

    from stacksecrets.zenml import settings_sources

    step = SimpleNamespace(name="trainer", configuration={"secrets": ["train-creds"]})
    pipeline = SimpleNamespace(
        name="training",
        configuration={"secrets": ["db"], "environment": {"TOKEN": "{{api.token}}"}},
    )
    (stack,) = settings_sources(pipeline, steps=[step])
    report = Client("memory://", level="SECRET_EXISTS").validate_stacks([stack])
    places = {(p.kind, p.secret): [str(u) for u in p.usages] for p in report.problems}
    assert places[ProblemKind.MISSING_SECRET, "db"] == ["pipeline 'training', secrets[0]"]
    assert places[ProblemKind.MISSING_SECRET, "train-creds"] == [
        "pipeline 'training', step 'trainer', secrets[0]"
    ]
    assert places[ProblemKind.ZENML_UNRESOLVABLE, None] == [
        "pipeline 'training', environment.TOKEN"
    ]


def test_unknown_types_are_said_once_not_guessed():
    """Without a ZenML server's flavor schemas, a zenml stack's references are not checked by
    type: one log event says so (naming the flavors), and no problem is guessed."""
    from structlog.testing import capture_logs

    stack = Stack(
        "prod",
        [
            Component("feature_store", "feast", "f", {"online_port": "{{s.port}}"}),
            Component("orchestrator", "local", "o", {"x": "{{s.port}}"}),
        ],
        runtime="zenml",
    )
    client = Client("memory://")
    client.create_secret("s", {"port": "1"})
    with capture_logs() as events:
        report = client.validate_stack(stack)
    assert report.ok
    unknown = [e for e in events if e["event"] == "stacksecrets.zenml.types_unknown"]
    assert len(unknown) == 1
    assert unknown[0]["flavors"] == ["feature_store/feast", "orchestrator/local"]
    # The report says it once too: text (and the terminal's summary), and JSON.
    (note,) = report.notes
    assert "2 components (feature_store/feast, orchestrator/local)" in note
    assert report.to_text().count("Note: attribute types unknown") == 1
    assert report.to_dict()["notes"] == [note]
    assert "{{" not in note
    # A stack whose components hold no reference has nothing to say.
    plain = Stack("dev", [Component("orchestrator", "local", "o", {"x": "1"})], runtime="zenml")
    assert client.validate_stack(plain).notes == ()
