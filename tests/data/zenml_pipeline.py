"""A real ZenML pipeline whose run validates its stack with stacksecrets (run in the ZenML venv).

Usage: python zenml_pipeline.py STACK SECRET MARKER. The step writes MARKER: "same" when
stacksecrets' Client() and ZenML's Client() return the same values for SECRET, else "differ".
"""

import sys
from pathlib import Path

from zenml import pipeline, step
from zenml.client import Client

import stacksecrets
from stacksecrets.zenml import validate_active_stack_hook

STACK, SECRET, MARKER = sys.argv[1:4]


@step
def compare_secrets() -> None:
    ours = stacksecrets.Client().get_secret(SECRET).secret_values
    theirs = Client().get_secret(SECRET).secret_values
    Path(MARKER).write_text("same" if ours == theirs else "differ")


@pipeline(on_init=validate_active_stack_hook, enable_cache=False)
def checked() -> None:
    compare_secrets()


if __name__ == "__main__":
    Client().activate_stack(STACK)
    checked()
