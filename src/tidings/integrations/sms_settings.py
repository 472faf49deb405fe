"""Settings of the SMS providers: Twilio, Vonage and a generic signed SMS webhook.

`base_url` is the provider's real API origin by default; it is a setting so a test (or a regional or proxy origin)
can stand in for it. It is checked by the same SSRF guard as every other URL before each send.
"""

from __future__ import annotations

from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from tidings.integrations.provider_settings import HttpUrl, ProviderSettings, Secret, TimeoutSeconds

# A sender: an E.164 number, a short code or an alphanumeric sender id ("Tidings"); the provider checks the rest.
type Sender = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^\+?[A-Za-z0-9 ._-]+$")]


def _https(value: str) -> str:
    if urlsplit(value).scheme.lower() != "https":
        raise ValueError("must be an https URL")
    return value


class TwilioSettings(ProviderSettings):
    # Not secret (it is in every API path), but identifies the account the auth token belongs to.
    account_sid: Annotated[str, Field(pattern=r"^AC[0-9a-fA-F]{32}$")]
    auth_token: Secret
    # One of the two is required; with a Messaging Service, Twilio picks the sender from its pool.
    from_number: Sender | None = None
    messaging_service_sid: Annotated[str, Field(pattern=r"^MG[0-9a-fA-F]{32}$")] | None = None
    base_url: HttpUrl = "https://api.twilio.com"
    timeout_seconds: TimeoutSeconds = 10
    # Tidings' public callback URL for this integration (https://…/webhooks/providers/<id>): sent as each message's
    # StatusCallback, and the URL status callbacks are verified against (instead of the URL the request reached,
    # which a proxy may have rewritten).
    status_callback_url: Annotated[HttpUrl, AfterValidator(_https)] | None = None

    @model_validator(mode="after")
    def _has_a_sender(self) -> Self:
        if self.from_number is None and self.messaging_service_sid is None:
            raise ValueError("fromNumber or messagingServiceSid is required")
        return self


class VonageSettings(ProviderSettings):
    api_key: Annotated[str, Field(min_length=1, max_length=64)]
    api_secret: Secret
    from_number: Sender
    base_url: HttpUrl = "https://rest.nexmo.com"
    timeout_seconds: TimeoutSeconds = 10
    # Delivery receipts are accepted only when the callback URL carries `?token=<dlr_token>`: Vonage's SMS API
    # signs receipts only with an account signature secret, so the URL's token is the credential.
    dlr_token: Secret | None = None


class SmsWebhookSettings(ProviderSettings):
    url: HttpUrl
    # The body's HMAC-SHA256 under this secret goes in a header, so receivers can check the sender.
    signing_secret: Secret | None = None
    timeout_seconds: TimeoutSeconds = 10
