"""ZenML's code is gathered by layer, and no import runs back up (issue 20).

``stacksecrets._zenml`` (ZenML's rules the core uses) imports only the core; the stores'
ZenML modules import nothing from the clients or the hook; the hook (``_zenml_integration``,
``stacksecrets.zenml``) is at the top. Read from the source, so an import added inside a
function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "stacksecrets"

#: Modules above the core: the ZenML rules must import none of them.
ABOVE_CORE = ("_client", "_cli", "cli", "_engine", "_fix", "stores", "zenml", "_zenml_integration")


def _imports(path: Path) -> set[str]:
    """Every stacksecrets module ``path`` imports, as a dotted name below the package."""
    package = path.relative_to(SRC).parent.parts
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - (node.level - 1)])
                module = ".".join([*base, *(node.module or "").split(".")]).strip(".")
            elif (node.module or "").startswith("stacksecrets"):
                module = (node.module or "").removeprefix("stacksecrets").strip(".")
            else:
                continue
            found.add(module)
            found.update(f"{module}.{alias.name}".strip(".") for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(
                a.name.removeprefix("stacksecrets").strip(".")
                for a in node.names
                if a.name.startswith("stacksecrets")
            )
    return found


@pytest.mark.parametrize("path", sorted((SRC / "_zenml").glob("*.py")), ids=lambda p: p.name)
def test_zenml_rules_import_only_the_core(path: Path) -> None:
    above = sorted(name for name in _imports(path) if name.split(".")[0] in ABOVE_CORE)
    assert above == [], f"{path.name} imports from above the core: {above}"


def test_zenml_rules_do_not_import_zenml_at_import_time() -> None:
    for path in (SRC / "_zenml").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only: ZenML is imported lazily, if at all
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("zenml") for a in node.names), path.name
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("zenml"), path.name


@pytest.mark.parametrize("path", sorted((SRC / "stores").glob("_zenml*.py")), ids=lambda p: p.name)
def test_zenml_store_modules_do_not_import_the_hook_or_clients(path: Path) -> None:
    names = {name.split(".")[0] for name in _imports(path)}
    assert not names & {"_client", "_cli", "cli", "zenml", "_zenml_integration"}, path.name


def test_core_does_not_import_the_hook() -> None:
    for name in ("_plan.py", "_loaders.py", "_references.py", "_stack.py", "_engine.py"):
        path = SRC / name
        if path.exists():
            names = {n.split(".")[0] for n in _imports(path)}
            assert not names & {"zenml", "_zenml_integration"}, name
