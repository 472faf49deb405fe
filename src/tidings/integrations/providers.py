"""The providers an integration can use: each one's channel, settings model and which settings are secret.

Secret settings (passwords, signing secrets, URLs that carry a token) are `SecretStr`, so a model that reaches a
log or a traceback shows `**********`; they are stored encrypted and the API never returns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, EmailStr, Field

from tidings.core.channels import Channel
from tidings.core.validation import camel
from tidings.integrations.apprise_settings import AppriseSettings
from tidings.integrations.chat_settings import DiscordSettings, SlackApiSettings, TeamsSettings, TelegramSettings
from tidings.integrations.email_settings import MailgunSettings, PostmarkSettings, ResendSettings, SendGridSettings
from tidings.integrations.provider_settings import (
    MAX_SECRET_LENGTH,
    MAX_URL_LENGTH,
    HttpsSecretUrl,
    HttpUrl,
    ProviderSettings,
    Secret,
    TimeoutSeconds,
    _hostname,
)
from tidings.integrations.push_settings import ApnsSettings, ExpoSettings, FcmSettings, WebPushSettings
from tidings.integrations.sms_settings import SmsWebhookSettings, TwilioSettings, VonageSettings

# The shared settings types stay importable from here, where the providers' settings were always found.
__all__ = [
    "MAX_SECRET_LENGTH",
    "MAX_URL_LENGTH",
    "PROVIDERS",
    "HttpUrl",
    "HttpsSecretUrl",
    "InAppSettings",
    "ProviderSettings",
    "ProviderSpec",
    "Secret",
    "SlackWebhookSettings",
    "SmtpSettings",
    "TimeoutSeconds",
    "WebhookSettings",
]


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
        ProviderSpec("sendgrid", "SendGrid", Channel.EMAIL, SendGridSettings, frozenset({"api_key"})),
        ProviderSpec(
            "postmark", "Postmark", Channel.EMAIL, PostmarkSettings, frozenset({"server_token", "webhook_password"})
        ),
        ProviderSpec("resend", "Resend", Channel.EMAIL, ResendSettings, frozenset({"api_key"})),
        ProviderSpec(
            "mailgun", "Mailgun", Channel.EMAIL, MailgunSettings, frozenset({"api_key", "webhook_signing_key"})
        ),
        ProviderSpec("twilio", "Twilio", Channel.SMS, TwilioSettings, frozenset({"auth_token"})),
        ProviderSpec("vonage", "Vonage", Channel.SMS, VonageSettings, frozenset({"api_secret", "dlr_token"})),
        ProviderSpec("sms-webhook", "SMS webhook", Channel.SMS, SmsWebhookSettings, frozenset({"signing_secret"})),
        ProviderSpec("discord", "Discord", Channel.CHAT, DiscordSettings, frozenset({"webhook_url"})),
        ProviderSpec("teams", "Microsoft Teams", Channel.CHAT, TeamsSettings, frozenset({"webhook_url"})),
        ProviderSpec("telegram", "Telegram", Channel.CHAT, TelegramSettings, frozenset({"bot_token"})),
        ProviderSpec("slack-api", "Slack (Web API)", Channel.CHAT, SlackApiSettings, frozenset({"bot_token"})),
        ProviderSpec("apprise", "Apprise", Channel.CHAT, AppriseSettings, frozenset({"urls"})),
        ProviderSpec("fcm", "Firebase Cloud Messaging", Channel.PUSH, FcmSettings, frozenset({"service_account"})),
        ProviderSpec("apns", "Apple Push Notification service", Channel.PUSH, ApnsSettings, frozenset({"private_key"})),
        ProviderSpec("expo", "Expo", Channel.PUSH, ExpoSettings, frozenset({"access_token"})),
        ProviderSpec("webpush", "Web Push", Channel.PUSH, WebPushSettings, frozenset({"vapid_private_key"})),
        ProviderSpec("in-app", "In-app inbox", Channel.IN_APP, InAppSettings),
    )
}
