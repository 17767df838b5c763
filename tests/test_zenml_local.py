"""ZenML without a server (never logged in, or after `zenml logout --local`): its secrets are
in its local database, and stacksecrets reads those (`zenml+local://`, ZenML's own client in
the same process), found with nothing configured. Real ZenML in its own venv, a fresh
ZENML_CONFIG_PATH, no server anywhere; where zenml cannot be imported, a clear error instead of
another store."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import attrs
import pytest

from cli_runner import Cli
from stacksecrets import ConfigurationError
from stacksecrets.stores import open_store
from zenml_fixtures import ROOT, _zenml_python, zenml_commands

VALUES = {"user": "u-local", "pw": "pw-local-s3cret"}

SETUP = """
from zenml.client import Client
client = Client()
client.create_secret("registry-prod", {"k": "prod"})
client.create_secret("both", {"scope": "private"}, private=True)
client.create_secret("both", {"scope": "public"})
"""

READ = """
import json, sys
import stacksecrets, stacksecrets.stores
from stacksecrets import SecretNotFoundError
from zenml.client import Client
ours = stacksecrets.Client()
answers = {"store": stacksecrets.stores.store_url()}
for name in sys.argv[1:]:
    try:
        answers[name] = ours.get_secret(name).secret_values
    except SecretNotFoundError:
        answers[name] = None
theirs = Client()
answers["zenml:registry"] = theirs.get_secret("registry").name
answers["zenml-runtime:both"] = theirs.get_secret_by_name_and_private_status("both").secret_values
print("ANSWERS " + json.dumps(answers))
"""


@attrs.frozen
class LocalZenML:
    """A ZenML configuration folder with no server, and the ZenML venv's python."""

    python: Path
    config: Path
    home: Path

    def env(self) -> dict[str, str]:
        """Nothing but a PATH, a HOME, ZenML's folder and stacksecrets' source."""
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(self.home),
            "ZENML_CONFIG_PATH": str(self.config),
            "ZENML_ANALYTICS_OPT_IN": "false",
            "ZENML_ENABLE_RICH_TRACEBACK": "false",
            "NO_COLOR": "1",
            "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'tests'}",
            "STACKSECRETS_CACHE_DIR": str(self.home / "cache"),
        }

    def run(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(argv),
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=ROOT,
        )


@pytest.fixture(scope="module")
def local_zenml(tmp_path_factory: pytest.TempPathFactory) -> LocalZenML:
    base = tmp_path_factory.mktemp("zenml-local")
    (base / "home").mkdir()
    found = LocalZenML(python=_zenml_python(), config=base / "zenml-config", home=base / "home")
    # `zenml secret create`, then SETUP, in one process of the ZenML venv (slow to import).
    create = ["secret", "create", "local_only", *(f"--{k}={v}" for k, v in VALUES.items())]
    zenml_commands(found.python, [create], env=found.env(), then=SETUP, cwd=ROOT)
    return found


@pytest.mark.zenml
def test_zenml_secret_create_without_a_server_is_what_client_reads(local_zenml: LocalZenML):
    """The done-when of issue 23: no server, `zenml secret create`, then `Client().get_secret`
    with nothing configured returns it; ZenML's configuration says `store.type: sql`."""
    assert "type: sql" in (local_zenml.config / "config.yaml").read_text()
    result = local_zenml.run(str(local_zenml.python), "-c", READ, "local_only")
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.split("ANSWERS ", 1)[1])
    assert answers["store"] == "zenml+local://"
    assert answers["local_only"] == VALUES


@pytest.mark.zenml
def test_names_are_exact_and_public_comes_first_as_zenml_runs(local_zenml: LocalZenML):
    """ZenML's `Client.get_secret("registry")` finds `registry-prod` (a substring); ours does
    not. Of a public and a private `both`, ours is the one ZenML's run time resolves."""
    result = local_zenml.run(str(local_zenml.python), "-c", READ, "registry", "both")
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.split("ANSWERS ", 1)[1])
    assert answers["zenml:registry"] == "registry-prod"
    assert answers["registry"] is None
    assert answers["both"] == answers["zenml-runtime:both"] == {"scope": "public"}


@pytest.mark.zenml
def test_the_command_line_names_zenmls_local_store(local_zenml: LocalZenML):
    """`stacksecrets secret list` in ZenML's venv, nothing configured: ZenML's names, and the
    store named on stderr with where it was found."""
    python = str(local_zenml.python)
    result = local_zenml.run(python, "-m", "stacksecrets", "-v", "secret", "list")
    assert result.returncode == 0, result.stderr[-3000:]
    assert {"local_only", "registry-prod", "both"} <= set(result.stdout.split())
    assert "zenml+local://" in result.stderr
    assert str(local_zenml.config / "config.yaml") in result.stderr
    assert VALUES["pw"] not in result.stdout + result.stderr


@pytest.mark.zenml
def test_the_store_contract_in_the_zenml_venv(local_zenml: LocalZenML, tmp_path: Path):
    """tests/zenml_local_contract.py (the whole store contract, on asyncio and trio) in the
    ZenML venv, on a database of its own."""
    check = local_zenml.run(str(local_zenml.python), "-c", "import pytest, trio, pytest_timeout")
    if check.returncode != 0:
        pytest.fail(
            "pytest, pytest-timeout and trio are not in the ZenML venv (nox installs them: "
            f"noxfile.zenml_python()): {check.stderr[-300:]}",
            pytrace=False,
        )
    own = attrs.evolve(local_zenml, config=tmp_path / "zenml-config")
    result = own.run(
        str(own.python), "-m", "pytest", "--noconftest", "-p", "no:cacheprovider",
        "--rootdir", str(ROOT / "tests"), "-c", os.devnull, "-q",
        # ZenML's own imports warn (passlib's crypt); every other warning is an error.
        "-W", "error", "-W", "ignore::DeprecationWarning",
        "-W", "ignore::PendingDeprecationWarning",
        str(ROOT / "tests" / "zenml_local_contract.py"),
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
    assert "failed" not in result.stdout


def test_without_zenml_importable_the_command_says_why_and_what_to_do(cli: Cli, tmp_path: Path):
    """This interpreter (the dev venv) cannot import zenml, and ZenML's configuration has no
    server: exit 2 with why and the ways out, not the local file store in silence."""
    config = tmp_path / "zenml-config"
    config.mkdir()
    (config / "config.yaml").write_text("store:\n  type: sql\n  url: sqlite:////nowhere/z.db\n")
    result = cli.invoke("secret", "list", env={"ZENML_CONFIG_PATH": str(config)})
    assert result.exit_code == 2, result.output
    assert "local database" in result.stderr
    assert "zenml login --local" in result.stderr
    assert result.stdout.strip() in {"", "[]"}


@pytest.mark.parametrize("url", ["zenml+local:///tmp/zenml.db", "zenml+local://host"])
def test_the_local_store_url_names_no_database(url: str):
    """The database is the one ZenML's configuration names; a path in the URL is refused
    rather than ignored."""
    with pytest.raises(ConfigurationError, match=r"just zenml\+local://"):
        open_store(url, environ={})
