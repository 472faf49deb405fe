"""Settings of the email providers that send through an HTTP API: SendGrid, Postmark, Resend and Mailgun.

`base_url` is the API's origin. It defaults to the service's public API, names a region where the service has more
than one (Mailgun EU, SendGrid EU), and lets tests point a provider at a local server.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, EmailStr, Field

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


type FromName = Annotated[str, Field(min_length=1, max_length=128)]


class SendGridSettings(ProviderSettings):
    api_key: Secret
    from_email: EmailStr
    from_name: FromName | None = None
    # EU-pinned subusers use https://api.eu.sendgrid.com.
    base_url: HttpUrl = "https://api.sendgrid.com"
    timeout_seconds: TimeoutSeconds = 10


class PostmarkSettings(ProviderSettings):
    server_token: Secret  # the server's API token, sent as X-Postmark-Server-Token
    from_email: EmailStr
    from_name: FromName | None = None
    message_stream: Annotated[str, AfterValidator(_stream)] | None = None  # Postmark's default: "outbound"
    base_url: HttpUrl = "https://api.postmarkapp.com"
    timeout_seconds: TimeoutSeconds = 10


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
