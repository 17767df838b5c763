"""End to end on a real ZenML 0.98 server: the CLI's --zenml-stack, the sync Client on a server
URL, and stacksecrets' answers next to ZenML's own validation of the same stacks."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path

import attrs
import pytest

from cli_runner import Cli
from stacksecrets import Client
from zenml_fixtures import ZenMLServer

pytestmark = pytest.mark.zenml


@attrs.frozen
class Platform:
    prefix: str
    prod: str
    dev: str
    url: str = attrs.field(repr=False)


# Two stacks registered through ZenML's own CLI. prod: one good reference, one missing key,
# and a reference to "<p>aws-pr", which does not exist but is a prefix of "<p>aws-prod": ZenML's
# look-up matches names by prefix, so it accepts it (and the pipeline fails at run time).
# dev: a missing secret, and the same good reference as prod (shared between stacks).
SEED = """
import sys
from zenml.cli.cli import cli

p = sys.argv[1]
def run(*args):
    try:
        cli.main(list(args), standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise
run("secret", "create", p + "aws-prod", "--access_key=AKIA-E2E", "--secret_key=e2e-s3cret")
run("container-registry", "register", p + "reg-prod", "--flavor=default", "--uri=localhost:5000",
    "--authentication_secret={{" + p + "aws-prod.secret_key}}",
    "--default_repository={{" + p + "aws-prod.session_token}}")
run("container-registry", "register", p + "reg-prefix", "--flavor=default", "--uri=localhost:1",
    "--authentication_secret={{" + p + "aws-pr.secret_key}}")
run("container-registry", "register", p + "reg-dev", "--flavor=default", "--uri=localhost:5001",
    "--authentication_secret={{" + p + "aws-prod.secret_key}}",
    "--default_repository={{" + p + "gone.token}}")
run("stack", "register", p + "prod", "-o", "default", "-a", "default", "-c", p + "reg-prod")
run("stack", "register", p + "prefix", "-o", "default", "-a", "default", "-c", p + "reg-prefix")
run("stack", "register", p + "dev", "-o", "default", "-a", "default", "-c", p + "reg-dev")
"""

# ZenML's own validation of each stack, as a pipeline run does it.
ZENML_VALIDATE = """
import json, re, sys
from zenml.client import Client
from zenml.stack import Stack

results = {}
for name in sys.argv[1:]:
    stack = Stack.from_model(Client().get_stack(name, allow_name_prefix_match=False))
    try:
        stack._validate_secrets(raise_exception=True)
        results[name] = []
    except Exception as exc:
        found = re.search(r"do not exist in the secret store: (.*?)\\.(\\n|$)", str(exc))
        results[name] = sorted(found.group(1).split(", ")) if found else ["?" + str(exc)[:200]]
print("ZENML-RESULT " + json.dumps(results))
"""


@pytest.fixture(scope="module")
def platform(zenml_server: ZenMLServer) -> Platform:
    prefix = f"e{uuid.uuid4().hex[:6]}-"
    zenml_server.run_python(SEED, prefix)
    url = (
        f"zenml+{zenml_server.url}?username={zenml_server.username}"
        f"&password={zenml_server.password}"
    )
    return Platform(prefix, f"{prefix}prod", f"{prefix}dev", url)


class FirstValidationCli(Cli):
    """The command with the metadata cache off: call counts here are a first validation's
    (the cache has its own tests)."""

    def environ(
        self, env: Mapping[str, str] | None = None, *, store: Path | str | None = None
    ) -> dict[str, str]:
        return {**super().environ(env, store=store), "STACKSECRETS_METADATA_CACHE": "0"}


@pytest.fixture
def cli() -> Cli:
    return FirstValidationCli()


def problems(result: subprocess.CompletedProcess[str]) -> set[tuple[str, str | None, str | None]]:
    report = json.loads(result.stdout)
    return {(p["kind"], p["secret"], p["key"]) for p in report["problems"]}


def test_cli_validates_a_server_stack(cli: Cli, platform: Platform, zenml_server: ZenMLServer):
    """`stacksecrets validate --store zenml+http://... --zenml-stack NAME` reads the stack from
    the server and reports its missing key, exit 1, without showing the password."""
    result = cli.invoke(
        "validate", "--store", platform.url, "--zenml-stack", platform.prod, "--json"
    )
    assert result.returncode == 1, result.stderr
    p = platform.prefix
    assert problems(result) == {("missing_key", f"{p}aws-prod", "session_token")}
    assert zenml_server.password not in result.stdout + result.stderr


def test_cli_validates_several_server_stacks_in_one_pass(cli: Cli, platform: Platform):
    """Several --zenml-stack options are validated in one pass; a secret they share is
    looked up once, and every usage of each problem is listed."""
    result = cli.invoke(
        "validate",
        "--store",
        platform.url,
        "--zenml-stack",
        platform.prod,
        "--zenml-stack",
        platform.dev,
        "--json",
    )
    report = json.loads(result.stdout)
    p = platform.prefix
    assert problems(result) == {
        ("missing_key", f"{p}aws-prod", "session_token"),
        ("missing_secret", f"{p}gone", None),
    }
    assert report["stats"]["unique_secrets"] == 2
    # One batched existence call, then one read of the one secret that exists.
    assert report["stats"]["store_calls"] == 2


def test_cli_unknown_server_stack_exits_two(cli: Cli, platform: Platform):
    """An unknown --zenml-stack name exits 2 and names the stack."""
    result = cli.invoke("validate", "--store", platform.url, "--zenml-stack", "no-such-stack-x")
    assert result.returncode == 2
    assert "no-such-stack-x" in result.stderr


def test_sync_client_reads_a_secret_from_the_server(platform: Platform):
    """Client(store="zenml+http://...").get_secret(name).secret_values, as step code does."""
    client = Client(platform.url)
    secret = client.get_secret(f"{platform.prefix}aws-prod")
    assert secret.secret_values == {"access_key": "AKIA-E2E", "secret_key": "e2e-s3cret"}


def test_same_missing_references_as_zenml_and_right_where_zenml_is_wrong(
    cli: Cli, platform: Platform, zenml_server: ZenMLServer, tmp_path
):
    """On the same server and stacks, stacksecrets reports every missing reference ZenML's own
    validation reports, and also the prefix-name reference that ZenML wrongly accepts."""
    p = platform.prefix
    names = [platform.prod, platform.dev, f"{p}prefix"]
    # ZenML loads flavors relative to a source root: run the check as a file from a folder.
    script = tmp_path / "zenml_validate.py"
    script.write_text(ZENML_VALIDATE)
    output = zenml_server._run(
        [str(zenml_server.python), str(script), *names], "ZenML's own validation"
    )
    line = next(x for x in output.splitlines() if x.startswith("ZENML-RESULT "))
    zenml = json.loads(line.removeprefix("ZENML-RESULT "))
    assert zenml == {
        platform.prod: [f"{p}aws-prod.session_token"],
        platform.dev: [f"{p}gone.token"],
        f"{p}prefix": [],  # ZenML's defect: "aws-pr" matched "aws-prod" by prefix
    }
    for name in names:
        result = cli.invoke("validate", "--store", platform.url, "--zenml-stack", name, "--json")
        ours = sorted(
            f"{secret}.{key}" if key else secret
            for kind, secret, key in problems(result)
            if kind in {"missing_key", "missing_secret"}
        )
        expected = [re.sub(r"\.token$", "", ref) if "gone" in ref else ref for ref in zenml[name]]
        if name == f"{p}prefix":
            expected = [f"{p}aws-pr"]
        assert ours == expected, name
