"""Types ZenML gives what a reference may stand in: from ZenML's own classes when ZenML is
importable (where a pipeline runs), else from what the server stores (a flavor's config
schema), else unknown (and the report says so once).

A secret's value is a string. ZenML 0.98 resolves a whole-value reference when the attribute
is read (``StackComponentConfig.__custom_getattribute__``), after pydantic validated the
configuration with the reference text in it; settings are built from the text too
(``SettingsResolver._convert_settings``). So a reference works only where the attribute's
type takes a string unchanged: ``str``, ``Optional[str]``, ``SecretStr``, a union holding
one of them. ``int``, ``float``, ``bool``, ``Literal``, ``Enum``, ``dict``, ``list`` refuse
the text; a validator may refuse or change it; an attribute the class does not have is
dropped.

Nothing here imports ZenML at module import time.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

__all__ = ["check_types", "zenml_importable"]

Fail = Callable[[str, object, object], NoReturn]


def zenml_importable() -> bool:
    """Whether ZenML can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec("zenml") is not None
    except (ImportError, ValueError):
        return False


def check_types(data: Mapping[str, Any], fail: Fail) -> None:
    """Field types of a run configuration through ZenML's own ``PipelineRunConfiguration``,
    when ZenML is importable (else nothing is checked here). ``fail(message, container,
    key)`` raises; messages name the field and what ZenML expects, never the value."""
    if not zenml_importable():
        return
    try:
        from pydantic import ValidationError
        from zenml.config.pipeline_run_configuration import (  # type: ignore[import-not-found]
            PipelineRunConfiguration,
        )
    except Exception:  # noqa: BLE001 - a broken ZenML install: the check is skipped
        return
    fields = {
        key: value
        for key, value in data.items()
        if key in PipelineRunConfiguration.model_fields and value is not None
    }
    try:
        PipelineRunConfiguration.model_validate(fields)
    except ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        loc = [str(part) for part in first.get("loc", ())]
        where = ".".join(loc) or "top level"
        message = str(first.get("msg", "invalid"))
        fail(
            f"{where[:200]}: {message[:200]} (ZenML's PipelineRunConfiguration refuses it)",
            data,
            loc[0] if loc else None,
        )
