"""Mutations of the subscribers area."""

from __future__ import annotations

import strawberry

from tidings.engine.erasure import erase_subscriber
from tidings.graphql.context import Info
from tidings.graphql.permissions import require_environment_id
from tidings.graphql.subscribers.inputs import (
    BulkUpsertSubscribersInput,
    SubscriberFieldsInput,
    SubscriberInput,
    to_fields,
    to_upsert,
)
from tidings.graphql.subscribers.mappers import subscriber_to_graphql
from tidings.graphql.subscribers.types import (
    BulkUpsertSubscribersResult,
    Subscriber,
    SubscriberErasure,
    UpsertSubscriberResult,
)
from tidings.subscribers import service


@strawberry.type
class SubscriberMutations:
    @strawberry.mutation(description="Create a subscriber; ALREADY_EXISTS if the subscriberId is taken.")
    async def create_subscriber(self, info: Info, input: SubscriberInput) -> Subscriber:
        environment_id = await require_environment_id(info)
        created = await service.create_subscriber(environment_id, to_upsert(input), info.context.limits)
        return subscriber_to_graphql(created)

    @strawberry.mutation(description="Create the subscriber, or apply the given fields to it.")
    async def upsert_subscriber(self, info: Info, input: SubscriberInput) -> UpsertSubscriberResult:
        environment_id = await require_environment_id(info)
        subscriber, created = await service.upsert_subscriber(
            environment_id,
            to_upsert(input),
            info.context.limits,
        )
        return UpsertSubscriberResult(subscriber=subscriber_to_graphql(subscriber), created=created)

    @strawberry.mutation(description="Upsert many subscribers at once; nothing is written if any item is invalid.")
    async def bulk_upsert_subscribers(
        self, info: Info, input: BulkUpsertSubscribersInput
    ) -> BulkUpsertSubscribersResult:
        environment_id = await require_environment_id(info)
        service.check_bulk_size(len(input.subscribers), info.context.limits)
        commands = [to_upsert(item, f"input.subscribers.{index}") for index, item in enumerate(input.subscribers)]
        result = await service.bulk_upsert_subscribers(environment_id, commands, info.context.limits)
        return BulkUpsertSubscribersResult(created=result.created, updated=result.updated)

    @strawberry.mutation(description="Change some fields of a subscriber; NOT_FOUND if it does not exist.")
    async def update_subscriber(self, info: Info, subscriber_id: str, input: SubscriberFieldsInput) -> Subscriber:
        environment_id = await require_environment_id(info)
        updated = await service.update_subscriber(
            environment_id,
            subscriber_id,
            to_fields(input),
            info.context.limits,
        )
        return subscriber_to_graphql(updated)

    @strawberry.mutation(description="Delete a subscriber with its topic memberships and preferences.")
    async def delete_subscriber(self, info: Info, subscriber_id: str) -> bool:
        environment_id = await require_environment_id(info)
        await service.delete_subscriber(environment_id, subscriber_id)
        return True

    @strawberry.mutation(
        description="Erase a subscriber (GDPR): the subscriber with every notification, job, inbox message and event, "
        "digest, throttle window, preference and topic membership of theirs, and the triggers that were for them "
        "alone. Their parked jobs never run. Run it again if it failed midway: it finishes what is left. "
        "NOT_FOUND when nothing of theirs exists."
    )
    async def erase_subscriber(self, info: Info, subscriber_id: str) -> SubscriberErasure:
        environment_id = await require_environment_id(info)
        erased = await erase_subscriber(info.context.hub.redis, environment_id, subscriber_id)
        return SubscriberErasure(**{name: getattr(erased, name) for name in erased.__slots__})
