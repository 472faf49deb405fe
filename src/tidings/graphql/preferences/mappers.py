"""Domain → GraphQL types for the preferences area."""

from __future__ import annotations

from tidings.graphql.preferences.types import (
    ChannelChoice,
    EffectiveChannelPreference,
    EffectiveWorkflowPreference,
    SubscriberPreferenceChoices,
)
from tidings.preferences.documents import SubscriberPreference
from tidings.preferences.service import EffectivePreference


def effective_to_graphql(effective: EffectivePreference) -> EffectiveWorkflowPreference:
    workflow = effective.workflow
    return EffectiveWorkflowPreference(
        workflow_id=workflow.workflow_id,
        workflow_name=workflow.name,
        critical=workflow.critical,
        read_only=workflow.preferences.read_only,
        channels=[
            EffectiveChannelPreference(channel=channel, enabled=decision.enabled, reason=decision.reason)
            for channel, decision in effective.channels.items()
        ],
    )


def choices_to_graphql(preference: SubscriberPreference) -> SubscriberPreferenceChoices:
    return SubscriberPreferenceChoices(
        subscriber_id=preference.subscriber_id,
        workflow_id=preference.workflow_id,
        channels=[ChannelChoice(channel=channel, enabled=enabled) for channel, enabled in preference.channels.items()],
        enabled=preference.enabled,
    )
