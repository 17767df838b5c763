"""The `stacksecrets` command, run as a real process against a real local store file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli_runner import Cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
VALUES = ("example-only-password", "example-only-db-password", "example-only-not-a-real-key")


@pytest.fixture
def example_store(tmp_path: Path) -> Path:
    """A private copy of the example store file."""
    path = tmp_path / "secrets.json"
    shutil.copy(EXAMPLES / "secrets.json", path)
    path.chmod(0o600)
    return path


def test_validate_ok_exits_zero(cli: Cli, example_store: Path):
    """The example stacks validate cleanly: exit 0 and an OK line naming both stacks."""
    result = cli.invoke("validate", str(EXAMPLES / "stacks"), store=example_store)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert "'prod'" in result.stdout
    assert "'staging'" in result.stdout


def test_validate_problems_exit_one_and_name_every_usage(cli: Cli, example_store: Path):
    """A stack with problems exits 1 and the report names each problem and where it is used."""
    result = cli.invoke("validate", str(EXAMPLES / "broken-stack.yaml"), store=example_store)
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "missing key: 'mlflow_secret' key 'pasword'" in out
    assert "missing secret: 'ecr_creds'" in out
    assert "invalid reference: {{xxx}}: no '.' between" in out
    assert "container_registry 'ecr', configuration.authentication_secret" in out
    assert not any(value in out + result.stderr for value in VALUES)


def test_validate_json_output(cli: Cli, example_store: Path):
    """--json prints the report as JSON, with problems, usages and stats."""
    result = cli.invoke(
        "validate", str(EXAMPLES / "broken-stack.yaml"), "--json", store=example_store
    )
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["level"] == "SECRET_AND_KEY_EXISTS"
    assert {p["kind"] for p in report["problems"]} == {
        "missing_key",
        "missing_secret",
        "invalid_reference",
    }
    assert report["stats"]["unique_secrets"] == 2


def test_validate_level_secret_exists_ignores_keys(cli: Cli, example_store: Path):
    """At SECRET_EXISTS a wrong key is not a problem; a missing secret still is."""
    result = cli.invoke(
        "validate",
        str(EXAMPLES / "broken-stack.yaml"),
        "--level",
        "secret_exists",
        "--json",
        store=example_store,
    )
    kinds = {p["kind"] for p in json.loads(result.stdout)["problems"]}
    assert kinds == {"missing_secret", "invalid_reference"}


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--level", "bogus"], {}, "not a validation level; use one of NONE, SECRET_EXISTS"),
        ([], {"STACKSECRETS_VALIDATION_LEVEL": "all"}, "STACKSECRETS_VALIDATION_LEVEL: 'all'"),
        (["--store", "ftp://x"], {}, "store URL scheme 'ftp' is not supported"),
        (["--store", "nowhere"], {}, "has no scheme"),
    ],
)
def test_bad_configuration_exits_two(cli: Cli, args, env, message, example_store: Path):
    """A bad level, variable or store URL exits 2 with an error that says what to fix."""
    result = cli.invoke("validate", str(EXAMPLES / "stacks"), *args, store=example_store, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_stack_file_exits_two_naming_the_file(cli: Cli, tmp_path: Path, example_store: Path):
    """A malformed stack file exits 2 and the error names the file and line."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("stacks:\n  - name: x\n    components: [\n")
    result = cli.invoke("validate", str(bad), store=example_store)
    assert result.returncode == 2
    assert "bad.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_store_file_exits_two_and_is_left_alone(cli: Cli, tmp_path: Path):
    """A store file that is not valid JSON is reported (exit 2) and never overwritten."""
    store = tmp_path / "secrets.json"
    store.write_text('{"version": 1, "secrets": {"a": {"k": "v-hidden-1"}')
    store.chmod(0o600)
    before = store.read_bytes()
    for args in (["validate", str(EXAMPLES / "stacks")], ["secret", "create", "n", "--k=v"]):
        result = cli.invoke(*args, store=store)
        assert result.returncode == 2
        assert "v-hidden-1" not in result.stderr
    assert store.read_bytes() == before


def test_unreachable_store_exits_three(cli: Cli):
    """A store that cannot be reached exits 3 and says which one."""
    url = "zenml+http://127.0.0.1:9?username=u&password=pw-not-shown"
    result = cli.invoke("validate", str(EXAMPLES / "stacks"), "--deadline", "20", store=url)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "127.0.0.1:9" in result.stdout + result.stderr
    assert "pw-not-shown" not in result.stdout + result.stderr


def test_secret_commands_round_trip(cli: Cli, tmp_path: Path):
    """create (as in the seed), get (values hidden), list, update, delete, on a real file."""
    store = tmp_path / "new" / "secrets.json"
    created = cli.invoke(
        "secret",
        "create",
        "mlflow_secret",
        "--username=admin",
        "--password",
        "s3cret-value-1",
        store=store,
    )
    assert created.returncode == 0, created.stderr
    assert "s3cret-value-1" not in created.stdout
    assert (store.stat().st_mode & 0o777) == 0o600

    shown = cli.invoke("secret", "get", "mlflow_secret", store=store)
    assert shown.returncode == 0
    assert "username: **********" in shown.stdout
    assert "s3cret-value-1" not in shown.stdout
    revealed = cli.invoke("secret", "get", "mlflow_secret", "--show-values", "--json", store=store)
    assert json.loads(revealed.stdout)["values"] == {
        "password": "s3cret-value-1",
        "username": "admin",
    }

    updated = cli.invoke(
        "secret",
        "update",
        "mlflow_secret",
        "--password=new-value-2",
        "--remove-key",
        "username",
        store=store,
    )
    assert updated.returncode == 0, updated.stderr
    listed = cli.invoke("secret", "list", "--json", store=store)
    assert json.loads(listed.stdout) == ["mlflow_secret"]
    after = cli.invoke("secret", "get", "mlflow_secret", "--show-values", "--json", store=store)
    assert json.loads(after.stdout)["values"] == {"password": "new-value-2"}

    deleted = cli.invoke("secret", "delete", "mlflow_secret", "--yes", store=store)
    assert deleted.returncode == 0
    missing = cli.invoke("secret", "get", "mlflow_secret", store=store)
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr


def test_secret_values_from_stdin_stay_out_of_argv(cli: Cli, tmp_path: Path):
    """--values-file - reads a JSON/YAML mapping from stdin, so values stay out of history."""
    store = tmp_path / "s.json"
    result = cli.invoke(
        "secret",
        "create",
        "db",
        "--values-file",
        "-",
        store=store,
        stdin='{"user": "app", "password": "from-stdin-3"}',
    )
    assert result.returncode == 0, result.stderr
    got = cli.invoke("secret", "get", "db", "--show-values", "--json", store=store)
    assert json.loads(got.stdout)["values"]["password"] == "from-stdin-3"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["secret", "create", "x"], "at least one --key=value"),
        (["secret", "create", "x", "oops"], "expected --key=value"),
        (["secret", "create", "x", "--k=1", "--k=2"], "given twice"),
        (["secret", "create", "x", "--values-file", "/nonexistent.json"], "cannot read values"),
    ],
)
def test_bad_secret_input_exits_two(cli: Cli, args, message, tmp_path: Path):
    """Malformed secret input exits 2 with a message saying what was wrong."""
    result = cli.invoke(*args, store=tmp_path / "s.json")
    assert result.returncode == 2
    assert message in result.stderr


def test_create_existing_secret_exits_one(cli: Cli, example_store: Path):
    """Creating a name that exists fails (exit 1) and leaves the stored secret as it was."""
    result = cli.invoke("secret", "create", "aws", "--x=y", store=example_store)
    assert result.returncode == 1
    assert "already exists" in result.stderr
    kept = cli.invoke("secret", "get", "aws", "--json", store=example_store)
    assert set(json.loads(kept.stdout)["values"]) == {"access_key_id", "secret_access_key"}


@pytest.mark.parametrize(
    "variable", ["STACKSECRETS_VALIDATION_LEVEL", "ZENML_SECRET_VALIDATION_LEVEL"]
)
def test_secret_commands_ignore_a_bad_level_variable(cli: Cli, variable: str, example_store: Path):
    """The level matters only to validation: listing and reading secrets work whatever it is."""
    listed = cli.invoke("secret", "list", store=example_store, env={variable: "bogus"})
    assert listed.returncode == 0, listed.stderr
    assert "mlflow_secret" in listed.stdout
    shown = cli.invoke(
        "secret", "get", "mlflow_secret", store=example_store, env={variable: "bogus"}
    )
    assert shown.returncode == 0, shown.stderr
