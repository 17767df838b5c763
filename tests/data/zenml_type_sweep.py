"""Run in the ZenML venv: every attribute of every flavor config class ZenML 0.98 ships
(built-in and integrations), with what ZenML does to a whole-value reference there: "ok"
(kept as the text), "type" (the attribute's type or its constraints refuse the text),
"changed" (a type that converts it), "validator" (ZenML refuses a reference in an attribute
with validators, ``StackComponentConfig.__init__``); and the class's JSON schema, the one a
server stores. Prints one line: SWEEP <json>.
"""

import json
import warnings
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError
from zenml.stack.flavor_registry import FlavorRegistry
from zenml.utils import pydantic_utils

REF = "{{a.b}}"


def verdict(config: Any, attr: str, field: Any) -> str:
    if pydantic_utils.has_validators(pydantic_class=config, field_name=attr):
        return "validator"
    annotation = (
        Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    )
    try:
        value = TypeAdapter(annotation).validate_python(REF)
    except (ValidationError, TypeError, ValueError):
        return "type"
    reveal = getattr(value, "get_secret_value", None)
    return "ok" if (reveal() if callable(reveal) else value) == REF else "changed"


def main() -> None:
    warnings.filterwarnings("ignore")
    registry = FlavorRegistry()
    out = []
    for flavor_class in [*registry.builtin_flavors, *registry.integration_flavors]:
        flavor = flavor_class()
        try:
            config = flavor.config_class
        except ImportError:  # an integration whose requirements are not installed
            continue
        schema = config.model_json_schema()
        for attr, field in config.model_fields.items():
            out.append(
                {
                    "flavor": f"{flavor.type.value}/{flavor.name}",
                    "attr": attr,
                    "zenml": verdict(config, attr, field),
                    "schema": schema,
                }
            )
    print("SWEEP " + json.dumps(out))


main()
