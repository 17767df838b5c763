"""A real ZenML pipeline with no stacksecrets in its code, run with a run configuration file
(run in the ZenML venv): the file's ``on_init:`` adds stacksecrets' hook.

Usage: python zenml_config_pipeline.py STACK CONFIG MARKER. The step writes MARKER.
"""

import sys
from pathlib import Path

from zenml import pipeline, step
from zenml.client import Client

STACK, CONFIG, MARKER = sys.argv[1:4]


@step
def trainer() -> None:
    Path(MARKER).write_text("ran")


@pipeline(enable_cache=False)
def plain() -> None:
    trainer()


if __name__ == "__main__":
    Client().activate_stack(STACK)
    plain.with_options(config_path=CONFIG)()
