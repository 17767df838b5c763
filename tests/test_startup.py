"""Start-up pays only for what a command uses: ``import stacksecrets`` loads no HTTP client,
terminal library or command-line parser, and ``stacksecrets --help`` loads the parser alone.

Each check runs in a fresh interpreter (this one has loaded everything already) and looks at
``sys.modules``; the times are measured by benchmarks/startup.py, not here.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HEAVY = ("rich", "httpx", "botocore", "click", "structlog")


def loaded_after(code: str, *, cwd: Path | None = None) -> set[str]:
    """The top-level packages in ``sys.modules`` after ``code`` runs in a fresh process."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import json as _json, sys as _sys
        _sys.__stdout__.write(_json.dumps(sorted({m.split(".")[0] for m in _sys.modules})))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STACKSECRETS_", "ZENML_"))}
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_import_stacksecrets_loads_no_http_terminal_or_cli_library():
    """``import stacksecrets`` in a fresh process loads none of rich, httpx, botocore, click."""
    loaded = loaded_after("import stacksecrets")
    assert not loaded & {"rich", "httpx", "botocore", "click"}


def test_the_client_and_loaders_load_no_terminal_or_cli_library():
    """An application using the client and loaders gets no rich, click or structlog."""
    loaded = loaded_after("from stacksecrets import Client, ClientOptions, load_stacks, Stack")
    assert not loaded & {"rich", "click", "structlog", "botocore"}


def test_help_loads_only_the_command_line_parser():
    """``stacksecrets --help`` loads click, not the client, stores, anyio, yaml or rich."""
    loaded = loaded_after(
        """
        from stacksecrets.cli import main
        try:
            main(["--help"])
        except SystemExit:
            pass
        """
    )
    assert "click" in loaded
    assert not loaded & {"rich", "httpx", "botocore", "structlog", "anyio", "attrs", "yaml"}


@pytest.mark.parametrize("level", ["SECRET_EXISTS", "SECRET_AND_KEY_EXISTS"])
def test_validating_with_a_file_store_loads_no_http_or_terminal_library(tmp_path: Path, level: str):
    """Validating stack files against the file store, piped, loads no rich, httpx, botocore
    or structlog (nothing is logged at the default verbosity)."""
    store = tmp_path / "secrets.json"
    shutil.copy(EXAMPLES / "secrets.json", store)
    store.chmod(0o600)
    loaded = loaded_after(
        f"""
        import os
        os.environ["STACKSECRETS_CACHE_DIR"] = {str(tmp_path)!r}
        from stacksecrets.cli import main
        try:
            main(["validate", {str(EXAMPLES / "stacks")!r}, "--store", {store.as_uri()!r},
                  "--level", {level!r}])
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        """
    )
    assert not loaded & set(HEAVY) - {"click"}
    # No retry was needed: stamina (and tenacity) are imported at the first failed store call;
    # reading the store file takes no lock (filelock is for writes).
    assert not loaded & {"stamina", "tenacity", "filelock"}


def test_the_old_entry_point_is_an_alias_of_the_new():
    """Console scripts installed before the CLI package point at ``stacksecrets._cli:main``
    (the dev venv's editable install does): it is the same ``main``."""
    old = importlib.import_module("stacksecrets._cli")
    new = importlib.import_module("stacksecrets.cli")
    assert old.main is new.main
