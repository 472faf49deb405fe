"""Novu's provider ids for push and chat, and a subscriber's endpoints as Novu's channel settings."""

from __future__ import annotations

from typing import Any

from beanie import PydanticObjectId

from tidings.core.channels import Channel
from tidings.core.errors import ValidationError
from tidings.core.validation import field_path, validated
from tidings.integrations.service import first_active_integration, integrations_by_identifier
from tidings.rest.bodies import ChannelSettings
from tidings.subscribers.commands import ChatEndpointInput, PushEndpointInput
from tidings.subscribers.documents import ChatEndpoint, PushEndpoint, Subscriber

# Novu's provider ids with a counterpart here, and ours for each. Novu names the Slack incoming webhook and the
# Slack app alike; a generic chat webhook is Novu's `chat-webhook`.
PROVIDERS: dict[str, tuple[Channel, tuple[str, ...]]] = {
    "slack": (Channel.CHAT, ("slack-webhook", "slack-api")),
    "discord": (Channel.CHAT, ("discord",)),
    "msteams": (Channel.CHAT, ("teams",)),
    "telegram": (Channel.CHAT, ("telegram",)),
    "chat-webhook": (Channel.CHAT, ("webhook",)),
    "fcm": (Channel.PUSH, ("fcm",)),
    "apns": (Channel.PUSH, ("apns",)),
    "expo": (Channel.PUSH, ("expo",)),
}
_NOVU_ID = {ours: novu for novu, (_, providers) in PROVIDERS.items() for ours in providers}


class MissingIntegrationError(ValidationError):
    """The environment has no active integration of the Novu provider named."""


def provider(provider_id: str, prefix: str = "") -> tuple[Channel, tuple[str, ...]]:
    """The channel of a Novu provider id and our providers for it."""
    if provider_id not in PROVIDERS:
        message = f"providerId must be one of {', '.join(sorted(PROVIDERS))}"
        raise ValidationError(message, field=field_path(("providerId",), prefix))
    return PROVIDERS[provider_id]


async def novu_endpoint(
    environment_id: PydanticObjectId, settings: ChannelSettings, prefix: str = ""
) -> PushEndpointInput | ChatEndpointInput:
    """Novu's credentials for a provider as our endpoint, for the integration named by `integrationIdentifier` or
    else the one of that provider a send would use first. Fields are named under `prefix`."""
    channel, ours = provider(settings.provider_id, prefix)
    if settings.integration_identifier is not None:
        found = await integrations_by_identifier(environment_id, [settings.integration_identifier])
        integration = found.get(settings.integration_identifier)
    else:
        integration = await first_active_integration(environment_id, ours)
    if integration is None or integration.provider_id not in ours:
        raise MissingIntegrationError(
            f"this environment has no active {settings.provider_id} integration",
            field=field_path(("providerId",), prefix),
        )
    sent = settings.credentials
    where = field_path(("credentials",), prefix)
    if channel is Channel.PUSH:
        push = {"integration_identifier": integration.identifier, "device_tokens": sent.device_tokens or []}
        return validated(PushEndpointInput, push, prefix=where)
    chat = {
        "integration_identifier": integration.identifier,
        "webhook_url": sent.webhook_url,
        "channel_id": sent.channel,
    }
    return validated(ChatEndpointInput, chat, prefix=where)


async def channel_settings(environment_id: PydanticObjectId, subscriber: Subscriber) -> list[dict[str, Any]]:
    """The subscriber's endpoints as Novu's ChannelSettingsDto; those of integrations without a Novu provider id
    (Web Push, Apprise) are left out."""
    endpoints: list[PushEndpoint | ChatEndpoint] = [*subscriber.push, *subscriber.chat]
    if not endpoints:
        return []
    found = await integrations_by_identifier(environment_id, {one.integration_identifier for one in endpoints})
    channels = []
    for endpoint in endpoints:
        integration = found.get(endpoint.integration_identifier)
        if integration is None or integration.provider_id not in _NOVU_ID:
            continue
        if isinstance(endpoint, PushEndpoint):
            credentials: dict[str, Any] = {"deviceTokens": endpoint.device_tokens}
        else:
            sent = {"webhookUrl": endpoint.webhook_url, "channel": endpoint.channel_id}
            credentials = {key: value for key, value in sent.items() if value is not None}
        channels.append(
            {
                "providerId": _NOVU_ID[integration.provider_id],
                "integrationIdentifier": integration.identifier,
                "credentials": credentials,
                "_integrationId": str(integration.id),
            }
        )
    return channels
