"""Moved to ``stacksecrets._zenml.runconfig``; this alias keeps old private imports working
while other branches of this round still name it (remove once they are merged)."""

from ._zenml.runconfig import is_run_config, read_run_config

__all__ = ["is_run_config", "read_run_config"]
