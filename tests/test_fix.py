"""``stacksecrets validate --fix`` (and ``register-secrets``): a broken stack becomes valid.

Real processes on a pseudo-terminal (pexpect) answer the hidden prompts, against the local
file store and the real ZenML server; Ctrl-C is the terminal's own (``sendintr``). The store is
then read back by other processes.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import attrs
import filelock
import pytest

from cli_runner import Cli
from fault_proxy import ProxyThread
from pty_cli import spawn
from stacksecrets import ProblemKind, ValidationLevel, ValidationReport
from stacksecrets._report import Problem
from stacksecrets._stack import Usage
from stacksecrets.cli._fix import plan_fix, reference_could_use
from zenml_fixtures import ZenMLServer

STACK_YAML = """\
stacks:
  - name: prod
    components:
      - type: experiment_tracker
        flavor: mlflow
        name: tracker
        configuration:
          username: "{{P-mlflow.user}}"
          password: "{{P-mlflow.password}}"
      - type: artifact_store
        flavor: s3
        name: store
        configuration:
          key: "{{P-aws.key_id}}"
          url: "s3://{{P-aws.key_id}}:{{P-aws.secret_key}}@bucket"
      - type: orchestrator
        flavor: kubernetes
        name: k8s
        configuration:
          context: "{{P-k8s.context}}"
          token: "{{P-k8s.token}}"
"""


@attrs.frozen
class Target:
    """A store, how the CLI reaches it, and a prefix that keeps this test's names apart."""

    store: str
    env: dict[str, str] = attrs.field(repr=False)
    prefix: str

    def values(self) -> dict[str, dict[str, str]]:
        """What the fix is given: two missing secrets and one missing key (each value unique)."""
        p = self.prefix
        return {
            f"{p}-aws": {"key_id": _value("key-id"), "secret_key": _value("aws-secret")},
            f"{p}-k8s": {"token": _value("k8s-token")},
            f"{p}-mlflow": {"password": _value("mlflow-pw"), "user": _value("mlflow-user")},
        }


def _value(label: str) -> str:
    return f"{label}-{secrets.token_hex(8)}"


@pytest.fixture(params=["file", "zenml"])
def target(request: pytest.FixtureRequest, tmp_path: Path, cli: Cli) -> Target:
    """The local file store, or the real ZenML server; secret ``P-k8s`` exists with key
    ``context`` only, ``P-aws`` and ``P-mlflow`` do not."""
    prefix = f"fix{secrets.token_hex(3)}"
    if request.param == "file":
        found = Target((tmp_path / "store" / "secrets.json").absolute().as_uri(), {}, prefix)
    else:
        server: ZenMLServer = request.getfixturevalue("zenml_server")
        env = {"ZENML_STORE_USERNAME": server.username, "ZENML_STORE_PASSWORD": server.password}
        found = Target(server.store_url, env, prefix)
    made = cli.invoke(
        "secret", "create", f"{prefix}-k8s", "--context=ctx-1", store=found.store, env=found.env
    )
    assert made.returncode == 0, made.stderr
    return found


@pytest.fixture
def stack_file(tmp_path: Path, target: Target) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(STACK_YAML.replace("P-", f"{target.prefix}-"), encoding="utf-8")
    return path


def _stored(cli: Cli, target: Target, name: str) -> dict[str, str] | None:
    """The values of secret ``name`` as ``secret get`` reads them; ``None`` if absent."""
    found = cli.invoke(
        "secret", "get", name, "--show-values", "--json", store=target.store, env=target.env
    )
    if found.returncode == 1:
        return None
    assert found.returncode == 0, found.stderr
    return dict(json.loads(found.stdout)["values"])


def test_fix_answers_the_prompts_and_the_stack_validates(
    cli: Cli, target: Target, stack_file: Path
) -> None:
    """Two missing secrets and a missing key: --fix asks for each value with hidden input,
    showing where it is used, writes them, validates again (OK, exit 0); the next validation
    passes, the existing key is unchanged, and no value ever showed on the terminal."""
    values = target.values()
    run = spawn(cli, "validate", str(stack_file), "--fix", store=target.store, env=target.env)
    prompted = run.answer(values)
    assert run.finish() == 0, run.output
    asked = {(p.secret, p.key) for p in prompted}
    assert asked == {(name, key) for name, keys in values.items() for key in keys}
    by_key = {(p.secret, p.key): p.usages for p in prompted}
    p = target.prefix
    assert by_key[f"{p}-aws", "key_id"] == [
        "stack 'prod', artifact_store 'store', configuration.key",
        "stack 'prod', artifact_store 'store', configuration.url",
    ]
    assert by_key[f"{p}-k8s", "token"] == ["stack 'prod', orchestrator 'k8s', configuration.token"]
    assert "Secret references OK" in run.output
    assert f"Created secret '{p}-aws' with key(s) 'key_id', 'secret_key'" in run.output
    assert f"Added key(s) 'token' to secret '{p}-k8s'" in run.output
    leaked = [key for keys in values.values() for key, v in keys.items() if v in run.output]
    assert leaked == [], "a value showed on the terminal"

    again = cli.invoke("validate", str(stack_file), store=target.store, env=target.env)
    assert again.returncode == 0, again.stdout
    assert _stored(cli, target, f"{p}-aws") == values[f"{p}-aws"]
    assert _stored(cli, target, f"{p}-mlflow") == values[f"{p}-mlflow"]
    assert _stored(cli, target, f"{p}-k8s") == {"context": "ctx-1", **values[f"{p}-k8s"]}


def test_register_secrets_is_the_same_fix_under_zenmls_name(
    cli: Cli, target: Target, stack_file: Path
) -> None:
    """``stacksecrets register-secrets PATHS`` (the name of ``zenml stack register-secrets``),
    scripted with a values file on stdin: the stack validates afterwards."""
    values = target.values()
    done = cli.invoke(
        "register-secrets",
        str(stack_file),
        "--values-file",
        "-",
        store=target.store,
        env=target.env,
        stdin=json.dumps(values),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Secret references OK" in done.stdout
    assert (
        cli.invoke("validate", str(stack_file), store=target.store, env=target.env).returncode == 0
    )


def test_a_values_file_never_overwrites_an_existing_key(
    cli: Cli, target: Target, stack_file: Path, tmp_path: Path
) -> None:
    """A values file that also holds a value for an existing key (and for a secret no stack
    uses): only what is missing is written, the rest is named as not used."""
    values = target.values()
    p = target.prefix
    values[f"{p}-k8s"]["context"] = "not-the-context"
    values[f"{p}-unused"] = {"k": "v"}
    file = tmp_path / "values.yaml"
    file.write_text(json.dumps(values), encoding="utf-8")
    done = cli.invoke(
        "validate",
        str(stack_file),
        "--fix",
        "--values-file",
        str(file),
        store=target.store,
        env=target.env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"not used from {file}" in done.stderr
    assert f"'{p}-k8s' key 'context'" in done.stderr
    assert _stored(cli, target, f"{p}-k8s") == {
        "context": "ctx-1",
        "token": values[f"{p}-k8s"]["token"],
    }
    assert _stored(cli, target, f"{p}-unused") is None


def test_dry_run_lists_the_writes_and_writes_nothing(
    cli: Cli, target: Target, stack_file: Path
) -> None:
    """--dry-run needs no terminal, lists each write with where its keys are used, and
    leaves the store as it was (the validation still fails: exit 1)."""
    p = target.prefix
    dry = cli.invoke(
        "validate",
        str(stack_file),
        "--fix",
        "--dry-run",
        store=target.store,
        env=target.env,
        stdin="",
    )
    assert dry.returncode == 1, dry.stderr
    assert "--fix would make 3 write(s):" in dry.stdout
    assert f"create secret '{p}-aws' with key(s) 'key_id', 'secret_key'" in dry.stdout
    assert f"add key(s) 'token' to secret '{p}-k8s'" in dry.stdout
    assert "stack 'prod', orchestrator 'k8s', configuration.token" in dry.stdout
    assert "Nothing was written (--dry-run)." in dry.stdout
    assert _stored(cli, target, f"{p}-aws") is None
    assert _stored(cli, target, f"{p}-k8s") == {"context": "ctx-1"}


def test_without_a_terminal_or_values_it_refuses(
    cli: Cli, target: Target, stack_file: Path
) -> None:
    """No terminal and no values file: exit 2 with what to do instead, before any store call."""
    refused = cli.invoke(
        "validate", str(stack_file), "--fix", store=target.store, env=target.env, stdin=""
    )
    assert refused.returncode == 2
    assert "standard input is not one" in refused.stderr
    assert "--values-file" in refused.stderr
    assert "--dry-run" in refused.stderr
    assert _stored(cli, target, f"{target.prefix}-aws") is None


def test_a_values_file_missing_a_value_writes_nothing(
    cli: Cli, target: Target, stack_file: Path
) -> None:
    """Every value is known before the first write: a values file without one of them is an
    error (exit 2) naming the secret and key, and nothing is written."""
    values = target.values()
    del values[f"{target.prefix}-mlflow"]["user"]
    done = cli.invoke(
        "validate",
        str(stack_file),
        "--fix",
        "--values-file",
        "-",
        store=target.store,
        env=target.env,
        stdin=json.dumps(values),
    )
    assert done.returncode == 2
    assert f"no value for '{target.prefix}-mlflow' key 'user'; nothing was written" in done.stderr
    assert _stored(cli, target, f"{target.prefix}-aws") is None


def test_ctrl_c_at_a_prompt_writes_nothing(cli: Cli, target: Target, stack_file: Path) -> None:
    """Ctrl-C at the second prompt: exit 130, 'interrupted', nothing written."""
    run = spawn(cli, "validate", str(stack_file), "--fix", store=target.store, env=target.env)
    run.child.expect("Value of '.*' key '.*': ")
    assert run.child.waitnoecho(timeout=10)
    run.child.sendline("first-value")
    run.child.expect("Value of '.*' key '.*': ")
    run.child.sendintr()
    assert run.finish() == 130, run.output
    assert "interrupted" in run.output
    assert _stored(cli, target, f"{target.prefix}-aws") is None
    assert _stored(cli, target, f"{target.prefix}-k8s") == {"context": "ctx-1"}


def _check_interrupted(cli: Cli, target: Target, stack_file: Path, output: str) -> list[str]:
    """After Ctrl-C in the writes: the summary names exactly the writes not made, what was
    written is whole, and the store is readable. The names still to do."""
    values = target.values()  # fresh values: the names are what matters here
    p = target.prefix
    assert "write(s) done; still to do:" in output
    todo = [name for name in values if f"secret '{name}'" in output.split("still to do:")[1]]
    assert todo, output
    for name in values:
        stored = _stored(cli, target, name)
        if name == f"{p}-k8s":
            assert stored is not None
            assert stored["context"] == "ctx-1"
            assert ("token" in stored) is (name not in todo)
        else:
            assert (stored is None) is (name in todo), name
    again = cli("validate", str(stack_file), "--json", store=target.store, env=target.env)
    report = json.loads(again.stdout)
    missing = {problem["secret"] for problem in report["problems"]}
    assert missing == set(todo)
    return todo


def test_ctrl_c_during_the_writes_keeps_what_was_written(
    cli: Cli, tmp_path: Path, stack_file: Path, target: Target, request: pytest.FixtureRequest
) -> None:
    """Ctrl-C while the writes run: the write under way finishes, the rest are named as still
    to do (exit 130), the written secrets are whole and the store stays readable; a second
    --fix finishes the job.

    On the file store, the test holds the writers' lock so the first write waits on it while
    Ctrl-C is pressed; on ZenML, a loopback proxy adds 600 ms per round trip so a write is under
    way when Ctrl-C is pressed after the first one is reported done."""
    values = target.values()
    file = tmp_path / "values.json"
    file.write_text(json.dumps(values), encoding="utf-8")
    args = ("-v", "validate", str(stack_file), "--fix", "--values-file", str(file))
    if target.store.startswith("file:"):
        store_path = Path(target.store.removeprefix("file://"))
        with filelock.FileLock(f"{store_path}.lock", thread_local=False):
            run = spawn(cli, *args, store=target.store, env=target.env)
            run.child.expect("stacksecrets.fix.write")
            time.sleep(0.5)  # the write waits for the lock
            run.child.sendintr()
            time.sleep(1.0)  # the signal is taken while the write still waits
        assert run.finish() == 130, run.output
        assert "1 of 3 write(s) done" in run.output
    else:
        server: ZenMLServer = request.getfixturevalue("zenml_server")
        host, port = server.host.split(":")
        with ProxyThread(host, int(port), latency_ms=600) as proxy:
            store = f"zenml+http://127.0.0.1:{proxy.port}"
            run = spawn(cli, *args, store=store, env=target.env)
            run.child.expect("Created secret|Added key")
            run.child.sendintr()
            assert run.finish() == 130, run.output
    assert "interrupted" in run.output
    todo = _check_interrupted(cli, target, stack_file, run.output)
    assert 0 < len(todo) < 3

    finish = cli("validate", str(stack_file), "--fix", "--values-file", str(file),
                 store=target.store, env=target.env)  # fmt: skip
    assert finish.returncode == 0, finish.stdout + finish.stderr


@pytest.mark.parametrize(
    ("name", "key", "usable"),
    [
        ("db", "password", True),
        ("aws-prod_1", "key.with.dots", True),
        ("has space", "k", False),
        ("a.b", "k", False),
        ("db", "k}}x", False),
        ("", "k", False),
        ("db", "", False),
        ("line\nbreak", "k", False),
    ],
)
def test_a_name_no_reference_could_use_is_not_planned(name: str, key: str, usable: bool) -> None:
    """The plan creates only what ``{{name.key}}`` reads back exactly (the rule of
    ``secret create``); anything else is listed as refused, never written."""
    usage = Usage("s", "orchestrator", "o", "configuration.x")
    problem = Problem(ProblemKind.MISSING_KEY, name, key, (usage,))
    plan = plan_fix(ValidationReport(ValidationLevel.SECRET_AND_KEY_EXISTS, (problem,)), [])
    assert reference_could_use(name, key) is usable
    assert [w.keys for w in plan.writes] == ([(key,)] if usable else [])
    assert plan.refused == (() if usable else ((name, key),))


def test_level_none_is_refused_with_fix(cli: Cli, tmp_path: Path) -> None:
    """--fix looks secrets up: --level NONE with it is exit 2; the level variables are not
    followed (a ZenML user's ZENML_SECRET_VALIDATION_LEVEL=NONE still lets --fix find)."""
    stack = tmp_path / "stack.yaml"
    stack.write_text(STACK_YAML.replace("P-", "x-"), encoding="utf-8")
    store = tmp_path / "secrets.json"
    # A store named on the command line must exist for reads (a typo is not an empty store).
    assert cli.invoke("secret", "create", "unrelated", "--k=v", store=store).returncode == 0
    none = cli.invoke("validate", str(stack), "--fix", "--level", "NONE", "--dry-run", store=store)
    assert none.returncode == 2
    assert "--fix needs a level that looks secrets up" in none.stderr
    env = {"ZENML_SECRET_VALIDATION_LEVEL": "NONE"}
    dry = cli.invoke("validate", str(stack), "--fix", "--dry-run", store=store, env=env)
    assert "--fix would make 3 write(s)" in dry.stdout


def test_dry_run_and_values_file_go_with_fix(cli: Cli, tmp_path: Path) -> None:
    """--dry-run or --values-file without --fix is a usage mistake: exit 2, saying so."""
    stack = tmp_path / "stack.yaml"
    stack.write_text(STACK_YAML.replace("P-", "x-"), encoding="utf-8")
    alone = cli.invoke("validate", str(stack), "--dry-run", store=tmp_path / "s.json")
    assert alone.returncode == 2
    assert "--dry-run goes with --fix" in alone.stderr
