"""How deeply references are checked, and where that choice is read from."""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping

from ._errors import ConfigurationError

LEVEL_VARIABLES = ("STACKSECRETS_VALIDATION_LEVEL", "ZENML_SECRET_VALIDATION_LEVEL")


class ValidationLevel(str, enum.Enum):
    """The three levels of the seed, with ZenML's names and default."""

    #: No check at all: zero store calls.
    NONE = "NONE"
    #: Each referenced secret exists. Needs only permission to list secrets; reads no value.
    SECRET_EXISTS = "SECRET_EXISTS"
    #: Each referenced secret exists and holds each referenced key. Reads every secret once.
    SECRET_AND_KEY_EXISTS = "SECRET_AND_KEY_EXISTS"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, text: str, *, source: str = "validation level") -> ValidationLevel:
        """Read a level by name, case-insensitively; the error lists the valid names."""
        wanted = text.strip().upper()
        for level in cls:
            if level.value == wanted:
                return level
        valid = ", ".join(level.value for level in cls)
        raise ConfigurationError(
            f"{source}: {text!r} is not a validation level; use one of {valid}"
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ValidationLevel:
        """``STACKSECRETS_VALIDATION_LEVEL``, else ``ZENML_SECRET_VALIDATION_LEVEL``, else
        ``SECRET_AND_KEY_EXISTS``."""
        env = os.environ if environ is None else environ
        for variable in LEVEL_VARIABLES:
            text = env.get(variable)
            if text is not None and text.strip():
                return cls.parse(text, source=variable)
        return cls.SECRET_AND_KEY_EXISTS
