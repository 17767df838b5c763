"""The ``stacksecrets`` command on a pseudo-terminal (pexpect): hidden prompts, Ctrl-C.

A real process, with the clean environment of ``tests/cli_runner.py``; everything it writes to
the terminal (stdout and stderr, merged as a terminal shows them) is kept in ``output``.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import attrs
import pexpect

from cli_runner import Cli

#: The prompt ``validate --fix`` shows for each value.
PROMPT = re.compile(r"Value of '([^'\r\n]*)' key '([^'\r\n]*)': ")


@attrs.define
class Prompted:
    """One prompt answered: the secret, the key, and the places shown above it."""

    secret: str
    key: str
    usages: list[str]


@attrs.define
class PtyRun:
    child: pexpect.spawn  # type: ignore[type-arg]
    log: io.StringIO

    @property
    def output(self) -> str:
        """Everything the terminal showed so far."""
        return self.log.getvalue()

    def answer(self, values: Mapping[str, Mapping[str, str]]) -> list[Prompted]:
        """Answer every prompt from ``values`` (secret -> key -> value) until the process ends;
        each answer is typed only once the terminal's echo is off (the input is hidden)."""
        prompted = []
        while self.child.expect([PROMPT, pexpect.EOF]) == 0:
            secret, key = self.child.match.group(1), self.child.match.group(2)
            shown = [line.strip() for line in self.child.before.splitlines() if line[:4] == "    "]
            prompted.append(Prompted(secret, key, shown))
            assert self.child.waitnoecho(timeout=10), "the prompt did not turn echo off"
            self.child.sendline(values[secret][key])
        return prompted

    def finish(self) -> int:
        """Wait for the end; the exit code (128 + N for a signal N)."""
        self.child.expect(pexpect.EOF)
        self.child.close()
        if self.child.exitstatus is not None:
            return int(self.child.exitstatus)
        return 128 + int(self.child.signalstatus)


def spawn(
    cli: Cli,
    *args: str,
    store: Path | str,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> PtyRun:
    """``python -m stacksecrets ARGS`` on a new pseudo-terminal."""
    log = io.StringIO()
    child = pexpect.spawn(
        sys.executable,
        cli.argv(*args)[1:],
        env=cli.environ(env, store=store),
        encoding="utf-8",
        timeout=timeout,
        dimensions=(50, 250),
    )
    child.logfile_read = log
    return PtyRun(child, log)
