"""Mutations of the topics area."""

from __future__ import annotations

import strawberry

from tidings.graphql.context import Info
from tidings.graphql.permissions import require_environment_id
from tidings.graphql.topics.inputs import CreateTopicInput, TopicSubscribersInput
from tidings.graphql.topics.mappers import topic_to_graphql
from tidings.graphql.topics.types import AddTopicSubscribersResult, RemoveTopicSubscribersResult, Topic
from tidings.topics import service


@strawberry.type
class TopicMutations:
    @strawberry.mutation(description="Create a topic; ALREADY_EXISTS if the key is taken.")
    async def create_topic(self, info: Info, input: CreateTopicInput) -> Topic:
        return topic_to_graphql(await service.create_topic(await require_environment_id(info), input.key, input.name))

    @strawberry.mutation(description="Change a topic's name (its key never changes).")
    async def rename_topic(self, info: Info, key: str, name: str) -> Topic:
        return topic_to_graphql(await service.rename_topic(await require_environment_id(info), key, name))

    @strawberry.mutation(description="Delete a topic and its memberships (not the subscribers).")
    async def delete_topic(self, info: Info, key: str) -> bool:
        await service.delete_topic(await require_environment_id(info), key)
        return True

    @strawberry.mutation(description="Add existing subscribers to a topic; unknown ids are reported, not created.")
    async def add_topic_subscribers(
        self, info: Info, key: str, input: TopicSubscribersInput
    ) -> AddTopicSubscribersResult:
        environment_id = await require_environment_id(info)
        change = await service.add_subscribers(environment_id, key, input.subscriber_ids, info.context.limits)
        return AddTopicSubscribersResult(
            added=change.changed, already_members=change.unchanged, not_found=change.not_found
        )

    @strawberry.mutation(description="Remove subscribers from a topic.")
    async def remove_topic_subscribers(
        self, info: Info, key: str, input: TopicSubscribersInput
    ) -> RemoveTopicSubscribersResult:
        environment_id = await require_environment_id(info)
        change = await service.remove_subscribers(environment_id, key, input.subscriber_ids, info.context.limits)
        return RemoveTopicSubscribersResult(removed=change.changed, not_members=change.not_found)
