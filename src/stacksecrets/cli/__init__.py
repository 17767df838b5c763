"""The ``stacksecrets`` command line (click; nothing outside this package imports click).

One module per job: ``_app`` the group, its options, logging and ``main``; ``_validate``
``validate`` and ``register-secrets``; ``_fix`` what ``--fix`` plans, asks and writes;
``_secret`` the ``secret`` commands; ``_cache`` the ``cache`` commands; ``_zenml`` stacks from
a ZenML server; ``_run`` the store, client and deadline of a command; ``_errors`` exit codes;
``_text`` name quoting and hidden words; ``_terminal`` what a person at a terminal sees
(rich). A module imports what its command uses when the command runs, so ``--help`` loads
click and little else.
"""

from __future__ import annotations

from ._app import cli, main

main.__module__ = __name__

__all__ = ["cli", "main"]
