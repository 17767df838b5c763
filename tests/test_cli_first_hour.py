"""A ZenML user's first hour with the command line (issue 23) and the end of input at a prompt
(issue 21, 14): the fix is safe in CI, messages name the command that ran, a misspelt name
gets the store's close name, the store in use is named, a prompt that meets the end of input
says "no input" (exit 2), and ``--fix`` through a chain says where it writes.

In-process (``cli.invoke``) unless a real process or terminal is the point.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from cli_runner import Cli
from pty_cli import spawn
from stacksecrets import ValidationLevel, ValidationReport
from stacksecrets._report import Stats

STACK = """\
name: prod
components:
  - type: container_registry
    flavor: default
    name: reg
    configuration:
      uri: "{{registry.repo}}"
      password: "{{registry.password}}"
"""


@pytest.fixture
def store(tmp_path: Path, cli: Cli) -> Path:
    """A file store holding ``registry`` with keys ``repo`` and ``password``."""
    path = tmp_path / "secrets.json"
    made = cli.invoke("secret", "create", "registry", "--repo=r", "--password=p", store=path)
    assert made.exit_code == 0, made.stderr
    return path


def stack(tmp_path: Path, text: str = STACK, name: str = "stack.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "args", [("validate", "--fix"), ("register-secrets",)], ids=["validate-fix", "register"]
)
def test_a_fix_with_nothing_to_fix_needs_no_terminal(
    cli: Cli, tmp_path: Path, store: Path, args: tuple[str, ...]
):
    """A healthy stack and no terminal (CI): the fix has nothing to ask and exits 0."""
    result = cli.invoke(*args, str(stack(tmp_path)), store=store, stdin="")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("Secret references OK")


def test_a_fix_with_something_to_ask_and_no_terminal_names_the_command(
    cli: Cli, tmp_path: Path, store: Path
):
    """Something to create and no terminal: exit 2, naming the command that ran."""
    broken = stack(tmp_path, STACK.replace("registry.password", "registry.token"))
    result = cli.invoke("register-secrets", str(broken), store=store, stdin="")
    assert result.exit_code == 2
    assert "register-secrets asks for each value on a terminal" in result.stderr
    assert "--fix" not in result.stderr.split("--dry-run")[0]


def test_dry_run_names_the_command_that_ran(cli: Cli, tmp_path: Path, store: Path):
    """``register-secrets --dry-run`` says what register-secrets would do, not --fix."""
    broken = stack(tmp_path, STACK.replace("registry.password", "registry.token"))
    result = cli.invoke("register-secrets", str(broken), "--dry-run", store=store, stdin="")
    assert result.exit_code == 1
    assert result.stdout.startswith("register-secrets would make 1 write(s):")
    assert "--fix would make" not in result.stdout


def test_a_misspelt_name_gets_the_stores_close_name(cli: Cli, tmp_path: Path, store: Path):
    """``{{regsitry.repo}}``: no reference uses ``registry``, but the store holds it, and the
    report suggests it (text and JSON)."""
    typo = stack(
        tmp_path, STACK.replace("{{registry.password}}", "x").replace("registry", "regsitry")
    )
    result = cli.invoke("validate", str(typo), store=store)
    assert result.exit_code == 1
    assert "missing secret: 'regsitry'; did you mean 'registry'?" in result.stdout
    as_json = cli.invoke("validate", str(typo), "--json", store=store)
    (problem,) = json.loads(as_json.stdout)["problems"]
    assert problem["suggestion"] == "registry"


def test_no_close_name_in_the_store_no_suggestion(cli: Cli, tmp_path: Path, store: Path):
    """A name far from every stored one gets no suggestion (the ratio rule holds)."""
    other = stack(tmp_path, STACK.replace("registry", "warehouse"))
    result = cli.invoke("validate", str(other), store=store)
    assert result.exit_code == 1
    assert "did you mean" not in result.stdout


def test_validate_without_arguments_and_no_zenml_says_what_to_give(cli: Cli, store: Path):
    """No argument and a store that is not a ZenML server: exit 2, nothing to validate."""
    result = cli.invoke("validate", store=store)
    assert result.exit_code == 2
    assert "nothing to validate" in result.stderr
    assert "zenml login" in result.stderr


def test_the_store_is_named_on_stderr_when_piped(cli: Cli, store: Path):
    """``secret list`` piped: the names on stdout, the store on stderr."""
    result = cli.invoke("secret", "list", store=store)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "registry\n"
    assert f"Store: {store.absolute().as_uri()}" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("secret", "create", "other", "--k=v"),
        ("secret", "update", "registry", "--repo=r2"),
        ("secret", "get", "registry"),
        ("secret", "get", "registry", "--json"),
        ("secret", "delete", "registry", "--yes"),
        ("validate", "STACK"),
        ("validate", "STACK", "--json"),
    ],
    ids=" ".join,
)
def test_every_command_names_its_store_on_stderr(
    cli: Cli, tmp_path: Path, store: Path, args: tuple[str, ...]
):
    """Piped, each command names the store it used on stderr, once; stdout keeps only the
    command's output (``--json``: JSON alone)."""
    args = tuple(str(stack(tmp_path)) if arg == "STACK" else arg for arg in args)
    result = cli.invoke(*args, store=store)
    assert result.exit_code == 0, result.stderr
    named = f"Store: {store.absolute().as_uri()}"
    assert result.stderr.splitlines().count(named) == 1, result.stderr
    if "--json" in args:
        json.loads(result.stdout)
    elif args[0] == "validate":
        assert result.stdout.splitlines()[-1] == named  # the report names it as before
    else:
        assert "Store:" not in result.stdout


def test_end_of_input_at_the_delete_confirmation_is_no_input(cli: Cli, store: Path):
    """Standard input ends at "Delete secret?": exit 2 "no input", not 130 "interrupted";
    the secret is kept."""
    result = cli.invoke("secret", "delete", "registry", store=store, stdin="")
    assert result.exit_code == 2
    assert "no input" in result.stderr
    assert "interrupted" not in result.stderr
    assert cli.invoke("secret", "list", store=store).stdout == "registry\n"


def test_end_of_input_at_a_fix_prompt_is_no_input(cli: Cli, tmp_path: Path, store: Path):
    """Ctrl-D (end of input) at a --fix prompt on a terminal: exit 2 "no input", nothing
    written; Ctrl-C stays "interrupted" (tests/test_fix.py)."""
    broken = stack(tmp_path, STACK.replace("registry.password", "registry.token"))
    run = spawn(cli, "validate", str(broken), "--fix", store=store)
    run.child.expect("Value of 'registry' key 'token': ")
    assert run.child.waitnoecho(timeout=10)
    run.child.sendeof()
    assert run.finish() == 2, run.output
    assert "no input" in run.output
    assert "interrupted" not in run.output
    shown = cli.invoke("secret", "get", "registry", "--json", store=store)
    assert sorted(json.loads(shown.stdout)["values"]) == ["password", "repo"]


def test_fix_through_a_chain_names_the_store_it_writes_to(cli: Cli, tmp_path: Path):
    """The secret lives only in the chain's second store and lacks a key: the fix says the
    writes go to the first store and why this one cannot be made there, the same on a rerun
    (never "deleted since the validation"); the second store is unchanged."""
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    assert cli.invoke("secret", "create", "other", "--k=v", store=first).exit_code == 0
    assert cli.invoke("secret", "create", "registry", "--repo=r", store=second).exit_code == 0
    chain = ("--store", first.as_uri(), "--store", second.as_uri())
    values = json.dumps({"registry": {"password": "new-value"}})
    for _ in range(2):
        result = cli.invoke("validate", str(stack(tmp_path)), "--fix", "--values-file", "-",
                            *chain, stdin=values)  # fmt: skip
        assert result.exit_code == 1
        assert f"Writing to {first.as_uri()}" in result.stdout
        assert f"it is held by {second.as_uri()}" in result.stderr
        assert "writes go to the first store of the chain" in result.stderr
        assert "deleted since the validation" not in result.stderr
        assert "new-value" not in result.stdout + result.stderr
    kept = cli.invoke("secret", "get", "registry", "--json", store=second)
    assert sorted(json.loads(kept.stdout)["values"]) == ["repo"]


def test_bare_command_prints_usage_once(cli: Cli):
    """``stacksecrets`` alone prints its help with "Usage" once (a real process: ``main``)."""
    result = cli()
    assert result.returncode == 2
    assert len(re.findall("Usage", result.stdout + result.stderr)) == 1


def test_store_help_names_the_real_default(cli: Cli):
    """--store's help says a ZenML login is the default when there is one."""
    result = cli.invoke("secret", "list", "--help")
    assert "ZenML server ZenML is logged in to" in " ".join(result.stdout.split())


def test_httpx_request_lines_are_quiet_with_v(cli: Cli, store: Path):
    """``-v``: httpx's INFO lines (request URLs, queries with secret names) are not shown."""
    result = cli.invoke("-v", "secret", "list", store=store)
    assert result.exit_code == 0
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)


def test_one_secret_answered_from_the_cache_is_singular():
    """ "1 secret answered from the metadata cache", "2 secrets answered ..."."""
    one = ValidationReport(ValidationLevel.SECRET_AND_KEY_EXISTS, (), Stats(metadata_hits=1))
    two = ValidationReport(ValidationLevel.SECRET_AND_KEY_EXISTS, (), Stats(metadata_hits=2))
    assert "; 1 secret answered from the metadata cache" in one.summary()
    assert "; 2 secrets answered from the metadata cache" in two.summary()


def test_level_none_shows_what_it_found_as_warnings_and_exits_zero(
    cli: Cli, tmp_path: Path, store: Path
):
    """NONE means no validation (ZenML's meaning): a malformed reference and a reference ZenML
    will not resolve are listed as warnings, found without a store call, and the exit is 0;
    the same stack at SECRET_EXISTS still fails."""
    text = STACK.replace("{{registry.repo}}", "{{name_only}}")
    bad = stack(tmp_path, text.replace('"{{registry.password}}"', '"x{{registry.password}}"'))
    result = cli.invoke("validate", str(bad), "--level", "NONE", store=store)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Secret validation is off (level NONE): 1 warning")
    assert "name_only" in result.stdout or "invalid reference" in result.stdout
    assert "0 store calls" in result.stdout
    as_json = json.loads(cli.invoke("validate", str(bad), "--level", "NONE", "--json",
                                    store=store).stdout)  # fmt: skip
    assert as_json["ok"] is True
    assert as_json["problems"]
    assert cli.invoke("validate", str(bad), "--level", "SECRET_EXISTS", store=store).exit_code == 1


def test_level_none_in_the_api_does_not_raise():
    """``raise_for_problems`` at NONE: the report is ok, its problems are warnings."""
    from stacksecrets import Client, stack_from_dict

    stack = stack_from_dict(
        {"name": "s", "components": [{"type": "t", "name": "n", "configuration": {"x": "{{a}}"}}]}
    )
    report = Client("memory://").validate_stack(stack, level="NONE")
    assert report.problems
    assert report.ok
    assert report.raise_for_problems() is report
