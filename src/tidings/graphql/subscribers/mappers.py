"""Documents → GraphQL types for the subscribers area."""

from __future__ import annotations

from strawberry.scalars import JSON

from tidings.graphql.subscribers.types import ChatEndpoint, PushEndpoint, Subscriber
from tidings.subscribers import documents


def subscriber_to_graphql(subscriber: documents.Subscriber) -> Subscriber:
    return Subscriber(
        subscriber_id=subscriber.subscriber_id,
        email=subscriber.email,
        phone=subscriber.phone,
        first_name=subscriber.first_name,
        last_name=subscriber.last_name,
        avatar=subscriber.avatar,
        locale=subscriber.locale,
        timezone=subscriber.timezone,
        data=JSON(subscriber.data),
        push=[
            PushEndpoint(integration_identifier=push.integration_identifier, device_tokens=push.device_tokens)
            for push in subscriber.push
        ],
        chat=[
            ChatEndpoint(
                integration_identifier=chat.integration_identifier,
                webhook_url=chat.webhook_url,
                channel_id=chat.channel_id,
            )
            for chat in subscriber.chat
        ],
        environment_id=subscriber.environment_id,
        marked_online=subscriber.is_online,
        last_online_at=subscriber.last_online_at,
        created_at=subscriber.created_at,
        updated_at=subscriber.updated_at,
    )
