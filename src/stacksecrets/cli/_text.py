"""How the command line shows text it did not write: names quoted, typed words hidden.

Names come from stack files, stores and the command line: shown as they are only when they are
printable, so that a name cannot forge lines or send terminal escapes. A word typed on the
command line may be a password given in the wrong place: error messages show its position.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import click


def shown(text: str) -> str:
    """``text`` when printable, else its repr: a name cannot forge lines or send escapes."""
    return text if text.isprintable() else repr(text)


def quoted(text: str) -> str:
    """A name as reports show it: quoted, escapes and all (it cannot forge lines)."""
    return repr(text)


def escaped(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every non-printable character as a Python escape (``\\x1b``, ``\\n``)."""
    if text.isprintable():
        return text
    return "".join(
        char
        if char.isprintable() or (keep_newlines and char == "\n")
        else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def escape_controls(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: strings print as they are, so a name from a stack file could send
    terminal escapes or forge lines; escape what is not printable (tracebacks keep newlines)."""
    for key, value in list(event_dict.items()):
        if isinstance(value, str):
            event_dict[key] = escaped(value, keep_newlines=key in {"exception", "stack"})
    return event_dict


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 secret``, ``2 secrets``."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def words_hidden(message: str, args: Sequence[str], group: click.Group) -> str:
    """``message`` with each command-line word that is not an option name or a command of
    ``group``, and anything after an ``=``, replaced by its position (``<argument 4>``)."""
    safe = command_words(group)
    for position, arg in sorted(enumerate(args, 1), key=lambda item: -len(item[1])):
        _name, eq, value = arg.partition("=")
        hidden = value if eq and arg.startswith("-") else "" if arg.startswith("-") else arg
        if len(hidden) >= 3 and hidden not in safe:  # noqa: PLR2004
            message = message.replace(hidden, f"<argument {position}>")
    return message


def command_words(group: click.Group) -> set[str]:
    """The names of every command and group under ``group``: not a value, safe to show."""
    import click

    words: set[str] = set()
    for name, command in group.commands.items():
        words.add(name)
        if isinstance(command, click.Group):
            words |= command_words(command)
    return words
