"""The command line on a terminal: progress and waits, tables, hidden prompts.

Only what is shown to a person at a terminal lives here (rich, imported only on a terminal);
what scripts read (piped output, ``--json``) stays the plain text of the report and the CLI,
byte for byte. rich honours ``NO_COLOR`` (no colour; layout unchanged) and ``TERM=dumb``.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

import click

from .._observe import Progress, Wait, observing
from .._references import format_reference, scan
from ._text import shown

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType
    from rich.measure import Measurement
    from rich.text import Text

    from .._report import ValidationReport

#: A store call or lock shorter than this is no wait worth a line.
SHOW_WAITS_AFTER = 0.5
#: At most this many different waits are listed at once.
MAX_WAITS_SHOWN = 3


def is_terminal(stream: IO[str]) -> bool:
    """``stream`` is an interactive terminal (and ``TERM`` is not ``dumb``)."""
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    # highlight off: names and paths are shown as they are, not coloured by guesswork.
    return Console(stderr=stderr, highlight=False, soft_wrap=False)


# -- progress and waits ------------------------------------------------------------------------


class ValidationProgress:
    """An observer (``_observe``) that rich draws: a progress line and what is waited for.

    The engine calls it from the event loop's thread; rich's refresh thread reads it, under a
    lock. It holds counts and the texts of waits (names, paths, hosts): never a value.
    """

    def __init__(self, description: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.description = description
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._progress = Progress(0, 0, 0, 0)
        self._waits: dict[int, Wait] = {}

    # The observer's side.
    def progress(self, progress: Progress) -> None:
        with self._lock:
            self._progress = progress

    def wait_started(self, wait: Wait) -> None:
        with self._lock:
            self._waits[wait.ident] = wait

    def wait_ended(self, wait: Wait) -> None:
        with self._lock:
            self._waits.pop(wait.ident, None)

    # The drawing side.
    def waits(self) -> list[str]:
        """One line per thing waited for long enough to mention, longest wait first."""
        now = self._clock()
        with self._lock:
            for ident in [
                i for i, w in self._waits.items() if w.until is not None and w.until < now
            ]:
                del self._waits[ident]
            current = list(self._waits.values())
        grouped: dict[str, list[Wait]] = {}
        for wait in current:
            if wait.until is not None or now - wait.since >= SHOW_WAITS_AFTER:
                grouped.setdefault(wait.what, []).append(wait)
        lines = []
        for what, waits in sorted(grouped.items(), key=lambda item: min(w.since for w in item[1])):
            timed = [w.until for w in waits if w.until is not None]
            if timed:
                lines.append(f"waiting {max(timed) - now:.1f} s for {shown(what)}")
                continue
            longest = now - min(w.since for w in waits)
            calls = f" ({len(waits)} calls)" if len(waits) > 1 else ""
            lines.append(f"waiting {longest:.1f} s for {shown(what)}{calls}")
        if len(lines) > MAX_WAITS_SHOWN:
            more = len(lines) - MAX_WAITS_SHOWN
            lines = [*lines[:MAX_WAITS_SHOWN], f"... and {more} more"]
        return lines

    def line(self) -> str:
        p = self._progress
        elapsed = self._clock() - self._started
        if p.total == 0:
            return f"{self.description} ({elapsed:.1f} s)"
        # Throttling shown only when it happened (fleet work: issue 24).
        slowed = f"{_count(p.throttled, 'throttled answer')} · " if p.throttled else ""
        return (
            f"{self.description}: {p.checked}/{p.total} secrets checked · "
            f"{_count(p.store_calls, 'store call')} · {_count(p.cache_hits, 'cache hit')} · "
            f"{slowed}{elapsed:.1f} s"
        )

    def __rich__(self) -> RenderableType:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            p = self._progress
        top = Table.grid(padding=(0, 1))
        top.add_row(
            Spinner("dots", style="cyan"),
            ProgressBar(total=p.total or None, completed=p.checked, width=24),
            Text(self.line()),
        )
        waits = [
            Text(line, style="yellow", no_wrap=True, overflow="ellipsis") for line in self.waits()
        ]
        return Group(top, *waits)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun if number == 1 else noun + 's'}"


@contextmanager
def progress(description: str, *, enabled: bool) -> Iterator[ValidationProgress | None]:
    """Show the progress of what runs in the block on stderr (``enabled``: a terminal, no
    ``--json``); gone when it ends, so the terminal keeps only the report."""
    if not enabled:
        yield None
        return
    from rich.live import Live

    shown_progress = ValidationProgress(description)
    live = Live(
        shown_progress,
        console=console(stderr=True),
        transient=True,
        refresh_per_second=8,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with live, observing(shown_progress):
        yield shown_progress


# -- tables ------------------------------------------------------------------------------------

#: Where a place (``stack 'prod', orchestrator 'k8s', config.settings[0].image``) may break:
#: after a blank, before an attribute's ``.`` or an index's ``[``.
_BREAKS = re.compile(r"(?<=\s)|(?=[.\[])")


def wrap_place(place: str, width: int) -> list[str]:
    """``place`` in lines of at most ``width`` characters, broken only between its parts
    (``_BREAKS``); a part longer than a whole line is cut, the last resort."""
    width = max(width, 1)
    lines: list[str] = []
    line = ""
    for part in (part for part in _BREAKS.split(place) if part):
        if line and len((line + part).rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        line += part
        while len(line.rstrip()) > width:
            lines.append(line[:width])
            line = line[width:]
    if line or not lines:
        lines.append(line.rstrip())
    return lines


class Places:
    """The "Used in" cell: one place a line, each wrapped at its path's separators to the
    column's width (rich itself would fold an attribute path in the middle of a word)."""

    def __init__(self, places: Sequence[str]) -> None:
        self.places = list(places)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        from rich.measure import Measurement

        parts = [part.strip() for place in self.places for part in _BREAKS.split(place)]
        longest_part = max((len(part) for part in parts), default=0)
        longest_line = max((len(place) for place in self.places), default=0)
        return Measurement(longest_part, longest_line).clamp(max_width=options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Text]:
        from rich.text import Text

        lines = [line for place in self.places for line in wrap_place(place, options.max_width)]
        yield Text("\n".join(lines), no_wrap=True, overflow="crop")


def print_report(report: ValidationReport) -> None:
    """The report as a title, a table of problems and the summary, for a person."""
    from rich.table import Table
    from rich.text import Text

    out = console()
    if not report.problems:
        out.print(Text(report.title(), style="bold green"))
        out.print(Text(report.summary(), style="dim"))
        return
    out.print(Text(report.title(), style="bold red" if not report.ok else "bold yellow"))
    table = Table(show_lines=True, header_style="bold")
    for column in ("Problem", "Secret", "Key", "Detail", "Used in"):
        table.add_column(column, overflow="fold")
    for problem in report.problems:
        detail = Text(shown(problem.detail))
        if problem.suggestion is not None:
            detail.append(("\n" if detail else "") + "did you mean ")
            detail.append(repr(problem.suggestion), style="bold")
            detail.append("?")
        table.add_row(
            Text(problem.kind.value.replace("_", " "), style="red"),
            Text(shown(problem.secret or "")),
            Text(shown(problem.key or "")),
            detail,
            Places([str(usage) for usage in problem.usages]),
        )
    out.print(table)
    out.print(Text(report.summary(), style="dim"))


def print_names(names: Sequence[str], title: str) -> None:
    """Secret names under a title line, as a one-column table, for a person."""
    from rich.table import Table
    from rich.text import Text

    out = console()
    out.print(Text(title, style="bold"))
    table = Table(header_style="bold")
    table.add_column("Secret", overflow="fold")
    for name in names:
        table.add_row(Text(shown(name)))
    out.print(table)


# -- hidden prompts ----------------------------------------------------------------------------


def usable_key(key: str) -> str | None:
    """Why ``key`` cannot be used in a reference ``{{name.key}}``, or None when it can."""
    if not key:
        return "a key cannot be empty"
    found = scan(format_reference("name", key))
    if len(found.references) != 1 or found.malformed or found.references[0].reference.key != key:
        return f"no reference could use the key {shown(key)}: no whitespace, '{{' or '}}'"
    return None


def prompt_values(
    given: Mapping[str, str] | None = None,
    *,
    intro: str = "Enter the keys and values (values are hidden); an empty key ends.",
) -> dict[str, str]:
    """Ask for keys and hidden values at the terminal until an empty key, as ZenML's
    ``secret create -i`` does. ``given`` (keys already given otherwise) may not be asked again.

    Prompts go to stderr; values are read without echo (``getpass``) and never printed.
    Raises ``click.UsageError`` when stdin is no terminal (a value would echo or be read from a
    pipe by mistake: ``--values-file -`` is the way to pipe values).
    """
    if not is_terminal(sys.stdin):
        raise click.UsageError(
            "-i/--interactive needs a terminal; to pass values from a pipe use --values-file -"
        )
    values: dict[str, str] = {}
    taken = set(given or ())
    click.echo(intro, err=True)
    while True:
        key: str = click.prompt("Key", default="", show_default=False, err=True)
        key = key.strip()
        if not key:
            return values
        problem = usable_key(key)
        if problem is None and (key in taken or key in values):
            problem = f"key {shown(key)} is given already"
        if problem is not None:
            click.echo(f"  {problem}", err=True)
            continue
        value: Any = click.prompt(f"Value of {shown(key)}", hide_input=True, err=True)
        values[key] = str(value)
