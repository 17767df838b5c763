"""The ``stacksecrets`` command as tests run it: a real process or in-process, always with a
clean environment (no ``STACKSECRETS_*`` or ``ZENML_*`` variable of the test process leaks in).

Tests get it as the ``cli`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from click.testing import CliRunner, Result

from stacksecrets.cli import cli

#: Variables of the test process the command never sees.
HIDDEN_PREFIXES = ("STACKSECRETS_", "ZENML_")


class Cli:
    """Runs ``stacksecrets ARGS``; ``store`` sets ``STACKSECRETS_STORE`` (a path becomes a
    ``file://`` URL), ``env`` adds variables, ``stdin`` is the input."""

    def environ(
        self, env: Mapping[str, str] | None = None, *, store: Path | str | None = None
    ) -> dict[str, str]:
        """The environment the command runs with."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith(HIDDEN_PREFIXES)}
        if store is not None:
            environ["STACKSECRETS_STORE"] = (
                store if isinstance(store, str) else store.absolute().as_uri()
            )
        environ.update(env or {})
        return environ

    @staticmethod
    def argv(*args: str) -> list[str]:
        """The command line of a real process."""
        return [sys.executable, "-m", "stacksecrets", *args]

    def __call__(
        self,
        *args: str,
        store: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
        timeout: float = 180,
    ) -> subprocess.CompletedProcess[str]:
        """A real process: ``python -m stacksecrets ARGS``."""
        return subprocess.run(
            self.argv(*args),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.environ(env, store=store),
            check=False,
        )

    def invoke(
        self,
        *args: str,
        store: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        stdin: str | None = None,
    ) -> Result:
        """In this process, through click's test runner (faster; stdout and stderr apart)."""
        hidden = {k: None for k in os.environ if k.startswith(HIDDEN_PREFIXES)}
        environ: dict[str, str | None] = {**hidden, **self.environ(env, store=store)}
        return CliRunner().invoke(cli, list(args), env=environ, input=stdin)
