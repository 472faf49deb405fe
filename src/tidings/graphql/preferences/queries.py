"""Queries of the preferences area."""

from __future__ import annotations

import strawberry

from tidings.graphql.context import Info
from tidings.graphql.permissions import require_environment_id
from tidings.graphql.preferences.mappers import choices_to_graphql, effective_to_graphql
from tidings.graphql.preferences.types import EffectiveWorkflowPreference, SubscriberPreferenceChoices
from tidings.preferences.service import effective_preferences, get_global_preference


@strawberry.type
class PreferenceQueries:
    @strawberry.field(
        description="What applies to the subscriber for every workflow (or one), per channel, with the reason."
    )
    async def subscriber_preferences(
        self, info: Info, subscriber_id: str, workflow_id: str | None = None
    ) -> list[EffectiveWorkflowPreference]:
        environment_id = await require_environment_id(info)
        found = await effective_preferences(environment_id, subscriber_id, workflow_id)
        return [effective_to_graphql(effective) for effective in found]

    @strawberry.field(description="The subscriber's own global choices (channels it never chose are absent).")
    async def subscriber_global_preferences(self, info: Info, subscriber_id: str) -> SubscriberPreferenceChoices:
        environment_id = await require_environment_id(info)
        return choices_to_graphql(await get_global_preference(environment_id, subscriber_id))
