"""Domain functions for preferences: store subscriber choices, and compute what applies, with the reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from beanie import PydanticObjectId
from pymongo import ReturnDocument

from tidings.core.channels import Channel
from tidings.core.clock import utcnow
from tidings.preferences.documents import SubscriberPreference
from tidings.preferences.merge import Decision, merge_channel
from tidings.subscribers.service import get_subscriber
from tidings.workflows.documents import Workflow
from tidings.workflows.service import get_workflow


@dataclass(frozen=True, slots=True)
class EffectivePreference:
    workflow: Workflow
    channels: dict[Channel, Decision]


async def set_subscriber_preference(
    environment_id: PydanticObjectId,
    subscriber_id: str,
    workflow_id: str | None,
    channels: Mapping[Channel, bool | None],
) -> SubscriberPreference:
    """Record the subscriber's choice per channel (`None` forgets a choice); `workflow_id=None` is the global row.

    Choices on `readOnly` or `critical` workflows are kept but do not apply; the effective view says why.
    """
    await get_subscriber(environment_id, subscriber_id)
    if workflow_id is not None:
        await get_workflow(environment_id, workflow_id)
    chosen = {f"channels.{channel.value}": value for channel, value in channels.items() if value is not None}
    forgotten = {f"channels.{channel.value}": "" for channel, value in channels.items() if value is None}
    update: dict[str, object] = {"$set": {**chosen, "updated_at": utcnow()}}
    if forgotten:
        update["$unset"] = forgotten
    raw = await SubscriberPreference.get_pymongo_collection().find_one_and_update(
        {"environment_id": environment_id, "subscriber_id": subscriber_id, "workflow_id": workflow_id},
        update,
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    stored: SubscriberPreference = SubscriberPreference.model_validate(raw)
    return stored


async def get_global_preference(environment_id: PydanticObjectId, subscriber_id: str) -> SubscriberPreference:
    await get_subscriber(environment_id, subscriber_id)
    found = await SubscriberPreference.find_one(
        {"environment_id": environment_id, "subscriber_id": subscriber_id, "workflow_id": None}
    )
    return found or SubscriberPreference(environment_id=environment_id, subscriber_id=subscriber_id)


def effective_channels(
    workflow: Workflow, subscriber_global: Mapping[Channel, bool], subscriber_workflow: Mapping[Channel, bool]
) -> dict[Channel, Decision]:
    return {
        channel: merge_channel(
            default=workflow.preferences.channels.get(channel, True),
            read_only=workflow.preferences.read_only,
            critical=workflow.critical,
            subscriber_global=subscriber_global.get(channel),
            subscriber_workflow=subscriber_workflow.get(channel),
        )
        for channel in Channel
    }


async def effective_preferences(
    environment_id: PydanticObjectId, subscriber_id: str, workflow_id: str | None = None
) -> list[EffectivePreference]:
    """Every workflow of the environment (or just `workflow_id`), each channel decided with its reason."""
    await get_subscriber(environment_id, subscriber_id)
    if workflow_id is not None:
        workflows = [await get_workflow(environment_id, workflow_id)]
    else:
        workflows = await Workflow.find({"environment_id": environment_id}).sort("+_id").to_list()
    rows = await SubscriberPreference.find({"environment_id": environment_id, "subscriber_id": subscriber_id}).to_list()
    by_workflow = {row.workflow_id: row.channels for row in rows}
    subscriber_global = by_workflow.get(None, {})
    return [
        EffectivePreference(
            workflow=workflow,
            channels=effective_channels(workflow, subscriber_global, by_workflow.get(workflow.workflow_id, {})),
        )
        for workflow in workflows
    ]
