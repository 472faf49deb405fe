"""Signatures of webhook requests, and their verification on the receiving side.

`Tidings-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. The timestamp is signed with the
body, so a captured request cannot be replayed after the receiver's tolerance; several `v1=` entries may appear.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Tidings-Signature"
EVENT_ID_HEADER = "Tidings-Event-Id"
EVENT_TYPE_HEADER = "Tidings-Event-Type"
DEFAULT_TOLERANCE_SECONDS = 300
_SCHEME = "v1"


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The value of the `Tidings-Signature` header for `body` sent at `timestamp`."""
    return f"t={timestamp},{_SCHEME}={_digest(secret, timestamp, body)}"


def signed_headers(secret: str, *, event_id: str, event_type: str, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(secret, body, timestamp),
        EVENT_ID_HEADER: event_id,
        EVENT_TYPE_HEADER: event_type,
    }


def verify(
    secret: str,
    header: str,
    body: bytes | str,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> bool:
    """Whether `header` (the `Tidings-Signature` value) signs exactly `body` (the raw request body) with `secret`,
    at a timestamp within `tolerance_seconds` of now."""
    raw = body.encode() if isinstance(body, str) else body
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == _SCHEME and value:
            candidates.append(value.lower())
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_seconds:
        return False
    expected = _digest(secret, timestamp, raw)
    matched = False
    for candidate in candidates:
        # No early return: the time taken does not tell which entry matched.
        matched |= hmac.compare_digest(expected, candidate)
    return matched
