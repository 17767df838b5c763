"""The optional batched-read side of a store (AWS Secrets Manager's ``BatchGetSecretValue``).

A store that reads many secrets in one call implements ``BatchReader`` beside the
``SecretStore`` protocol. The engine checks for it with ``isinstance(store, BatchReader)`` and
then reads a key-level validation's names in chunks of ``max_read_batch``, one call per chunk,
without a separate existence pass: the batch answer says which names are missing.

(To be folded into ``SecretStore`` and ``StoreCapabilities`` when the store contract lands.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from .._errors import StoreError
from .._secret import Secret


@runtime_checkable
class BatchReader(Protocol):
    """A store that reads many secrets per call."""

    @property
    def max_read_batch(self) -> int:
        """How many names one ``get_secrets`` call may carry."""
        ...

    async def get_secrets(self, names: Sequence[str]) -> Mapping[str, Secret | StoreError]:
        """Each name's secret, or its own error (``SecretNotFoundError`` when missing,
        ``ForbiddenError``, ...). A failure of the whole call is raised instead."""
        ...
