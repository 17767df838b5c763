"""The README's and docs' examples run, so they cannot rot.

The code blocks of README.md and every page under docs/ run in document order, in a fresh
folder and namespace per page:

- ```python blocks are executed (in one namespace per page);
- ```console blocks are shell sessions: each `$ command` runs in bash (exports and `cd` carry
  on to later blocks, python ones too) and its output must match the lines shown below it,
  where `...` stands for any text (timings);
- a block with a title (```yaml title="stacks/prod.yaml") is written to that file, so later
  blocks can use it.

The README's first command (the main job) is run as written, after install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
BASH = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)
TITLE = re.compile(r'title="([^"]+)"')
MARK = "<<<stacksecrets-docs-command>>>"


def runnable_blocks(path: Path) -> list[tuple[str, str, str]]:
    """(kind, title, body) of each block that runs: python, console, or a titled file."""
    blocks = []
    for language, info, body in FENCE.findall(path.read_text(encoding="utf-8")):
        title = TITLE.search(info)
        if title:
            blocks.append(("file", title.group(1), body))
        elif language in {"python", "console"}:
            blocks.append((language, "", body))
    return blocks


def console_commands(body: str) -> list[tuple[str, list[str]]]:
    """Each `$ command` (continued by trailing backslashes) with its expected output lines."""
    commands: list[tuple[str, list[str]]] = []
    lines = body.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.startswith("$ "):
            assert commands, f"console output before any command: {line!r}"
            commands[-1][1].append(line)
            continue
        command = line[2:]
        while command.endswith("\\") and index < len(lines):
            command = command[:-1] + "\n" + lines[index]
            index += 1
        commands.append((command, []))
    return commands


def matches(expected: list[str], actual: list[str]) -> bool:
    if len(expected) != len(actual):
        return False
    for want, got in zip(expected, actual, strict=True):
        pattern = ".*".join(re.escape(part) for part in want.rstrip().split("..."))
        if not re.fullmatch(pattern, got.rstrip()):
            return False
    return True


def run_console(body: str, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run one console block in bash; carry its environment and folder on; check outputs."""
    commands = console_commands(body)
    state = Path.cwd() / ".docs-shell-state"
    # `$?` in a command is the previous command's status, as in an interactive shell.
    script = [f"status=0; printf '%s\\n' '{MARK}'"]
    script += [
        f"(exit $status); {{ {command}\n}} 2>&1; status=$?; printf '%s\\n' '{MARK}'"
        for command, _ in commands
    ]
    script.append(f"pwd > {state}.pwd; env -0 > {state}.env")
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    outputs = result.stdout.split(MARK + "\n")[1:]
    assert len(outputs) == len(commands) + 1, f"{name}: the shell stopped early: {result.stderr}"
    for (command, expected), output in zip(commands, outputs[:-1], strict=True):
        actual = output.splitlines()
        assert matches(expected, actual), (
            f"{name}: `{command}` printed\n" + "\n".join(actual) + "\nnot\n" + "\n".join(expected)
        )
    for entry in Path(f"{state}.env").read_text(encoding="utf-8").split("\0"):
        key, sep, value = entry.partition("=")
        if sep and os.environ.get(key) != value and key not in {"_", "SHLVL", "OLDPWD", "PWD"}:
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(Path(f"{state}.pwd").read_text(encoding="utf-8").strip())


@pytest.mark.parametrize(
    "path", [p for p in DOCS if runnable_blocks(p)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_examples_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Each example of this document runs without error, its asserts and outputs holding."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.setenv("STACKSECRETS_STORE", f"file://{tmp_path / 'store.json'}")
    # The console examples run the `stacksecrets` of this environment.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for variable in ("STACKSECRETS_VALIDATION_LEVEL", "ZENML_SECRET_VALIDATION_LEVEL"):
        monkeypatch.delenv(variable, raising=False)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for number, (kind, title, body) in enumerate(runnable_blocks(path), start=1):
        name = f"{path.name}[block {number}]"
        if kind == "file":
            target = Path.cwd() / title
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body, encoding="utf-8")
        elif kind == "console":
            run_console(body, name, monkeypatch)
        else:
            exec(compile(body, name, "exec"), namespace)  # noqa: S102 - running our docs is the point


def readme_commands() -> list[str]:
    blocks = BASH.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    return [
        line
        for line in blocks[0].splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_readme_main_job_command_validates_the_example(tmp_path: Path):
    """The README's first command, run as written in a copy of the repo, validates the
    example stacks against the example local store and exits 0.

    The install step is replaced by this test's own environment (already installed); the
    rest of the command line is run exactly as written.
    """
    (command,) = readme_commands()
    install, _, rest = command.partition(" && chmod")
    assert install.startswith("python3 -m venv .venv")
    work = tmp_path / "repo"
    shutil.copytree(ROOT / "examples", work / "examples")
    bindir = Path(sys.executable).parent
    (work / ".venv").mkdir()
    (work / ".venv" / "bin").symlink_to(bindir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKSECRETS_")}
    result = subprocess.run(
        ["bash", "-c", "chmod" + rest],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout


def test_ci_runs_exactly_the_readme_test_command():
    """`.ci/run` runs the README's test command, as written."""
    blocks = BASH.findall((ROOT / "README.md").read_text(encoding="utf-8"))
    (command,) = [ln for ln in blocks[1].splitlines() if ln.strip() and not ln.startswith("#")]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in ci
