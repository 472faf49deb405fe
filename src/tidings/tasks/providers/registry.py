"""Provider ids to provider classes, and the `Sender` the engine calls: settings decrypted, instances reused."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pydantic

from tidings.core.crypto import Cipher, DecryptionError
from tidings.engine.delivery import (
    DeliveryError,
    FailureKind,
    InboundWebhook,
    OutboundMessage,
    SendResult,
    StatusCallbacksUnsupportedError,
    StatusUpdate,
    WebhookRejectedError,
)
from tidings.integrations.credentials import decrypted_settings
from tidings.integrations.documents import Integration
from tidings.integrations.providers import PROVIDERS
from tidings.tasks.providers.base import Provider
from tidings.tasks.providers.chat.apprise import AppriseProvider
from tidings.tasks.providers.chat.discord import DiscordProvider
from tidings.tasks.providers.chat.slack import SlackWebhookProvider
from tidings.tasks.providers.chat.slack_api import SlackApiProvider
from tidings.tasks.providers.chat.teams import TeamsProvider
from tidings.tasks.providers.chat.telegram import TelegramProvider
from tidings.tasks.providers.chat.webhook import WebhookProvider
from tidings.tasks.providers.email.mailgun import MailgunProvider
from tidings.tasks.providers.email.postmark import PostmarkProvider
from tidings.tasks.providers.email.resend import ResendProvider
from tidings.tasks.providers.email.sendgrid import SendGridProvider
from tidings.tasks.providers.email.smtp import SmtpProvider
from tidings.tasks.providers.push.apns import ApnsProvider
from tidings.tasks.providers.push.expo import ExpoProvider
from tidings.tasks.providers.push.fcm import FcmProvider
from tidings.tasks.providers.push.webpush import WebPushProvider
from tidings.tasks.providers.sms.twilio import TwilioProvider
from tidings.tasks.providers.sms.vonage import VonageProvider
from tidings.tasks.providers.sms.webhook import SmsWebhookProvider

# `in-app` has no provider: the engine writes the inbox message itself.
PROVIDERS_BY_ID: dict[str, type[Provider[Any]]] = {
    "smtp": SmtpProvider,
    "webhook": WebhookProvider,
    "slack-webhook": SlackWebhookProvider,
    "sendgrid": SendGridProvider,
    "postmark": PostmarkProvider,
    "resend": ResendProvider,
    "mailgun": MailgunProvider,
    "twilio": TwilioProvider,
    "vonage": VonageProvider,
    "sms-webhook": SmsWebhookProvider,
    "discord": DiscordProvider,
    "teams": TeamsProvider,
    "telegram": TelegramProvider,
    "slack-api": SlackApiProvider,
    "apprise": AppriseProvider,
    "fcm": FcmProvider,
    "apns": ApnsProvider,
    "expo": ExpoProvider,
    "webpush": WebPushProvider,
}

# One instance (and its open connections) per integration; the least recently used beyond this are closed.
DEFAULT_MAX_PROVIDERS = 256


@dataclass(slots=True)
class _Entry:
    provider: Provider[Any]
    in_flight: int = 0
    evicted: bool = False


class ProviderSender:
    """`tidings.engine.delivery.Sender` over the providers of `PROVIDERS_BY_ID`."""

    def __init__(
        self, cipher: Cipher, *, allow_private_networks: bool, max_providers: int = DEFAULT_MAX_PROVIDERS
    ) -> None:
        self._cipher = cipher
        self._allow_private_networks = allow_private_networks
        self._max_providers = max_providers
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()

    async def send(self, integration: Integration, message: OutboundMessage) -> SendResult:
        provider_class = PROVIDERS_BY_ID.get(integration.provider_id)
        spec = PROVIDERS.get(integration.provider_id)
        detail = {"integration": integration.identifier}
        if provider_class is None or spec is None:
            raise DeliveryError(
                f"integration {integration.identifier} uses provider {integration.provider_id!r}, which cannot send",
                kind=FailureKind.PERMANENT,
                detail=detail,
            )
        if spec.channel != message.channel:
            raise DeliveryError(
                f"integration {integration.identifier} sends {spec.channel}, not {message.channel}",
                kind=FailureKind.PERMANENT,
                detail=detail,
            )
        try:
            settings = decrypted_settings(integration, self._cipher)
        except DecryptionError:
            raise DeliveryError(
                f"credentials of integration {integration.identifier} do not decrypt (was the secret key changed?)",
                kind=FailureKind.PERMANENT,
                detail=detail,
            ) from None
        except pydantic.ValidationError as exc:
            # Only the names of the settings: the errors' inputs may be secrets.
            names = sorted({".".join(str(part) for part in error["loc"]) for error in exc.errors()})
            raise DeliveryError(
                f"settings of integration {integration.identifier} are not valid: {', '.join(names)}",
                kind=FailureKind.PERMANENT,
                detail=detail,
            ) from None
        entry = await self._entry(integration, provider_class)
        entry.in_flight += 1
        try:
            return await entry.provider.send(settings, message)
        finally:
            entry.in_flight -= 1
            if entry.evicted and entry.in_flight == 0:
                await entry.provider.aclose()

    async def parse_status(self, integration: Integration, webhook: InboundWebhook) -> list[StatusUpdate]:
        """The verified status events of a provider callback for this integration (see `Provider.
        parse_status_webhook`); `StatusCallbacksUnsupportedError` when its provider sends none."""
        provider_class = PROVIDERS_BY_ID.get(integration.provider_id)
        if provider_class is None:
            raise StatusCallbacksUnsupportedError(f"provider {integration.provider_id!r} sends no status callbacks")
        try:
            settings = decrypted_settings(integration, self._cipher)
        except (DecryptionError, pydantic.ValidationError):
            # A callback can't be verified without the integration's secrets: refuse it rather than trust it.
            raise WebhookRejectedError("the integration's settings cannot be read") from None
        entry = await self._entry(integration, provider_class)
        return entry.provider.parse_status_webhook(settings, webhook)

    async def _entry(self, integration: Integration, provider_class: type[Provider[Any]]) -> _Entry:
        key = (str(integration.id), integration.provider_id)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            return entry
        entry = _Entry(
            provider_class(identifier=integration.identifier, allow_private_networks=self._allow_private_networks)
        )
        self._entries[key] = entry
        while len(self._entries) > self._max_providers:
            _, oldest = self._entries.popitem(last=False)
            # A send still using it closes it when it finishes.
            oldest.evicted = True
            if oldest.in_flight == 0:
                await oldest.provider.aclose()
        return entry

    def cached(self) -> int:
        """How many provider instances are open (for tests and metrics)."""
        return len(self._entries)

    async def aclose(self) -> None:
        entries = list(self._entries.values())
        self._entries.clear()
        for entry in entries:
            entry.evicted = True
            await entry.provider.aclose()
