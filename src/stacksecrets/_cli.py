"""Where the ``stacksecrets`` console script pointed before the command line became the
``stacksecrets.cli`` package: scripts installed then (editable installs keep theirs) still run."""

from __future__ import annotations

from .cli import main

__all__ = ["main"]
