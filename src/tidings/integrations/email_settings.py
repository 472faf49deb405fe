"""Settings of the email providers that send through an HTTP API: SendGrid, Postmark, Resend and Mailgun.

`base_url` is the API's origin. It defaults to the service's public API, names a region where the service has more
than one (Mailgun EU, SendGrid EU), and lets tests point a provider at a local server.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Self

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pydantic import AfterValidator, EmailStr, Field, model_validator

from tidings.integrations.provider_settings import HttpUrl, ProviderSettings, Secret, TimeoutSeconds

# A DNS name: what Mailgun's sending domain must be, and safe to put in the URL path.
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
# Postmark message stream ids, e.g. "outbound" (the default transactional stream) or "broadcast".
_STREAM = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _domain(value: str) -> str:
    if not _DOMAIN.match(value):
        raise ValueError("must be a domain name, e.g. mg.example.com")
    return value.lower()


def _stream(value: str) -> str:
    if not _STREAM.match(value):
        raise ValueError("must be a message stream id: letters, digits, '-' and '_'")
    return value


def _ecdsa_public_key(value: str) -> str:
    """SendGrid's Event Webhook verification key as its settings page shows it: base64 of a DER P-256 public key."""
    value = "".join(value.split())
    try:
        key = load_der_public_key(base64.b64decode(value, validate=True))
    except (ValueError, binascii.Error, TypeError):
        raise ValueError("must be the base64 (DER) public key SendGrid shows for the signed Event Webhook") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("must be an ECDSA P-256 public key")
    return value


type FromName = Annotated[str, Field(min_length=1, max_length=128)]


class SendGridSettings(ProviderSettings):
    api_key: Secret
    from_email: EmailStr
    from_name: FromName | None = None
    # EU-pinned subusers use https://api.eu.sendgrid.com.
    base_url: HttpUrl = "https://api.sendgrid.com"
    timeout_seconds: TimeoutSeconds = 10
    # The Signed Event Webhook's verification key. Without it status callbacks are accepted unverified (unsafe:
    # anyone who learns the callback URL can report bounces).
    event_webhook_public_key: Annotated[str, Field(max_length=1024), AfterValidator(_ecdsa_public_key)] | None = None


class PostmarkSettings(ProviderSettings):
    server_token: Secret  # the server's API token, sent as X-Postmark-Server-Token
    from_email: EmailStr
    from_name: FromName | None = None
    message_stream: Annotated[str, AfterValidator(_stream)] | None = None  # Postmark's default: "outbound"
    base_url: HttpUrl = "https://api.postmarkapp.com"
    timeout_seconds: TimeoutSeconds = 10
    # Basic auth credentials put in the webhook URL (https://user:password@host/...): with them, a status callback
    # must carry the same Authorization header. Without them callbacks are accepted unverified (unsafe).
    webhook_username: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^:\s]+$")] | None = None
    webhook_password: Secret | None = None

    @model_validator(mode="after")
    def _webhook_credentials_together(self) -> Self:
        if (self.webhook_username is None) != (self.webhook_password is None):
            raise ValueError("webhookUsername and webhookPassword go together")
        return self


class ResendSettings(ProviderSettings):
    api_key: Secret
    from_email: EmailStr
    from_name: FromName | None = None
    base_url: HttpUrl = "https://api.resend.com"
    timeout_seconds: TimeoutSeconds = 10


class MailgunSettings(ProviderSettings):
    api_key: Secret
    domain: Annotated[str, AfterValidator(_domain)]
    from_email: EmailStr
    from_name: FromName | None = None
    # The region: https://api.mailgun.net (US) or https://api.eu.mailgun.net (EU), as the domain was created in.
    base_url: HttpUrl = "https://api.mailgun.net"
    timeout_seconds: TimeoutSeconds = 10
    # The account's HTTP webhook signing key (Sending > Webhooks): status callbacks are rejected without it.
    webhook_signing_key: Secret | None = None
