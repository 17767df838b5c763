"""Moved to ``stacksecrets._zenml.rules``; this alias keeps old private imports working
while other branches of this round still name it (remove once they are merged)."""

from ._zenml.rules import GENERAL_SETTINGS, unresolvable, value_reason

__all__ = ["GENERAL_SETTINGS", "unresolvable", "value_reason"]
