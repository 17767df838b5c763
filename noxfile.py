"""Automation: `nox` runs the default sessions (lint, typecheck, tests, docs), as CI does."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests", "docs"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON = "3.11"
ZENML_VERSION = "0.98.0"
ZENML_VENV = ROOT / ".cache" / f"zenml-{ZENML_VERSION}"


def zenml_python() -> str:
    """A venv with the ZenML server, for the tests' real server (created once, then reused)."""
    python = ZENML_VENV / "bin" / "python"
    marker = ZENML_VENV / ".complete"
    if not marker.exists():
        # --allow-existing: finish a venv an earlier, interrupted setup left behind.
        subprocess.run(
            ["uv", "venv", "-q", "--allow-existing", "--python", PYTHON, str(ZENML_VENV)],
            check=True,
        )
        subprocess.run(
            [
                "uv",
                "pip",
                "install",
                "-q",
                "--python",
                str(python),
                f"zenml[server]=={ZENML_VERSION}",
            ],
            check=True,
        )
        marker.touch()
    return str(python)


def install(session: nox.Session, *groups: str) -> None:
    deps = [dep for group in groups for dep in nox.project.dependency_groups(PYPROJECT, group)]
    session.install("-e", ".", *deps)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Every test, async ones on asyncio and trio, against a real ZenML server."""
    install(session, "tests")
    env = {"STACKSECRETS_ZENML_PYTHON": zenml_python()}
    session.run("pytest", *(session.posargs or ["-m", "not slow"]), env=env)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The README's and docs' examples, executed."""
    install(session, "docs")
    session.run("pytest", "tests/test_docs.py", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src and on a typing test of the public API."""
    install(session, "typing")
    session.run("mypy", "--strict")


@nox.session(python=PYTHON)
def slow(session: nox.Session) -> None:
    """Longer reliability runs (soak, many processes)."""
    install(session, "tests")
    env = {"STACKSECRETS_ZENML_PYTHON": zenml_python()}
    session.run("pytest", "-m", "slow", *session.posargs, env=env)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks against ZenML's own validation on the same real server."""
    install(session, "tests")
    session.install("matplotlib")
    env = {"STACKSECRETS_ZENML_PYTHON": zenml_python(), "PYTHONHASHSEED": "0"}
    session.run("python", "benchmarks/run.py", *session.posargs, env=env)


if os.environ.get("CI"):
    nox.options.error_on_missing_interpreters = True


@nox.session(python=PYTHON)
def bench_aws(session: nox.Session) -> None:
    """AWS Secrets Manager on moto: stacksecrets, a sequential boto3 validator, the floor."""
    install(session, "tests")
    session.run("python", "benchmarks/aws_bench.py", *session.posargs, env={"PYTHONHASHSEED": "0"})
