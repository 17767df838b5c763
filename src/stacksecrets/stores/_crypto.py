"""Encryption at rest for the local file store: Fernet keys from ``STACKSECRETS_FILE_KEY``.

The variable holds one or more Fernet keys separated by commas. The first key encrypts every
write; every key decrypts (``MultiFernet``), so a key is rotated by putting the new key first
and keeping the old one until the file has been written again (``FileStore.reencrypt()``).

An encrypted store file is JSON too, so that it says what it is::

    {"version": 1, "encryption": "fernet", "ciphertext": "gAAAAA..."}

where the ciphertext holds the plain store document. Fernet (AES-128-CBC with HMAC-SHA256, from
the ``cryptography`` package: ``pip install 'stacksecrets[encryption]'``) authenticates what
it decrypts: a changed file or a wrong key is refused, never read as something else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .._errors import ConfigurationError

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

KEY_VARIABLE = "STACKSECRETS_FILE_KEY"
SCHEME = "fernet"
_NEW_KEY = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


class FileCrypto:
    """Encrypts and decrypts store documents with a list of Fernet keys (first one writes)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigurationError(f"{KEY_VARIABLE} holds no key; make one with: {_NEW_KEY}")
        try:
            from cryptography.fernet import Fernet, MultiFernet
        except ImportError:  # pragma: no cover - the extra is installed in the tests
            raise ConfigurationError(
                "an encrypted file store needs the cryptography package: "
                "pip install 'stacksecrets[encryption]'"
            ) from None
        fernets = []
        for number, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.strip().encode()))
            except (ValueError, TypeError):
                # The message names the key's position, never the key.
                raise ConfigurationError(
                    f"key #{number} in {KEY_VARIABLE} is not a Fernet key (32 url-safe "
                    f"base64-encoded bytes); make one with: {_NEW_KEY}"
                ) from None
        self._fernet: MultiFernet = MultiFernet(fernets)
        self.key_count = len(fernets)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FileCrypto | None:
        """The keys in ``STACKSECRETS_FILE_KEY``, or ``None`` when it is unset or blank."""
        keys = keys_from_env(os.environ if environ is None else environ)
        return cls(keys) if keys else None

    def encrypt(self, plain: bytes) -> str:
        return self._fernet.encrypt(plain).decode()

    def decrypt(self, token: str) -> bytes | None:
        """The plain bytes, or ``None`` when no key opens the token (or it was changed)."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode())
        except (InvalidToken, ValueError, TypeError):
            return None

    def __repr__(self) -> str:
        return f"<FileCrypto {SCHEME}, {self.key_count} key(s)>"


def keys_from_env(environ: Mapping[str, str]) -> list[str]:
    """The keys in ``STACKSECRETS_FILE_KEY`` (comma-separated); none when unset or blank."""
    return [key for key in environ.get(KEY_VARIABLE, "").split(",") if key.strip()]
