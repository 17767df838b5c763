"""The report's table for a person at a terminal (rich, recorded at 110 columns): a place in
the "Used in" column breaks between the parts of its attribute path, never inside a word."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from stacksecrets import Client, load_stacks
from stacksecrets.cli import _terminal
from stacksecrets.cli._terminal import wrap_place

LONG_PATH = (
    "settings.docker.environment.DATABASE_CONNECTION_SETTINGS[0].connection_parameters"
    ".authentication_password_from_vault"
)

STACK = """\
stacks:
  - name: production-eu-west
    components:
      - type: orchestrator
        flavor: kubernetes
        name: k8s-orchestrator-eu-west
        settings:
          docker:
            environment:
              DATABASE_CONNECTION_SETTINGS:
                - connection_parameters:
                    authentication_password_from_vault: "{{missing_database_secret.password}}"
                    other_attribute_with_a_fairly_long_name: "{{another_missing_one.user}}"
"""


def words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z0-9_]+", text))


def test_wrap_place_breaks_between_parts():
    lines = wrap_place("stack 'p', orchestrator 'k', settings.docker.environment[0].value", 30)
    assert all(len(line) <= 30 for line in lines)
    assert "".join(lines).replace(" ", "") == (
        "stack'p',orchestrator'k',settings.docker.environment[0].value"
    )
    assert lines[-1].startswith((".", "["))  # the path went on at a separator


def test_wrap_place_cuts_a_part_longer_than_a_line_as_the_last_resort():
    assert wrap_place("a.bcdefghij", 4) == ["a", ".bcd", "efgh", "ij"]


@pytest.mark.parametrize("width", [110, 120])
def test_report_table_never_breaks_a_path_inside_a_word(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int
):
    (tmp_path / "stack.yaml").write_text(STACK)
    store = tmp_path / "secrets.json"
    store.write_text('{"version": 1, "secrets": {}}')
    store.chmod(0o600)
    with Client(store.as_uri()) as client:
        report = client.validate_stacks(load_stacks(tmp_path / "stack.yaml"))
    assert not report.ok
    recorder = Console(
        width=width, record=True, highlight=False, soft_wrap=False, file=io.StringIO()
    )
    monkeypatch.setattr(_terminal, "console", lambda **_: recorder)
    _terminal.print_report(report)
    screen = recorder.export_text()

    expected = words(LONG_PATH) | words("other_attribute_with_a_fairly_long_name")
    for line in screen.splitlines():
        assert len(line) <= width
    found = set()
    for line in screen.splitlines():
        for cell in line.split("│"):
            found |= words(cell)
    # The path is longer than its column (it had to wrap), and every word of it is whole on
    # some line of the table: none was cut in two.
    assert LONG_PATH not in screen.replace("│", "").replace(" ", "")
    assert expected <= found, sorted(expected - found)
