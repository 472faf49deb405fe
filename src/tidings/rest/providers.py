"""Novu's provider ids for push and chat, and a subscriber's endpoints as Novu's channel settings."""

from __future__ import annotations

from typing import Any

from beanie import PydanticObjectId

from tidings.core.channels import Channel
from tidings.integrations.service import integrations_by_identifier
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
