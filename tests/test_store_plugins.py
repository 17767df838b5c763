"""Third-party stores: real distributions, built from a pyproject and installed with
stacksecrets into a fresh venv (once per test session), found by their URL scheme through the
``stacksecrets.stores`` entry points, from the API and from the ``stacksecrets`` command.

``tinystore`` registers a working store (a class with ``from_url``, and the same as a plain
function), and also claims the built-in ``file`` scheme (built-ins must win). ``badstores``
registers an entry point whose module does not exist, one that gives no store, and a second
claim on one of tinystore's schemes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parent.parent

TINY_MODULE = '''
"""A read-only store of secrets in a JSON file: tiny:///path/to/file.json."""
import json
from pathlib import Path

import anyio

from stacksecrets import SecretNotFoundError, Secret
from stacksecrets.stores import StoreBase, StoreCapabilities


class TinyStore(StoreBase):
    def __init__(self, path):
        self.path = Path(path)

    @classmethod
    def from_url(cls, url, /, *, environ):
        return cls(url.path)

    @property
    def capabilities(self):
        return StoreCapabilities(batched_exists=True)

    @property
    def description(self):
        return f"tiny://{self.path}"

    def _data(self):
        return json.loads(self.path.read_text())

    async def get_secret(self, name):
        self._check_open()
        await anyio.lowlevel.checkpoint()
        data = self._data()
        if name not in data:
            raise SecretNotFoundError(name, store=self.description)
        return Secret(name, data[name])

    async def list_secrets(self):
        self._check_open()
        await anyio.lowlevel.checkpoint()
        return sorted(self._data())


def open_tiny(url, /, *, environ):
    return TinyStore(environ["TINY_FILE"])
'''

BAD_MODULE = """
class NotAStore:
    @classmethod
    def from_url(cls, url, /, *, environ):
        return object()


def explodes(url, /, *, environ):
    raise RuntimeError("opener failed with pw-in-message")


def quotes(url, /, *, environ):
    from stacksecrets import ConfigurationError

    raise ConfigurationError(
        f"cannot log in as {url.username}:{url.password} to quotes://{url.username}:"
        f"{url.password}@{url.host} with token {environ.get('QUOTES_TOKEN')}; set QUOTES_TOKEN"
    )


def __getattr__(name):
    import os

    if name == "Leaky":  # an import-time failure that quotes the environment
        raise RuntimeError("cannot start: VAULT_TOKEN=" + os.environ.get("VAULT_TOKEN", ""))
    raise AttributeError(name)
"""


def _pyproject(name: str, module: str, entry_points: dict[str, str]) -> str:
    points = "\n".join(f'{scheme} = "{value}"' for scheme, value in entry_points.items())
    return (
        textwrap.dedent(f"""\
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "{name}"
        version = "1.2.3"

        [tool.hatch.build.targets.wheel]
        include = ["{module}.py"]

        [project.entry-points."stacksecrets.stores"]
        """)
        + points
        + "\n"
    )


@attrs.frozen
class Venv:
    python: Path
    stacksecrets: Path

    def run(self, code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=120,
            env=_env(env),
            check=False,
        )

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.stacksecrets), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=_env(env),
            check=False,
        )


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKSECRETS_", "VIRTUAL"))}
    return {**env, **(extra or {})}


def _install(python: Path, *paths: Path) -> None:
    """``uv pip install`` from uv's cache when it can (offline), else from the index."""
    base = ["uv", "pip", "install", "-q", "--python", str(python), *map(str, paths)]
    if subprocess.run([*base, "--offline"], capture_output=True, check=False).returncode:
        subprocess.run(base, check=True, capture_output=True, timeout=600)


@pytest.fixture(scope="session")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A fresh venv with stacksecrets and the two small distributions installed."""
    if shutil.which("uv") is None:
        pytest.fail("uv is needed to build the venv of the third-party store tests")
    work = tmp_path_factory.mktemp("plugins")
    tiny = work / "tinystore"
    tiny.mkdir()
    (tiny / "tinystore.py").write_text(TINY_MODULE)
    (tiny / "pyproject.toml").write_text(
        _pyproject(
            "tinystore",
            "tinystore",
            {
                "tiny": "tinystore:TinyStore",
                "tinyfn": "tinystore:open_tiny",
                "file": "tinystore:TinyStore",
                "shared": "tinystore:TinyStore",
            },
        )
    )
    bad = work / "badstores"
    bad.mkdir()
    (bad / "badstores.py").write_text(BAD_MODULE)
    (bad / "pyproject.toml").write_text(
        _pyproject(
            "badstores",
            "badstores",
            {
                "broken": "no_such_module_here:Store",
                "notastore": "badstores:NotAStore",
                "explodes": "badstores:explodes",
                "quotes": "badstores:quotes",
                "leaky": "badstores:Leaky",
                "shared": "badstores:NotAStore",
            },
        )
    )
    env_dir = work / "venv"
    subprocess.run(
        ["uv", "venv", "-q", "--python", sys.executable, str(env_dir)],
        check=True,
        capture_output=True,
    )
    python = env_dir / "bin" / "python"
    _install(python, ROOT, tiny, bad)
    return Venv(python, env_dir / "bin" / "stacksecrets")


@pytest.fixture
def secrets_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"db": {"password": "pw-tiny-1"}, "api": {"token": "tk-2"}}))
    return path


def test_a_third_party_store_is_found_by_its_scheme(venv: Venv, secrets_file: Path) -> None:
    """``open_store("tiny://...")`` opens the installed distribution's store, and
    ``Client`` reads and validates through it; a function entry point works the same."""
    result = venv.run(
        f"""
        from stacksecrets import Client, Component, Stack
        from stacksecrets.stores import open_store

        store = open_store("tiny://{secrets_file}")
        print(type(store).__module__, type(store).__name__, store.description)
        with Client("tiny://{secrets_file}") as client:
            assert client.get_secret("db").secret_values == {{"password": "pw-tiny-1"}}
            stack = Stack("s", [Component("t", "f", "n", {{"p": "{{{{db.password}}}}"}})])
            assert client.validate_stack(stack).ok
        other = open_store("tinyfn://")
        print(type(other).__name__, other.description)
        """,
        env={"TINY_FILE": str(secrets_file)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"tinystore TinyStore tiny://{secrets_file}",
        f"TinyStore tiny://{secrets_file}",
    ]


def test_the_command_line_uses_a_third_party_store(venv: Venv, secrets_file: Path) -> None:
    """``stacksecrets --store tiny://...``: list, get and validate work, and a chain mixes
    it with a built-in store; writes are refused as the store declares."""
    url = f"tiny://{secrets_file}"
    listed = venv.cli("secret", "list", "--json", "--store", url)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == ["api", "db"]
    stack = secrets_file.parent / "stack.yaml"
    stack.write_text(
        "stacks:\n  - name: s\n    components:\n      - type: t\n        flavor: f\n"
        "        name: n\n        configuration:\n          p: '{{db.password}}'\n"
        "          e: '{{fromenv.k}}'\n"
    )
    checked = venv.cli(
        "validate", str(stack), "--json", "--store", url, "--store", "env://",
        env={"STACKSECRETS_SECRET_fromenv__k": "v"},
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["sources"] == {"db": url, "fromenv": "env://"}
    refused = venv.cli("secret", "create", "x", "--k=v", "--store", url)
    assert refused.returncode == 2
    assert "read-only" in refused.stderr


def test_built_in_schemes_win_over_an_entry_point(venv: Venv, tmp_path: Path) -> None:
    """tinystore also registers ``file``: ``file://`` still opens the built-in file store."""
    result = venv.run(
        f"""
        from stacksecrets.stores import open_store
        print(type(open_store("file://{tmp_path}/s.json")).__name__)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "FileStore"


def test_third_party_errors_are_shown_by_type_and_redacted(venv: Venv) -> None:
    """Issue 21 item 9: a store module whose loading fails quoting ``$VAULT_TOKEN`` is shown
    by its exception's type; a plugin's own ``ConfigurationError`` quoting the URL's password
    and a token from the environment keeps its advice with both masked (API and CLI)."""
    env = {"VAULT_TOKEN": "hvs.tok-in-env-91", "QUOTES_TOKEN": "qt-secret-77"}
    code = """
        from stacksecrets import ConfigurationError
        from stacksecrets.stores import open_store
        for url in ("leaky://x", "quotes://me:pw-in-url-55@host"):
            try:
                open_store(url)
            except ConfigurationError as exc:
                print(type(exc).__name__, exc, repr(exc.__cause__), repr(exc.__context__))
        """
    result = venv.run(code, env=env)
    assert result.returncode == 0, result.stderr
    assert "cannot be loaded: RuntimeError" in result.stdout
    assert "set QUOTES_TOKEN" in result.stdout
    for shown in (
        result.stdout,
        *(
            venv.cli("secret", "list", "--store", url, env=env).stderr
            for url in ("leaky://x", "quotes://me:pw-in-url-55@host")
        ),
    ):
        for secret in ("hvs.tok-in-env-91", "qt-secret-77", "pw-in-url-55"):
            assert secret not in shown


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "broken://x",
            (
                "the store for scheme 'broken' from distribution 'badstores 1.2.3' "
                "(no_such_module_here:Store) cannot be loaded: ModuleNotFoundError"
            ),
        ),
        ("notastore://x", "'badstores 1.2.3' (badstores:NotAStore) gave object, not a secret"),
        ("explodes://x", "failed to open 'explodes://x': RuntimeError"),
        ("shared://x", "store URL scheme 'shared' is claimed by more than one installed store"),
        ("nosuch://x", "store URL scheme 'nosuch' is not supported; use file://"),
    ],
)
def test_a_broken_store_is_a_clear_configuration_error(venv: Venv, url: str, expected: str) -> None:
    """A missing module, an opener that gives no store or raises, a scheme two
    distributions claim, an unknown scheme: ``ConfigurationError`` naming the distribution
    and the scheme (the CLI: exit 2); an opener's own message is not shown."""
    result = venv.run(
        f"""
        from stacksecrets import ConfigurationError
        from stacksecrets.stores import open_store
        try:
            open_store("{url}")
        except ConfigurationError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert "pw-in-message" not in result.stdout
    cli = venv.cli("secret", "list", "--store", url)
    assert cli.returncode == 2
    assert expected in cli.stderr
    if url == "nosuch://x":
        assert "tiny://" in result.stdout  # the installed schemes are named
