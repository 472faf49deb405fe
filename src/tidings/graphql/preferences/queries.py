"""Queries of the preferences area."""

from __future__ import annotations

import strawberry

from tidings.core.pagination import PageRequest
from tidings.graphql.context import Info
from tidings.graphql.pagination import Connection, to_connection
from tidings.graphql.permissions import require_environment_id
from tidings.graphql.preferences.mappers import choices_to_graphql, effective_to_graphql
from tidings.graphql.preferences.types import EffectiveWorkflowPreference, SubscriberPreferenceChoices
from tidings.preferences.service import effective_preferences, get_global_preference


@strawberry.type
class PreferenceQueries:
    @strawberry.field(
        description="What applies to the subscriber for each workflow (or one), per channel, with the reason; "
        "workflows in creation order."
    )
    async def subscriber_preferences(
        self,
        info: Info,
        subscriber_id: str,
        workflow_id: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[EffectiveWorkflowPreference]:
        environment_id = await require_environment_id(info)
        limits = info.context.limits
        request = PageRequest.parse(first, after, default=limits.page_size_default, maximum=limits.page_size_max)
        page = await effective_preferences(environment_id, subscriber_id, request, workflow_id)
        return to_connection(page, effective_to_graphql)

    @strawberry.field(description="The subscriber's own global choices (channels it never chose are absent).")
    async def subscriber_global_preferences(self, info: Info, subscriber_id: str) -> SubscriberPreferenceChoices:
        environment_id = await require_environment_id(info)
        return choices_to_graphql(await get_global_preference(environment_id, subscriber_id))
