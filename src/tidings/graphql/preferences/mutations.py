"""Mutations of the preferences area."""

from __future__ import annotations

import strawberry

from tidings.graphql.context import Info
from tidings.graphql.permissions import require_environment_id
from tidings.graphql.preferences.inputs import ChannelChoiceInput
from tidings.graphql.preferences.mappers import choices_to_graphql
from tidings.graphql.preferences.types import SubscriberPreferenceChoices
from tidings.preferences.service import set_subscriber_preference


@strawberry.type
class PreferenceMutations:
    @strawberry.mutation(
        description="Record a subscriber's channel choices, globally (no `workflowId`) or for one workflow. "
        "Choices on readOnly workflows, and choices turning off a channel that a critical workflow enables, are "
        "kept but do not apply (see subscriberPreferences). `enabled: false` turns every channel off there while "
        "keeping the choices; `enabled: true` applies them again."
    )
    async def set_subscriber_preferences(
        self,
        info: Info,
        subscriber_id: str,
        channels: list[ChannelChoiceInput],
        workflow_id: str | None = None,
        enabled: bool | None = None,
    ) -> SubscriberPreferenceChoices:
        environment_id = await require_environment_id(info)
        choices = {choice.channel: choice.enabled for choice in channels}
        stored = await set_subscriber_preference(environment_id, subscriber_id, workflow_id, choices, enabled)
        return choices_to_graphql(stored)
