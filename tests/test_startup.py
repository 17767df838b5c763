"""Start-up pays only for what a command uses: ``import stacksecrets`` loads no HTTP client,
terminal library or command-line parser, ``stacksecrets --help`` loads the parser alone, and a
validation against the file store loads no other command, store, suggestion, write or portal
code (``NOT_ON_THE_VALIDATE_PATH``).

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

import attrs
import click
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HEAVY = ("rich", "httpx", "botocore", "click", "structlog")


def loaded_after(code: str, *, cwd: Path | None = None, modules: bool = False) -> set[str]:
    """The top-level packages in ``sys.modules`` after ``code`` runs in a fresh process
    (``modules``: every module's full name instead)."""
    names = "_sys.modules" if modules else '{m.split(".")[0] for m in _sys.modules}'
    script = textwrap.dedent(code) + textwrap.dedent(
        f"""
        import json as _json, sys as _sys
        _sys.__stdout__.write(_json.dumps(sorted({names})))
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


@pytest.mark.parametrize(
    "call",
    ['main(["--help"])', 'sys.argv = ["stacksecrets", "--help"]; main()'],
    ids=["embedded", "the-process-command"],
)
def test_help_loads_only_the_command_line_parser(call: str):
    """``stacksecrets --help`` loads click, not the client, stores, anyio, yaml or rich; also
    as the process's own command (``main()`` reading ``sys.argv``, as the console script and
    ``python -m`` call it), which sets up its import rules (``cli._process``) first."""
    loaded = loaded_after(
        f"""
        import sys
        from stacksecrets.cli import main
        try:
            {call}
        except SystemExit:
            pass
        """,
        modules=True,
    )
    packages = {name.split(".")[0] for name in loaded}
    assert "click" in packages
    assert not packages & {"rich", "httpx", "botocore", "structlog", "anyio", "attrs", "yaml"}
    assert not {name for name in loaded if name.startswith("stacksecrets.stores")}


def validate_examples(tmp_path: Path, level: str, *, modules: bool = False) -> set[str]:
    """What ``stacksecrets validate examples/stacks --store file://...`` loads, piped."""
    store = tmp_path / "secrets.json"
    shutil.copy(EXAMPLES / "secrets.json", store)
    store.chmod(0o600)
    return loaded_after(
        f"""
        import os
        os.environ["STACKSECRETS_CACHE_DIR"] = {str(tmp_path)!r}
        from stacksecrets.cli import main
        try:
            main(["validate", {str(EXAMPLES / "stacks")!r}, "--store", {store.as_uri()!r},
                  "--level", {level!r}])
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        """,
        modules=modules,
    )


@pytest.mark.parametrize("level", ["SECRET_EXISTS", "SECRET_AND_KEY_EXISTS"])
def test_validating_with_a_file_store_loads_no_http_or_terminal_library(tmp_path: Path, level: str):
    """Validating stack files against the file store, piped, loads no rich, httpx, botocore
    or structlog (nothing is logged at the default verbosity)."""
    loaded = validate_examples(tmp_path, level)
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


#: Loaded by a validation only when it needs them, never on the path of a validation of stack
#: files that finds everything in a file store.
NOT_ON_THE_VALIDATE_PATH = {
    # "did you mean": only for a missing name or key
    "difflib",
    # temporary names of writes (secrets imports hashlib and random)
    "secrets",
    "hashlib",
    # the file store's writes (its reads are one trip to a worker thread); aiofiles imports
    # tempfile, shutil, bz2 and lzma
    "aiofiles",
    "tempfile",
    # the sync Client's portal thread
    "anyio.from_thread",
    # other commands
    "stacksecrets.cli._secret",
    "stacksecrets.cli._cache",
    "stacksecrets.cli._fix",
    # stores not used, store discovery (a --store was given), the metadata cache (the file
    # store has no change stamps)
    "stacksecrets.stores._chain",
    "stacksecrets.stores._env",
    "stacksecrets.stores._memory",
    "stacksecrets.stores._discovery",
    "stacksecrets._metacache",
    "platformdirs",
}


@pytest.mark.parametrize("level", ["SECRET_EXISTS", "SECRET_AND_KEY_EXISTS"])
def test_validating_with_a_file_store_loads_only_what_it_uses(tmp_path: Path, level: str):
    """Other commands, other stores, discovery, suggestions, the portal and the write path
    are not imported by a validation that needs none of them."""
    loaded = validate_examples(tmp_path, level, modules=True)
    assert "stacksecrets.stores._file" in loaded  # the check looks at the right process
    assert not loaded & NOT_ON_THE_VALIDATE_PATH, sorted(loaded & NOT_ON_THE_VALIDATE_PATH)


def test_each_command_is_loaded_when_it_runs():
    """``secret list --help`` loads the ``secret`` commands, not ``validate``'s or the fix."""
    loaded = loaded_after(
        """
        from stacksecrets.cli import main
        try:
            main(["secret", "list", "--help"])
        except SystemExit:
            pass
        """,
        modules=True,
    )
    assert "stacksecrets.cli._secret" in loaded
    other = {"stacksecrets.cli._validate", "stacksecrets.cli._fix"}
    assert not loaded & other, sorted(loaded & other)


def test_the_group_still_lists_every_command():
    """The lazy group's ``commands`` (error messages, the CLI reference) holds them all."""
    from stacksecrets.cli import cli

    assert set(cli.commands) == {"cache", "register-secrets", "secret", "validate"}
    assert cli.list_commands(click.Context(cli)) == sorted(cli.commands)


def _attrs_own_repr(obj: object) -> str:
    """The repr attrs generates for a class with ``obj``'s fields and values."""
    cls = type(obj)
    fields = attrs.fields(cls)
    clone = attrs.make_class(
        cls.__name__, {f.name: attrs.field(repr=f.repr, kw_only=True) for f in fields}
    )
    return repr(clone(**{f.name: getattr(obj, f.name) for f in fields}))


def test_the_shared_repr_is_the_one_attrs_generates():
    """Classes built on every start-up share one ``__repr__`` (``attrs_repr``) instead of one
    compiled per class: their reprs are attrs' own, fields shown or hidden alike."""
    from stacksecrets import (
        ClientOptions,
        Component,
        Problem,
        ProblemKind,
        Stack,
        Stats,
        Usage,
        ValidationLevel,
        ValidationReport,
    )
    from stacksecrets._describe import attrs_repr
    from stacksecrets._plan import Unresolvable
    from stacksecrets.references import InvalidUse, SecretReference, collect, scan
    from stacksecrets.stores.contract import SecretStamp, StoreCapabilities

    usage = Usage("prod", "orchestrator", "o", "configuration.a")
    component = Component("orchestrator", "k8s", "o", {"a": "{{db.password}}", "b": "{{bad"})
    stack = Stack("prod", [component], runtime="zenml", secrets=("attached",))
    samples = [
        usage,
        component,
        stack,
        ClientOptions(rate_limit=2.5),
        SecretReference("db", "password"),
        scan("x {{a.b}} {{bad"),
        scan("x {{a.b}} {{bad").references[0],
        scan("x {{a.b}} {{bad").malformed[0],
        collect([stack]),
        InvalidUse(usage, "hunter22", "not a reference"),
        Problem(ProblemKind.MISSING_KEY, "db", "password", (usage,), "available keys: user"),
        Stats(1, 2, 1, 1, 0, 0.5),
        Unresolvable(usage, "ZenML resolves no reference in environment"),
        ValidationReport(ValidationLevel.SECRET_EXISTS, (), stacks=("prod",), store="memory://"),
        StoreCapabilities(batched_exists=True, max_batch=10),
        SecretStamp("id", "stamp", settled=True),
    ]
    for sample in samples:
        assert type(sample).__repr__ is attrs_repr, type(sample)
        assert repr(sample) == _attrs_own_repr(sample)
    assert "hunter22" not in repr(samples[9])  # InvalidUse.text: repr=False
