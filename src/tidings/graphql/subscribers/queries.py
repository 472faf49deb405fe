"""Queries of the subscribers area."""

from __future__ import annotations

import strawberry

from tidings.core.pagination import PageRequest
from tidings.graphql.context import Info
from tidings.graphql.pagination import Connection, to_connection
from tidings.graphql.permissions import require_environment_id
from tidings.graphql.subscribers.mappers import subscriber_to_graphql
from tidings.graphql.subscribers.types import Subscriber
from tidings.subscribers.service import get_subscriber, list_subscribers


@strawberry.type
class SubscriberQueries:
    @strawberry.field(description="One subscriber by your `subscriberId`.")
    async def subscriber(self, info: Info, subscriber_id: str) -> Subscriber:
        environment_id = await require_environment_id(info)
        return subscriber_to_graphql(await get_subscriber(environment_id, subscriber_id))

    @strawberry.field(description="Subscribers in creation order; `search` matches the start of subscriberId or email.")
    async def subscribers(
        self, info: Info, first: int | None = None, after: str | None = None, search: str | None = None
    ) -> Connection[Subscriber]:
        environment_id = await require_environment_id(info)
        limits = info.context.limits
        request = PageRequest.parse(first, after, default=limits.page_size_default, maximum=limits.page_size_max)
        page = await list_subscribers(environment_id, request, search)
        return to_connection(page, subscriber_to_graphql)
