"""The public API: each public namespace's ``__all__`` is sorted and is exactly what it exports.

Written generically, so it keeps holding as names are added: a public namespace is
``stacksecrets`` or any subpackage or module whose dotted name has no part starting with
``_``. What a namespace exports is every public name bound in it that is either assigned in
its own source (constants) or a class or function defined in the namespace or a private module
beneath it. Names imported from elsewhere (``Path``, ``Any``, another namespace's errors) are
not exports.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import pytest

import stacksecrets


def public_namespaces() -> list[str]:
    found = pkgutil.walk_packages(stacksecrets.__path__, prefix="stacksecrets.")
    public = [
        info.name for info in found if not any(p.startswith("_") for p in info.name.split("."))
    ]
    return ["stacksecrets", *public]


NAMESPACES = public_namespaces()


def assigned_names(module: ModuleType) -> set[str]:
    """Names given a value by a top-level statement of the module's own source."""
    tree = ast.parse(Path(inspect.getfile(module)).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        else:
            continue
        names.update(target.id for target in targets if isinstance(target, ast.Name))
    return names


def defined_under(obj: object, namespace: str) -> bool:
    module = getattr(obj, "__module__", None)
    return (inspect.isclass(obj) or callable(obj)) and (
        isinstance(module, str) and (module == namespace or module.startswith(namespace + "."))
    )


def exported_names(module: ModuleType) -> set[str]:
    own = assigned_names(module)
    return {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and not inspect.ismodule(obj)
        and (name in own or defined_under(obj, module.__name__))
    }


def ruff_order(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: SCREAMING_CASE, then CamelCase, then the rest."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_public_namespaces_are_found():
    """The package and its ``stores`` namespace are both checked below."""
    assert {"stacksecrets", "stacksecrets.stores"} <= set(NAMESPACES)


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_all_is_sorted_without_duplicates(namespace):
    """``__all__`` is sorted (as ruff sorts it) and names each export once."""
    names = list(importlib.import_module(namespace).__all__)
    assert names == sorted(set(names), key=ruff_order)


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_every_name_in_all_exists(namespace):
    """Every name in ``__all__`` can be imported from the namespace (lazy ones included)."""
    module = importlib.import_module(namespace)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_every_public_name_is_in_all(namespace):
    """Every public class, function and constant the namespace defines is in ``__all__``."""
    module = importlib.import_module(namespace)
    unlisted = sorted(exported_names(module) - set(module.__all__))
    assert unlisted == []


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_star_import_gives_exactly_all(namespace):
    """``from namespace import *`` binds exactly the names in ``__all__``."""
    scope: dict[str, object] = {}
    exec(f"from {namespace} import *", scope)  # noqa: S102 -- a fixed import statement
    assert sorted(set(scope) - {"__builtins__"}) == sorted(
        importlib.import_module(namespace).__all__
    )


def test_exported_names_ignores_imported_helpers():
    """The check above is not vacuous: it sees stores' own names but not ``Path`` or ``Any``."""
    from stacksecrets import stores

    names = exported_names(stores)
    assert {"STORE_VARIABLE", "MemoryStore", "open_store"} <= names
    assert not names & {"Path", "Any", "Mapping", "TYPE_CHECKING", "ConfigurationError"}


def test_public_classes_and_functions_name_their_public_module():
    """``stacksecrets.Stack.__module__`` is ``stacksecrets``: reprs, docs and pickles point
    where users import from, not at a private module."""
    for namespace in NAMESPACES:
        module = importlib.import_module(namespace)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert not obj.__module__.split(".")[-1].startswith("_") or (
                    # stores keep their modules (lazy imports); the contract gathers them
                    namespace in {"stacksecrets.stores", "stacksecrets.stores.contract"}
                ), f"{namespace}.{name} says {obj.__module__}"


def test_the_top_level_holds_what_applications_use():
    """Grammar and planning live in ``stacksecrets.references``, not at the top level."""
    from stacksecrets import references

    assert not set(references.__all__) & set(stacksecrets.__all__)
    assert {"AsyncClient", "Client", "ClientOptions", "Stack", "ValidationReport"} <= set(
        stacksecrets.__all__
    )


def test_the_client_uses_no_private_name_of_the_engine():
    """The clients are a front over the engine's public operations."""
    source = Path(inspect.getfile(importlib.import_module("stacksecrets._client")))
    tree = ast.parse(source.read_text(encoding="utf-8"))
    private = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "_engine"
        for alias in node.names
        if alias.name.startswith("_")
    ]
    engine_attrs = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "_engine"
        and node.attr.startswith("_")
    ]
    assert private == []
    assert engine_attrs == []
