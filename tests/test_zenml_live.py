"""Where ZenML users live, on the real ZenML server: after `zenml login` from a fresh ZenML
config folder, with nothing else set, the CLI and `Client()` find the server; `--active-stack`;
a step's remote environment (`get_config_environment_vars()`); a refused token; and real
pipeline runs on the local orchestrator that validate their stack with stacksecrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import anyio
import attrs
import pytest

from stacksecrets import AsyncClient, AuthenticationError
from stacksecrets.stores import ZenMLStore
from zenml_fixtures import ROOT, ZenMLServer, zenml_commands

pytestmark = pytest.mark.zenml

PIPELINE = ROOT / "tests" / "data" / "zenml_pipeline.py"
VALUES = {"user": "u-live", "pw": "pw-live-s3cret"}


@attrs.frozen
class Login:
    """A ZenML client config folder logged in to the server with `zenml login --api-key`."""

    prefix: str
    home: Path
    config: Path
    api_key: str = attrs.field(repr=False)
    server: ZenMLServer = attrs.field(repr=False)

    @property
    def secret(self) -> str:
        return self.prefix + "sec"

    def env(self, **extra: str) -> dict[str, str]:
        """Nothing but a PATH, a HOME and ZenML's config folder (no ZENML_STORE_*); and the
        PYTHONPATH this run was given, so that the code under test is the one that runs."""
        return {
            "PATH": os.environ["PATH"],
            **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
            "HOME": str(self.home),
            "ZENML_CONFIG_PATH": str(self.config),
            "ZENML_ANALYTICS_OPT_IN": "false",
            "ZENML_ENABLE_RICH_TRACEBACK": "false",
            "NO_COLOR": "1",
            **extra,
        }


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=300, check=False, cwd=ROOT
    )


def stacksecrets(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "stacksecrets", *args], env)


@pytest.fixture(scope="module")
def login(zenml_server: ZenMLServer, tmp_path_factory: pytest.TempPathFactory) -> Login:
    base = tmp_path_factory.mktemp("zenml-login")
    prefix = f"l{uuid.uuid4().hex[:6]}-"
    (base / "home").mkdir()
    found = Login(
        prefix=prefix,
        home=base / "home",
        config=base / "zenml-config",
        api_key=zenml_server.create_service_account(prefix + "sa"),
        server=zenml_server,
    )
    p = prefix
    # One process of the ZenML venv for the whole set-up (each command as `zenml ARGS`).
    zenml_commands(
        zenml_server.python,
        [
            (["login", zenml_server.url, "--api-key"], found.api_key + "\n"),
            ["secret", "create", found.secret, *(f"--{k}={v}" for k, v in VALUES.items())],
            ["container-registry", "register", p + "reg", "--flavor=default",
             "--uri=localhost:5000", "--authentication_secret={{" + found.secret + ".pw}}"],
            ["container-registry", "register", p + "reg-bad", "--flavor=default",
             "--uri=localhost:1", "--authentication_secret={{" + p + "gone.pw}}",
             "--default_repository={{" + found.secret + ".nokey}}"],
            ["stack", "register", p + "good", "-o", "default", "-a", "default", "-c", p + "reg"],
            ["stack", "register", p + "bad", "-o", "default", "-a", "default", "-c", p + "reg-bad"],
            ["stack", "set", p + "good"],
        ],
        env=found.env(),
    )  # fmt: skip
    return found


def stack_id(server: ZenMLServer, name: str) -> str:
    answer = server.rest().get("/stacks", params={"name": f"equals:{name}"})
    answer.raise_for_status()
    return str(answer.json()["items"][0]["id"])


def test_login_config_is_what_zenml_wrote(login: Login):
    config = (login.config / "config.yaml").read_text()
    assert "type: rest" in config
    assert login.server.url in config
    assert (login.config / "credentials.yaml").exists()


def test_secret_list_after_zenml_login_with_nothing_else_set(login: Login):
    result = stacksecrets(login.env(), "-v", "secret", "list")
    assert result.returncode == 0, result.stderr
    assert login.secret in result.stdout.split()
    # -v names the store it used, and where it was found; never the key.
    assert login.server.store_url in result.stderr
    assert str(login.config / "config.yaml") in result.stderr
    assert login.api_key not in result.stdout + result.stderr


def test_validate_active_stack_after_zenml_login(login: Login):
    result = stacksecrets(login.env(), "validate", "--active-stack", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["stacks"] == [login.prefix + "good"]
    assert report["store"] == login.server.store_url

    text = stacksecrets(login.env(), "validate", "--active-stack")
    assert f"Store: {login.server.store_url}" in text.stdout


def test_active_stack_from_the_variable_combines_with_other_stacks(login: Login):
    bad = stack_id(login.server, login.prefix + "bad")
    env = login.env(ZENML_ACTIVE_STACK_ID=bad)
    result = stacksecrets(
        env, "validate", "--active-stack", "--zenml-stack", login.prefix + "good", "--json"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert sorted(report["stacks"]) == sorted([login.prefix + "good", login.prefix + "bad"])
    found = {(p["kind"], p["secret"], p["key"]) for p in report["problems"]}
    assert found == {
        ("missing_secret", login.prefix + "gone", None),
        ("missing_key", login.secret, "nokey"),
    }


def test_validate_with_no_argument_validates_the_active_stack(login: Login):
    """After `zenml login` and `zenml stack set`, bare `stacksecrets validate` validates the
    stack ZenML would run now: the healthy one passes (exit 0), naming its store on stderr;
    with the broken stack active it fails on that stack's problems."""
    result = stacksecrets(login.env(), "validate", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["stacks"] == [login.prefix + "good"]
    assert f"Store: {login.server.store_url}" in result.stderr.splitlines()

    bad = login.env(ZENML_ACTIVE_STACK_ID=stack_id(login.server, login.prefix + "bad"))
    broken = stacksecrets(bad, "validate", "--json")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert json.loads(broken.stdout)["stacks"] == [login.prefix + "bad"]


def test_register_secrets_on_a_healthy_stack_in_ci_exits_0(login: Login):
    """`register-secrets < /dev/null` (no terminal, nothing to fix) on the healthy active
    stack: exit 0, nothing asked, nothing written."""
    result = subprocess.run(
        [sys.executable, "-m", "stacksecrets", "register-secrets"],
        env=login.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Secret references OK"), result.stdout
    assert "Writing to" not in result.stdout + result.stderr


def test_active_stack_needs_a_zenml_store(login: Login, tmp_path: Path):
    env = login.env(STACKSECRETS_STORE=(tmp_path / "s.json").as_uri())
    result = stacksecrets(env, "validate", "--active-stack")
    assert result.returncode == 2
    assert "--active-stack reads the stack from the ZenML server" in result.stderr


CLIENT_VALUES = """
import json, sys
import stacksecrets
print(json.dumps(stacksecrets.Client().get_secret(sys.argv[1]).secret_values))
"""

ZENML_VALUES = """
import json, sys
from zenml.client import Client
print("VALUES " + json.dumps(Client().get_secret(sys.argv[1]).secret_values))
"""


def test_client_after_zenml_login_with_nothing_else_set(login: Login):
    result = run([sys.executable, "-c", CLIENT_VALUES, login.secret], login.env())
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == VALUES


ENVIRONMENT_OF_A_STEP = """
import json
from zenml.orchestrators.utils import get_config_environment_vars
found = get_config_environment_vars()
# ZenML before 0.90 gives one dict, secrets included; then (environment, secrets).
environment, secrets = found if isinstance(found, tuple) else (found, {})
print("ENV " + json.dumps({"environment": environment, "secrets": secrets}))
"""


def _last_line(stdout: str, tag: str) -> str:
    lines = [line for line in stdout.splitlines() if line.startswith(tag + " ")]
    assert lines, f"no {tag} line in the output"
    return lines[-1].removeprefix(tag + " ")


def test_remote_step_environment_reads_what_zenml_reads(login: Login, tmp_path: Path):
    """Only what ZenML gives a step on a remote orchestrator: no config folder, no key."""
    python = str(login.server.python)
    made = run([python, "-c", ENVIRONMENT_OF_A_STEP], login.env())
    assert made.returncode == 0, made.stderr[-2000:]
    given = json.loads(_last_line(made.stdout, "ENV"))
    assert "ZENML_STORE_API_TOKEN" in {**given["environment"], **given["secrets"]}
    assert "ZENML_STORE_API_KEY" not in {**given["environment"], **given["secrets"]}
    (tmp_path / "home").mkdir()
    step_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        **given["environment"],
        **given["secrets"],
    }
    ours = run([sys.executable, "-c", CLIENT_VALUES, login.secret], step_env)
    assert ours.returncode == 0, ours.stderr[-2000:]
    theirs = run([python, "-c", ZENML_VALUES, login.secret], step_env)
    assert theirs.returncode == 0, theirs.stderr[-2000:]
    assert json.loads(ours.stdout) == json.loads(_last_line(theirs.stdout, "VALUES")) == VALUES


def test_refused_token_says_how_to_log_in_again(zenml_server: ZenMLServer, tmp_path: Path):
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.bm90LWEtdmFsaWQtc2lnbmF0dXJl"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "ZENML_STORE_URL": zenml_server.url,
        "ZENML_STORE_API_TOKEN": token,
    }
    result = stacksecrets(env, "secret", "list")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "refused the API token" in result.stderr
    assert f"zenml login {zenml_server.url}" in result.stderr
    assert token not in result.stdout + result.stderr

    # The library: a token alone cannot log in again; the error says how to.
    async def list_with_the_token() -> None:
        store = ZenMLStore(zenml_server.url, token=token)
        try:
            async with AsyncClient(store) as client:
                await client.list_secrets()
        finally:
            await store.aclose()

    with pytest.raises(AuthenticationError, match="zenml login") as caught:
        anyio.run(list_with_the_token)
    assert token not in str(caught.value)


# -- real pipeline runs --------------------------------------------------------------------


@pytest.fixture(scope="module")
def zenml_can_import_stacksecrets(login: Login) -> None:
    # One process of the ZenML venv for both checks (ZenML is slow to import).
    check = run(
        [str(login.server.python), "-c", PIPELINE_READY], login.env(PYTHONPATH=str(ROOT / "src"))
    )
    if check.returncode == NO_STACKSECRETS:
        pytest.fail(
            "stacksecrets' dependencies are not in the ZenML venv (nox installs them: "
            f"noxfile.zenml_python()): {check.stderr[-500:]}",
            pytrace=False,
        )
    if check.returncode != 0:
        # The ZenML version matrix (nox -s zenml_matrix) runs older servers' venvs too.
        pytest.skip(f"this ZenML has no pipeline on_init hook: {check.stderr.strip()[-200:]}")


#: The exit code of ``PIPELINE_READY`` when stacksecrets.zenml cannot be imported.
NO_STACKSECRETS = 3

PIPELINE_READY = f"""
import sys, traceback
try:
    import stacksecrets.zenml
except BaseException:
    traceback.print_exc()
    sys.exit({NO_STACKSECRETS})
import inspect
from zenml import __version__, pipeline
assert "on_init" in inspect.signature(pipeline).parameters, f"ZenML {{__version__}}"
"""


def pipeline_run(login: Login, stack: str, marker: Path) -> subprocess.CompletedProcess[str]:
    env = login.env(
        PYTHONPATH=str(ROOT / "src"),
        ZENML_SECRET_VALIDATION_LEVEL="NONE",
        STACKSECRETS_VALIDATION_LEVEL="SECRET_AND_KEY_EXISTS",
    )
    argv = [str(login.server.python), str(PIPELINE), stack, login.secret, str(marker)]
    return run(argv, env)


@pytest.mark.usefixtures("zenml_can_import_stacksecrets")
def test_pipeline_run_validates_its_stack_and_the_step_reads_what_zenml_reads(
    login: Login, tmp_path: Path
):
    marker = tmp_path / "step-ran"
    result = pipeline_run(login, login.prefix + "good", marker)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "stacksecrets.zenml.validated" in output
    assert marker.read_text() == "same"  # stacksecrets.Client() == ZenML's Client() in the step


@pytest.mark.usefixtures("zenml_can_import_stacksecrets")
def test_pipeline_run_with_a_missing_secret_fails_before_its_step(login: Login, tmp_path: Path):
    marker = tmp_path / "step-ran"
    result = pipeline_run(login, login.prefix + "bad", marker)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert not marker.exists(), "the step ran although the stack's secrets are missing"
    # The full report, every problem at once, as the run's failure.
    assert "SecretValidationError" in output
    assert f"missing secret: '{login.prefix}gone'" in output
    assert f"missing key: '{login.secret}' key 'nokey'" in output
    assert "HookExecutionException" in output
    assert VALUES["pw"] not in output
