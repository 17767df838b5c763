"""The ``stacksecrets`` command as tests run it: a real process or in-process, always with a
clean environment (no ``STACKSECRETS_*`` or ``ZENML_*`` variable of the test process leaks in).

Tests get it as the ``cli`` fixture (tests/conftest.py).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import attrs
from click.testing import CliRunner

from stacksecrets.cli import main  # the command's entry point

#: The test process's terminal size (not the command's).
TERMINAL_SIZE = ("COLUMNS", "LINES")

#: Variables of the test process the command never sees.
HIDDEN_PREFIXES = ("STACKSECRETS_", "ZENML_")


class Cli:
    """Runs ``stacksecrets ARGS``; ``store`` sets ``STACKSECRETS_STORE`` (a path becomes a
    ``file://`` URL), ``env`` adds variables, ``stdin`` is the input. ``hidden``: the prefixes
    of the test process's variables the command never sees (``("",)``: none, only ``env``)."""

    def __init__(self, hidden: tuple[str, ...] = HIDDEN_PREFIXES) -> None:
        self.hidden = hidden

    def environ(
        self, env: Mapping[str, str] | None = None, *, store: Path | str | None = None
    ) -> dict[str, str]:
        """The environment the command runs with. ``COLUMNS``/``LINES`` are left out: they
        describe the test process's terminal (pytest-xdist's workers set 80x24), and a command
        on its own pseudo-terminal must take that terminal's size."""
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(self.hidden) and k not in TERMINAL_SIZE
        }
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
        stdin: str | bytes | None = None,
    ) -> Ran:
        """In this process (faster): the command's own entry point, ``main(ARGS)``, with the
        same clean environment, stdin, stdout and stderr apart, and the exit code. Logging
        is as the command leaves it in a new process: the root logger starts without pytest's
        handlers, and the test's logging (and structlog, by tests/conftest.py) is restored
        after. An exception the command does not turn into an exit code propagates (a real
        process would print a traceback and exit 1)."""
        hidden = {k: None for k in os.environ if k.startswith(self.hidden)}
        environ: dict[str, str | None] = {**hidden, **self.environ(env, store=store)}
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        # The command sets the levels of libraries' loggers too (httpx's): put them back.
        levels = {
            name: logger.level
            for name, logger in logging.Logger.manager.loggerDict.items()
            if isinstance(logger, logging.Logger)
        }
        root.handlers.clear()
        code: int = 0
        try:
            with CliRunner().isolation(input=stdin, env=environ) as (out, err, mixed):
                try:
                    main(list(args))
                except SystemExit as exc:
                    code = _exit_code(exc.code)
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                return Ran(
                    returncode=code,
                    stdout=out.getvalue().decode(),
                    stderr=err.getvalue().decode(),
                    output=mixed.getvalue().decode(),
                )
        finally:
            for handler in root.handlers:
                if handler not in handlers:
                    handler.close()
            root.handlers[:] = handlers
            root.setLevel(level)
            for name, logger in logging.Logger.manager.loggerDict.items():
                if isinstance(logger, logging.Logger):
                    logger.setLevel(levels.get(name, logging.NOTSET))


def _exit_code(code: object) -> int:
    """``SystemExit.code`` as the process's exit status."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


@attrs.frozen
class Ran:
    """What an in-process run gave: the names of ``subprocess.CompletedProcess`` (and of
    click's ``Result``: ``exit_code``, ``output`` with both streams in order)."""

    returncode: int
    stdout: str
    stderr: str
    output: str

    @property
    def exit_code(self) -> int:
        return self.returncode
