"""The docs site builds in strict mode, and its reference pages cover the public surface.

Run by the docs session (`nox -s docs`), which builds the site once and names it in
``STACKSECRETS_DOCS_SITE``; run alone, these tests build it themselves. The expectations come
from ``__all__`` and the click group, so they keep holding as names and commands are added.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from stacksecrets.cli import cli

pytest.importorskip("mkdocs", reason="the docs session (nox -s docs) has the site's tools")

ROOT = Path(__file__).resolve().parent.parent
NAMESPACES = {
    "stacksecrets": "reference/stacksecrets",
    "stacksecrets.stores": "reference/stores",
    "stacksecrets.stores.contract": "reference/store-contract",
    "stacksecrets.references": "reference/references",
    "stacksecrets.zenml": "reference/zenml",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = os.environ.get("STACKSECRETS_DOCS_SITE")
    if built:
        return Path(built)
    target = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(target)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr
    return target


def page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("module", sorted(NAMESPACES))
def test_api_reference_documents_every_public_name(site: Path, module: str):
    """Each name in the namespace's ``__all__`` has its own entry, with its docstring."""
    html = page(site, NAMESPACES[module])
    names = importlib.import_module(module).__all__
    missing = [name for name in names if f'id="{module}.{name}"' not in html]
    assert not missing, f"not in the API reference of {module}: {missing}"


def commands(group: click.Group, path: tuple[str, ...] = ("stacksecrets",)):
    for name, command in sorted(group.commands.items()):
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))


def test_cli_reference_documents_every_command_and_option(site: Path):
    """Every command of the click group has a section, and each of its options is shown."""
    html = page(site, "reference/cli")
    found = list(commands(cli))
    assert len(found) >= 7  # validate and the secret commands, at least
    for path, command in found:
        anchor = "-".join(path).replace("_", "-")
        start = html.find(f'id="{anchor}"')
        assert start >= 0, f"no section for `{' '.join(path)}`"
        heading_end = html.index("</h", start)
        end = min(i for i in (html.find("<h", heading_end), html.find("</article")) if i > 0)
        section = html[start:end]
        for param in command.params:
            for flag in param.opts if isinstance(param, click.Option) else ():
                assert flag in section, f"`{' '.join(path)}` does not show {flag}"


def test_every_page_is_built_and_in_the_navigation(site: Path):
    """A page dropped into docs/ is built and reachable from the navigation (no nav edit)."""
    home = page(site, "")
    for source in sorted((ROOT / "docs").rglob("*.md")):
        relative = source.relative_to(ROOT / "docs").with_suffix("")
        if relative.parts[0] == "bench":  # notes beside the benchmark data, not pages
            continue
        if relative.name == "index":
            continue
        assert (site / relative / "index.html").exists(), f"{source.name} was not built"
        assert f'href="{relative.as_posix()}/"' in home, f"{relative} is not in the navigation"


def test_home_page_is_the_readme(site: Path):
    """The home page includes README.md (one source), its links rewritten to the site's pages."""
    home = page(site, "")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tagline = readme.splitlines()[2]
    assert tagline in home
    assert 'href="benchmarks/"' in home
    assert not re.search(r'href="docs/', home)
