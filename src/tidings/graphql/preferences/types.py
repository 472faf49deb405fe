"""GraphQL types of the preferences area."""

from __future__ import annotations

import strawberry

from tidings.graphql.channels import Channel
from tidings.preferences.merge import Reason

strawberry.enum(Reason, name="PreferenceReason", description="Why a channel is on or off for a subscriber.")


@strawberry.type(description="Whether a channel delivers, and which rule decided it.")
class EffectiveChannelPreference:
    channel: Channel
    enabled: bool
    reason: Reason


@strawberry.type(description="A subscriber's effective preferences for one workflow.")
class EffectiveWorkflowPreference:
    workflow_id: str
    workflow_name: str
    critical: bool
    read_only: bool
    channels: list[EffectiveChannelPreference]


@strawberry.type(description="A channel the subscriber turned on or off.")
class ChannelChoice:
    channel: Channel
    enabled: bool


@strawberry.type(description="What a subscriber chose, globally (`workflowId` null) or for one workflow.")
class SubscriberPreferenceChoices:
    subscriber_id: str
    workflow_id: str | None
    channels: list[ChannelChoice]
    enabled: bool = strawberry.field(
        description="False: the subscriber turned everything here off (every channel, whatever `channels` says); "
        "`channels` are kept and apply again once it is turned back on."
    )
