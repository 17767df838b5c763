""" "Did you mean" from the store's own names: a misspelt secret name gets the existing close
name even when no reference uses that name.

Only when a secret is missing and the validation found no close name among those it looked up,
one listing of the store's names (never values), bounded in time and in the names considered;
a store or credentials that may not list are left alone (no suggestion, no error). The ratio
rules are the engine's (``_engine._close``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._client import AsyncClient
    from .._report import ValidationReport

#: Seconds the one listing may take; past it, the report goes out without suggestions.
LIST_SECONDS = 10.0
#: At most this many names are compared (a store of millions is not read whole).
MAX_NAMES = 10_000


async def with_store_suggestions(client: AsyncClient, report: ValidationReport) -> ValidationReport:
    """``report`` with a suggestion from the store's names for each missing secret that has
    none yet."""
    import anyio
    import attrs

    from .._errors import StackSecretsError
    from .._logging import logger
    from .._problems import close_match as _close
    from .._report import ProblemKind

    wanting = {
        problem.secret
        for problem in report.problems
        if problem.kind is ProblemKind.MISSING_SECRET
        and problem.secret is not None
        and problem.suggestion is None
    }
    if not wanting:
        return report
    names: list[str] | None = None
    try:
        with anyio.move_on_after(LIST_SECONDS):
            names = await client.list_secrets()
    except StackSecretsError as exc:  # e.g. credentials that may read but not list
        logger.debug("stacksecrets.cli.suggest.unlisted", error=type(exc).__name__)
        return report
    if names is None:
        logger.debug("stacksecrets.cli.suggest.unlisted", error="timeout")
        return report
    known = [name for name in names[:MAX_NAMES] if name not in wanting]
    problems = [
        attrs.evolve(problem, suggestion=_close(problem.secret, known))
        if problem.secret in wanting
        and problem.kind is ProblemKind.MISSING_SECRET
        and problem.secret is not None
        else problem
        for problem in report.problems
    ]
    return attrs.evolve(report, problems=tuple(problems))
