"""GraphQL types of the subscribers area."""

from __future__ import annotations

from datetime import datetime

import strawberry
from beanie import PydanticObjectId
from strawberry.scalars import JSON

from tidings.graphql.context import Info
from tidings.inbox.presence import is_online


@strawberry.type(description="Device tokens for one push integration.")
class PushEndpoint:
    integration_identifier: str
    device_tokens: list[str]


@strawberry.type(description="Where chat messages go through one chat integration.")
class ChatEndpoint:
    integration_identifier: str
    webhook_url: str | None
    channel_id: str | None


@strawberry.type(description="Someone notifications are sent to, identified by your own `subscriberId`.")
class Subscriber:
    subscriber_id: str
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    avatar: str | None
    locale: str | None
    timezone: str | None
    data: JSON
    push: list[PushEndpoint]
    chat: list[ChatEndpoint]
    environment_id: strawberry.Private[PydanticObjectId]
    marked_online: strawberry.Private[bool]
    last_online_at: datetime | None = strawberry.field(description="When it last connected or disconnected.")
    created_at: datetime
    updated_at: datetime

    @strawberry.field(
        description="Whether an inbox websocket of this subscriber is open on any API process, or your backend marked "
        "it online (the REST `PATCH /v1/subscribers/{id}/online-status`)."
    )
    async def is_online(self, info: Info) -> bool:
        return await is_online(info.context.hub.redis, self.environment_id, self.subscriber_id, self.marked_online)


@strawberry.type(description="The outcome of `upsertSubscriber`.")
class UpsertSubscriberResult:
    subscriber: Subscriber
    created: bool


@strawberry.type(description="The outcome of `bulkUpsertSubscribers`: subscriber ids created and updated.")
class BulkUpsertSubscribersResult:
    created: list[str]
    updated: list[str]


@strawberry.type(description="What `eraseSubscriber` deleted: how many records of each kind.")
class SubscriberErasure:
    subscribers: int
    notifications: int
    jobs: int
    triggers: int = strawberry.field(description="Triggers that were for this subscriber alone.")
    digests: int
    throttle_windows: int
    inbox_messages: int
    inbox_events: int
    preferences: int
    topic_subscriptions: int
