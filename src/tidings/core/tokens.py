"""Short-lived signed tokens (subscriber sessions): a JSON claim set and an HMAC-SHA256 under a derived key.

Stateless on purpose: any API process verifies a token without a database read, which matters on every inbox
request and websocket connection.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1"


class InvalidTokenError(Exception):
    """Not a token this server signed (tampered, another secret key, or garbage)."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, secret_key: str, *, purpose: str) -> None:
        # One derived key per purpose, so a token of one kind never verifies as another.
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"tidings", info=purpose.encode()).derive(
            secret_key.encode()
        )

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def sign(self, claims: dict[str, Any]) -> str:
        body = f"{_VERSION}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}"
        return f"{body}.{self._mac(body)}"

    def verify(self, token: str) -> dict[str, Any]:
        version, _, rest = token.partition(".")
        payload, _, mac = rest.partition(".")
        if version != _VERSION or not payload or not mac:
            raise InvalidTokenError("malformed token")
        if not hmac.compare_digest(mac, self._mac(f"{version}.{payload}")):
            raise InvalidTokenError("token signature does not verify")
        try:
            claims = json.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            raise InvalidTokenError("malformed token") from None
        if not isinstance(claims, dict):
            raise InvalidTokenError("malformed token")
        return claims
