"""The providers an integration can use: each one's channel, settings model and which settings are secret.

Secret settings (passwords, signing secrets, URLs that carry a token) are `SecretStr`, so a model that reaches a
log or a traceback shows `**********`; they are stored encrypted and the API never returns them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, SecretStr

from tidings.core.channels import Channel
from tidings.core.validation import camel

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


class SmtpSettings(ProviderSettings):
    host: Annotated[str, Field(min_length=1, max_length=253), AfterValidator(_hostname)]
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    password: Secret | None = None
    from_email: EmailStr
    from_name: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    timeout_seconds: TimeoutSeconds = 10


class WebhookSettings(ProviderSettings):
    url: HttpUrl
    # The body's HMAC-SHA256 under this secret goes in a header, so receivers can check the sender.
    signing_secret: Secret | None = None
    timeout_seconds: TimeoutSeconds = 10


class SlackWebhookSettings(ProviderSettings):
    # Slack's incoming-webhook URL embeds its token: whoever has it can post, so it is the credential.
    webhook_url: HttpsSecretUrl
    timeout_seconds: TimeoutSeconds = 10


class InAppSettings(ProviderSettings):
    pass


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    id: str
    name: str
    channel: Channel
    settings_model: type[ProviderSettings]
    secret_fields: frozenset[str] = frozenset()

    def field_for(self, api_key: str) -> str | None:
        """The stored (snake_case) name of a setting the API spells in camelCase, or None if there is none."""
        return next((name for name in self.settings_model.model_fields if camel(name) == api_key), None)


PROVIDERS: dict[str, ProviderSpec] = {
    spec.id: spec
    for spec in (
        ProviderSpec("smtp", "SMTP", Channel.EMAIL, SmtpSettings, frozenset({"password"})),
        ProviderSpec("webhook", "Webhook", Channel.CHAT, WebhookSettings, frozenset({"signing_secret"})),
        ProviderSpec("slack-webhook", "Slack", Channel.CHAT, SlackWebhookSettings, frozenset({"webhook_url"})),
        ProviderSpec("in-app", "In-app inbox", Channel.IN_APP, InAppSettings),
    )
}
