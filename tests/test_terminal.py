"""The command line on a real pseudo-terminal (pexpect): progress and waits on stderr, tables,
NO_COLOR, hidden prompts; and the proof that piped and ``--json`` output stay as they were.

The long validation is real: an OpenBao dev server behind the fault proxy (latency, 503s).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from cli_runner import Cli
from fault_proxy import Fault, ProxyThread
from openbao_fixtures import OpenBao

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DATA = Path(__file__).resolve().parent / "data" / "terminal"
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|9[0-7]|38;[0-9;]+)m")
VALUE = "s3cr3t-Hunter2-value"


@pytest.fixture
def example_store(tmp_path: Path) -> Path:
    path = tmp_path / "secrets.json"
    shutil.copy(EXAMPLES / "secrets.json", path)
    path.chmod(0o600)
    return path


def spawn(cli: Cli, command: str, env: dict[str, str]) -> pexpect.spawn:
    """``command`` (a shell line) in bash on a new pseudo-terminal of 120x40."""
    return pexpect.spawn(
        "bash",
        ["--norc", "--noprofile", "-c", command],
        env=cli.environ({"TERM": "xterm-256color", **env}),
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=120,
    )


def finish(child: pexpect.spawn) -> str:
    child.expect(pexpect.EOF)
    child.close()
    return str(child.before)


def stacksecrets(*args: str) -> str:
    return " ".join([sys.executable, "-m", "stacksecrets", *args])


def no_escapes(screen: str) -> str:
    """The text of a screen, without terminal control sequences."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)


def masked(text: str, store: Path) -> str:
    """Timings and the store file's path, which differ from run to run."""
    text = text.replace(store.as_uri(), "STORE")
    text = re.sub(r"\d+\.\d{3} s", "X s", text)
    return re.sub(r'"seconds": [0-9.e-]+', '"seconds": X', text)


# -- piped and --json output is what it was ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "golden"),
    [
        (("examples/stacks",), "ok.txt"),
        (("examples/broken-stack.yaml",), "broken.txt"),
        (("examples/broken-stack.yaml", "--json"), "broken.json"),
        (("examples/stacks", "--json"), "ok.json"),
    ],
)
def test_piped_and_json_output_is_unchanged_with_stderr_on_a_terminal(
    cli: Cli, example_store: Path, tmp_path: Path, args: tuple[str, ...], golden: str
):
    """stdout piped (to a file), stderr on a terminal, so progress is drawn: stdout is byte
    for byte the plain report of before (tests/data/terminal: the output of the CLI before
    progress and tables, plus the suggestions), and the same as with nothing on a terminal."""
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    out = tmp_path / "stdout.txt"
    command = f"cd {tmp_path} && {stacksecrets('validate', *args)} > {out}"
    terminal = finish(spawn(cli, command, {"STACKSECRETS_STORE": example_store.as_uri()}))
    on_terminal = out.read_text(encoding="utf-8")
    piped = cli(
        "validate",
        *(str(tmp_path / a) if a.startswith("ex") else a for a in args),
        store=example_store,
    )
    expected = (DATA / golden).read_text(encoding="utf-8")
    assert masked(on_terminal, example_store) == expected
    assert masked(piped.stdout, example_store).replace(str(tmp_path) + "/", "") == expected
    if "--json" in args:
        # No progress with --json, even on a terminal: only the store's name (issue 23).
        assert no_escapes(terminal).strip() == f"Store: {example_store.as_uri()}"
        json.loads(on_terminal)


# -- on a terminal -----------------------------------------------------------------------------


def test_a_long_validation_shows_progress_and_retry_waits_on_a_terminal(
    cli: Cli, openbao: OpenBao, tmp_path: Path
):
    """400 references through a 100 ms link with two 503 answers (Retry-After: 1): stderr on
    the terminal shows secrets checked of the total, store calls and cache hits, and the retry
    wait; the report is a table; piped, stderr has none of it."""
    names = [f"progress-{i:03}" for i in range(120)]
    openbao.write_many({name: {"password": VALUE} for name in names})
    stack = tmp_path / "stack.yaml"
    components = "".join(
        f"  - {{type: experiment_tracker, flavor: mlflow, name: t{i},"
        f" configuration: {{password: '{{{{{name}.password}}}}'}}}}\n"
        for i, name in enumerate(names)
    )
    stack.write_text(f"name: long\ncomponents:\n{components}", encoding="utf-8")
    port = int(openbao.address.rsplit(":", 1)[1])
    env = {"VAULT_TOKEN": openbao.root_token, "STACKSECRETS_METADATA_CACHE": "off"}
    with ProxyThread("127.0.0.1", port, latency_ms=100) as proxy:
        proxy.retry_after = "1"
        proxy.inject(Fault.NONE, count=10)
        proxy.inject(Fault.HTTP_503, count=2)
        store = f"vault+http://127.0.0.1:{proxy.port}/secret"
        args = ("validate", str(stack), "--store", store, "--concurrency", "2")
        child = spawn(cli, stacksecrets(*args), env)
        child.expect(r"Validating 1 stack: \d+/120 secrets checked · \d+ store calls? · ")
        child.expect(r"waiting \d\.\d s for retry 1 after: Vault server")
        child.expect("Secret references OK")
        screen = finish(child)
        assert child.exitstatus == 0
        assert "120 references to 120 secrets" in screen

        proxy.inject(Fault.HTTP_503, count=1)
        piped = cli(*args, env=env)
    assert piped.returncode == 0, piped.stderr
    # Piped, stderr has no progress or waits: only the store's name (issue 23).
    assert re.fullmatch(r"Store: vault\+http://127\.0\.0\.1:\d+/secret\n", piped.stderr)
    assert piped.stdout.startswith("Secret references OK at level SECRET_AND_KEY_EXISTS")
    assert VALUE not in screen + piped.stdout


def test_a_held_lock_is_named_while_a_write_waits(cli: Cli, example_store: Path):
    """Another process holds the store's lock: the terminal says which lock, until it is
    released and the write goes on."""
    import filelock

    lock = filelock.FileLock(f"{example_store}.lock")
    with lock:
        child = spawn(
            cli,
            stacksecrets("secret", "create", "fresh", "--k=v"),
            {"STACKSECRETS_STORE": example_store.as_uri()},
        )
        # The line ends with the lock file's path, cut with an ellipsis where the terminal
        # is narrower than the line (pytest-xdist's folders are longer).
        child.expect(r"waiting \d\.\d s for the lock file \S+secrets\.json(\.lock|\.l?…)")
    child.expect("Created secret 'fresh'")
    finish(child)
    assert child.exitstatus == 0


def test_tables_and_no_colour(cli: Cli, example_store: Path):
    """On a terminal the report and the secret list are tables, coloured; NO_COLOR keeps the
    tables and drops the colours."""
    env = {"STACKSECRETS_STORE": example_store.as_uri()}
    broken = stacksecrets("validate", str(EXAMPLES / "broken-stack.yaml"))
    coloured = finish(spawn(cli, broken, env))
    plain = finish(spawn(cli, broken, {**env, "NO_COLOR": "1"}))
    for screen in map(no_escapes, (coloured, plain)):
        assert re.search(r"┃ Problem\s+┃ Secret\s+┃ Key\s+┃ Detail\s+┃ Used in", screen)
        assert re.search(r"│ missing key\s+│ mlflow_secret │ pasword │", screen)
        assert "did you mean 'password'?" in screen
    assert COLOUR.search(coloured)
    assert not COLOUR.search(plain)
    listed = finish(spawn(cli, stacksecrets("secret", "list"), {**env, "NO_COLOR": "1"}))
    assert "3 secret(s) in" in listed
    assert re.search(r"│ mlflow_secret │", no_escapes(listed))


def test_create_interactive_prompts_with_hidden_values(cli: Cli, example_store: Path):
    """secret create NAME -i: keys asked, values read without echo, a bad key asked again;
    the values land in the store and appear nowhere on the terminal."""
    env = {"STACKSECRETS_STORE": example_store.as_uri()}
    child = spawn(cli, stacksecrets("secret", "create", "typed", "-i"), env)
    child.expect("Key: ")
    child.sendline("api key")  # whitespace: no reference could use it
    child.expect("no reference could use the key")
    child.expect("Key: ")
    child.sendline("token")
    child.expect("Value of token: ")
    child.sendline(VALUE)
    child.expect("Key: ")
    child.sendline("user")
    child.expect("Value of user: ")
    child.sendline("alice")
    child.expect("Key: ")
    child.sendline("")
    child.expect("Created secret 'typed' with keys: token, user")
    screen = finish(child)
    assert child.exitstatus == 0
    assert VALUE not in str(child.before) + screen
    got = cli("secret", "get", "typed", "--show-values", "--json", store=example_store)
    assert json.loads(got.stdout)["values"] == {"token": VALUE, "user": "alice"}

    child = spawn(cli, stacksecrets("secret", "update", "typed", "-i"), env)
    child.expect("Key: ")
    child.sendline("token")
    child.expect("Value of token: ")
    child.sendline("rotated-" + VALUE)
    child.expect("Key: ")
    child.sendline("")
    child.expect("Updated secret 'typed'")
    finish(child)
    got = cli("secret", "get", "typed", "--show-values", "--json", store=example_store)
    assert json.loads(got.stdout)["values"]["token"] == "rotated-" + VALUE


def test_interactive_needs_a_terminal(cli: Cli, example_store: Path):
    """-i with stdin from a pipe refuses (a value would be read from the pipe, or echoed)."""
    result = cli("secret", "create", "piped", "-i", store=example_store, stdin="k\nv\n\n")
    assert result.returncode == 2
    assert "-i/--interactive needs a terminal" in result.stderr
    assert "piped" not in cli("secret", "list", store=example_store).stdout.split()


def test_completion_script_is_printed(cli: Cli):
    """The documented completion command prints click's bash completion function."""
    result = subprocess.run(
        ["bash", "-c", "_STACKSECRETS_COMPLETE=bash_source stacksecrets"],
        capture_output=True,
        text=True,
        env=cli.environ({"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}),
        check=False,
    )
    assert "_stacksecrets_completion()" in result.stdout


def test_a_missing_secret_close_to_a_found_one_gets_a_suggestion(
    cli: Cli, example_store: Path, tmp_path: Path
):
    """'postgress' is missing, 'postgres' was found by the same validation: the text and the
    JSON suggest it; a name close to nothing found gets no suggestion; no value is shown."""
    stack = tmp_path / "stack.yaml"
    stack.write_text(
        "name: s\ncomponents:\n"
        "  - {type: orchestrator, flavor: local, name: a, configuration:"
        " {u: '{{postgres.user}}', p: '{{postgress.password}}', q: '{{zzz_other.k}}'}}\n",
        encoding="utf-8",
    )
    text = cli("validate", str(stack), store=example_store)
    assert "missing secret: 'postgress'; did you mean 'postgres'?" in text.stdout
    assert "missing secret: 'zzz_other'\n" in text.stdout
    report = json.loads(cli("validate", str(stack), "--json", store=example_store).stdout)
    suggestions = {p["secret"]: p["suggestion"] for p in report["problems"]}
    assert suggestions == {"postgress": "postgres", "zzz_other": None}
    values = json.loads((EXAMPLES / "secrets.json").read_text())
    for secret in values.get("secrets", values).values():
        for value in secret.values() if isinstance(secret, dict) else ():
            if isinstance(value, str) and len(value) > 3:
                assert value not in text.stdout
