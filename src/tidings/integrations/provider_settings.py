"""What every provider's settings model is built from: the base model and the validated field types.

A module of its own so each channel's settings modules (email_settings, sms_settings, chat_settings) and the
registry in `providers.py` can both import it without importing each other.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

MAX_URL_LENGTH = 2048
MAX_SECRET_LENGTH = 1024
_HOST = re.compile(r"^[A-Za-z0-9._:\[\]-]+$")


def _url(value: str, schemes: tuple[str, ...]) -> str:
    # Messages never echo the value: for a Slack webhook the URL is the credential.
    wanted = " or ".join(schemes)
    if len(value) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:
        raise ValueError(f"must be an {wanted} URL") from None
    if parts.scheme.lower() not in schemes or not hostname or any(char.isspace() for char in value):
        raise ValueError(f"must be an {wanted} URL")
    return value


def _http_url(value: str) -> str:
    return _url(value, ("http", "https"))


def _https_secret_url(value: SecretStr) -> SecretStr:
    _url(value.get_secret_value(), ("https",))
    return value


def _secret_length(value: SecretStr) -> SecretStr:
    length = len(value.get_secret_value())
    if not 1 <= length <= MAX_SECRET_LENGTH:
        raise ValueError(f"must be 1 to {MAX_SECRET_LENGTH} characters")
    return value


def _hostname(value: str) -> str:
    if not _HOST.match(value):
        raise ValueError("must be a host name or IP address")
    return value


type Secret = Annotated[SecretStr, AfterValidator(_secret_length)]
type HttpUrl = Annotated[str, AfterValidator(_http_url)]
type HttpsSecretUrl = Annotated[SecretStr, AfterValidator(_secret_length), AfterValidator(_https_secret_url)]
type TimeoutSeconds = Annotated[int, Field(ge=1, le=120)]


class ProviderSettings(BaseModel):
    """Base of every provider's settings: unknown keys are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)
