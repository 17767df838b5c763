"""stacksecrets in ZenML pipeline runs: validate the run's stack before any step.

>>> from stacksecrets.zenml import validate_active_stack_hook  # doctest: +SKIP
>>> @pipeline(on_init=validate_active_stack_hook)  # doctest: +SKIP

Run with ``ZENML_SECRET_VALIDATION_LEVEL=NONE`` (ZenML's sequential check off) and
``STACKSECRETS_VALIDATION_LEVEL=SECRET_AND_KEY_EXISTS`` (this one on). See
``docs/zenml-users.md``. Importing this module does not import ZenML; calling its functions
needs ZenML installed.
"""

from __future__ import annotations

from ._zenml_integration import stack_from_zenml, validate_active_stack, validate_active_stack_hook

__all__ = ["stack_from_zenml", "validate_active_stack", "validate_active_stack_hook"]

for _function in (stack_from_zenml, validate_active_stack, validate_active_stack_hook):
    _function.__module__ = __name__  # documented and exported here
del _function
