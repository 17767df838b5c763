"""A ZenML experiment-tracker flavor with 40 plain ``str`` fields, to hold secret references.

ZenML only accepts a reference in a plain string field of a component's configuration; this
flavor gives benchmark stacks as many references per component as a scenario needs. Imported
by ZenML (``zenml experiment-tracker flavor register bench_flavor.BenchTrackerFlavor``, run
from this folder), never by stacksecrets.
"""

from __future__ import annotations

from zenml.experiment_trackers.base_experiment_tracker import (
    BaseExperimentTracker,
    BaseExperimentTrackerConfig,
    BaseExperimentTrackerFlavor,
)

FLAVOR = "bench_refs"


class BenchTrackerConfig(BaseExperimentTrackerConfig):
    """Forty string fields."""

    f01: str = ""
    f02: str = ""
    f03: str = ""
    f04: str = ""
    f05: str = ""
    f06: str = ""
    f07: str = ""
    f08: str = ""
    f09: str = ""
    f10: str = ""
    f11: str = ""
    f12: str = ""
    f13: str = ""
    f14: str = ""
    f15: str = ""
    f16: str = ""
    f17: str = ""
    f18: str = ""
    f19: str = ""
    f20: str = ""
    f21: str = ""
    f22: str = ""
    f23: str = ""
    f24: str = ""
    f25: str = ""
    f26: str = ""
    f27: str = ""
    f28: str = ""
    f29: str = ""
    f30: str = ""
    f31: str = ""
    f32: str = ""
    f33: str = ""
    f34: str = ""
    f35: str = ""
    f36: str = ""
    f37: str = ""
    f38: str = ""
    f39: str = ""
    f40: str = ""


class BenchTracker(BaseExperimentTracker):
    """Does nothing: only its configuration matters."""


class BenchTrackerFlavor(BaseExperimentTrackerFlavor):
    """The ``bench_refs`` experiment-tracker flavor."""

    @property
    def name(self) -> str:
        return FLAVOR

    @property
    def config_class(self) -> type[BenchTrackerConfig]:
        return BenchTrackerConfig

    @property
    def implementation_class(self) -> type[BenchTracker]:
        return BenchTracker
