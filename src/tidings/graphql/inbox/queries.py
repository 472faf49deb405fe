"""Queries of the inbox area (subscriber token)."""

from __future__ import annotations

import strawberry

from tidings.core.pagination import PageRequest
from tidings.graphql.context import Info
from tidings.graphql.inbox.inputs import InboxFilterInput
from tidings.graphql.inbox.mappers import counts_to_graphql, notification_to_graphql
from tidings.graphql.inbox.types import InboxCounts, InboxNotification
from tidings.graphql.pagination import Connection, to_connection
from tidings.graphql.permissions import require_subscriber
from tidings.graphql.preferences.mappers import effective_to_graphql
from tidings.graphql.preferences.types import EffectiveWorkflowPreference
from tidings.inbox.feed import MAX_COUNT_FILTERS, InboxFilter, counts_for, inbox_page
from tidings.preferences.service import effective_preferences


@strawberry.type
class InboxQueries:
    @strawberry.field(description="The subscriber's messages, newest first (default: not archived, not snoozed).")
    async def inbox_notifications(
        self, info: Info, filter: InboxFilterInput | None = None, first: int | None = None, after: str | None = None
    ) -> Connection[InboxNotification]:
        owner = require_subscriber(info)
        limits = info.context.limits
        request = PageRequest.parse(first, after, default=limits.page_size_default, maximum=limits.page_size_max)
        inbox_filter = filter.to_domain() if filter is not None else InboxFilter()
        page = await inbox_page(owner.environment_id, owner.subscriber_id, inbox_filter, request)
        return to_connection(page, notification_to_graphql)

    @strawberry.field(description=f"Exact counts for each filter, in order (at most {MAX_COUNT_FILTERS}).")
    async def inbox_counts(self, info: Info, filters: list[InboxFilterInput]) -> list[InboxCounts]:
        owner = require_subscriber(info)
        counts = await counts_for(
            owner.environment_id,
            owner.subscriber_id,
            [item.to_domain(f"filters.{index}") for index, item in enumerate(filters)],
        )
        return [counts_to_graphql(item) for item in counts]

    @strawberry.field(description="What applies to this subscriber per workflow and channel, with the reason.")
    async def inbox_preferences(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[EffectiveWorkflowPreference]:
        owner = require_subscriber(info)
        limits = info.context.limits
        request = PageRequest.parse(first, after, default=limits.page_size_default, maximum=limits.page_size_max)
        page = await effective_preferences(owner.environment_id, owner.subscriber_id, request)
        return to_connection(page, effective_to_graphql)
