"""The README's and docs' examples run, so they cannot rot.

Every ```python block of README.md and docs/*.md is executed in a fresh namespace (blocks of one
file in order); the README's first command (the main job) is run as written, after install.
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
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
BASH = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", [p for p in DOCS if python_blocks(p)], ids=lambda p: p.name)
def test_python_examples_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Each python example of this document runs without error, its asserts holding."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.setenv("STACKSECRETS_STORE", f"file://{tmp_path / 'store.json'}")
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for number, block in enumerate(python_blocks(path), start=1):
        code = compile(block, f"{path.name}[block {number}]", "exec")
        exec(code, namespace)  # noqa: S102 - running our own documentation is the point


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
