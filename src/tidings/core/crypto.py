"""Encryption of secrets at rest (integration credentials): AES-256-GCM under a key derived from the secret key.

Each ciphertext is bound to its owner (the associated data, e.g. environment and integration ids), so a value
copied onto another record does not decrypt.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1."
_NONCE_BYTES = 12


class DecryptionError(Exception):
    """The ciphertext was tampered with, moved to another record, or encrypted under another secret key."""


class Cipher:
    def __init__(self, secret_key: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"tidings", info=b"credentials-v1").derive(
            secret_key.encode()
        )
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, *, owner: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), owner.encode())
        return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, token: str, *, owner: str) -> str:
        if not token.startswith(_VERSION):
            raise DecryptionError("unknown ciphertext version")
        raw = base64.urlsafe_b64decode(token.removeprefix(_VERSION))
        try:
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], owner.encode()).decode()
        except InvalidTag:
            raise DecryptionError("ciphertext does not verify") from None
