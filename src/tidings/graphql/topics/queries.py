"""Queries of the topics area."""

from __future__ import annotations

import strawberry

from tidings.core.pagination import PageRequest
from tidings.graphql.context import Info
from tidings.graphql.pagination import Connection, to_connection
from tidings.graphql.permissions import require_environment_id
from tidings.graphql.subscribers.mappers import subscriber_to_graphql
from tidings.graphql.subscribers.types import Subscriber
from tidings.graphql.topics.mappers import topic_to_graphql
from tidings.graphql.topics.types import Topic
from tidings.topics import service


def _page(info: Info, first: int | None, after: str | None) -> PageRequest:
    limits = info.context.limits
    return PageRequest.parse(first, after, default=limits.page_size_default, maximum=limits.page_size_max)


@strawberry.type
class TopicQueries:
    @strawberry.field(description="One topic by key.")
    async def topic(self, info: Info, key: str) -> Topic:
        return topic_to_graphql(await service.get_topic(await require_environment_id(info), key))

    @strawberry.field(description="Topics in creation order.")
    async def topics(self, info: Info, first: int | None = None, after: str | None = None) -> Connection[Topic]:
        environment_id = await require_environment_id(info)
        return to_connection(await service.list_topics(environment_id, _page(info, first, after)), topic_to_graphql)

    @strawberry.field(description="A topic's subscribers in the order they joined.")
    async def topic_subscribers(
        self, info: Info, key: str, first: int | None = None, after: str | None = None
    ) -> Connection[Subscriber]:
        environment_id = await require_environment_id(info)
        page = await service.list_topic_subscribers(environment_id, key, _page(info, first, after))
        return to_connection(page, subscriber_to_graphql)

    @strawberry.field(description="The topics a subscriber belongs to.")
    async def subscriber_topics(
        self, info: Info, subscriber_id: str, first: int | None = None, after: str | None = None
    ) -> Connection[Topic]:
        environment_id = await require_environment_id(info)
        page = await service.list_subscriber_topics(environment_id, subscriber_id, _page(info, first, after))
        return to_connection(page, topic_to_graphql)
