"""Identifiers and secrets that Tidings hands out."""

import hashlib
import secrets

# 32 random bytes: enough entropy that a plain SHA-256 is a safe way to store API keys (no slow KDF needed).
_SECRET_BYTES = 32


def new_identifier() -> str:
    """A public, URL-safe identifier such as an environment's ``applicationIdentifier``."""
    return secrets.token_urlsafe(12)


def new_api_key() -> str:
    """A secret API key; the prefix makes leaked keys easy to find in logs and by secret scanners."""
    return "tid_sk_" + secrets.token_urlsafe(_SECRET_BYTES)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
