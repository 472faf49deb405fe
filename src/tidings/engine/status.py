"""Applying providers' status callbacks: the job that sent the message records what happened to it, and a dead
address (hard bounce, unknown number) is disabled on the subscriber until it changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tidings.core.channels import Channel
from tidings.core.queue import TaskQueue
from tidings.engine.delivery import DeliveryStatus, StatusUpdate
from tidings.integrations.documents import Integration
from tidings.notifications.documents import Job
from tidings.subscribers.documents import Subscriber
from tidings.webhooks.events import WebhookEventType
from tidings.webhooks.service import emit

# A message's event history is short (delivered, opened, clicked…); a hostile sender could repeat events forever.
MAX_EVENTS_PER_JOB = 50


@dataclass(frozen=True, slots=True)
class AppliedStatus:
    matched: int  # events about a message Tidings sent
    unknown: int  # events about messages it has no record of (sent elsewhere, or older than the records)
    disabled_endpoints: int


async def _disable_endpoint(job: Job, update: StatusUpdate, channel: Channel) -> bool:
    field, current = {Channel.EMAIL: ("bounced_email", "email"), Channel.SMS: ("undeliverable_phone", "phone")}.get(
        channel, (None, None)
    )
    if field is None or current is None:
        return False
    subscriber = await Subscriber.find_one({"environment_id": job.environment_id, "subscriber_id": job.subscriber_id})
    address = update.recipient or (getattr(subscriber, current) if subscriber else None)
    if subscriber is None or not address:
        return False
    result = await Subscriber.get_pymongo_collection().update_one({"_id": subscriber.id}, {"$set": {field: address}})
    return result.modified_count > 0


_EVENTS = {
    DeliveryStatus.DELIVERED: WebhookEventType.MESSAGE_DELIVERED,
    DeliveryStatus.BOUNCED: WebhookEventType.MESSAGE_BOUNCED,
    DeliveryStatus.FAILED: WebhookEventType.MESSAGE_FAILED,
}


async def apply_status_updates(
    integration: Integration, updates: Sequence[StatusUpdate], queue: TaskQueue | None = None
) -> AppliedStatus:
    jobs = Job.get_pymongo_collection()
    matched = unknown = disabled = 0
    for update in updates:
        event = {"status": update.status.value, "at": update.occurred_at, "reason": update.reason}
        raw = await jobs.find_one_and_update(
            {"environment_id": integration.environment_id, "sent_message_id": update.provider_message_id},
            {
                "$set": {"delivery_status": update.status.value},
                "$push": {"delivery_events": {"$each": [event], "$slice": -MAX_EVENTS_PER_JOB}},
            },
        )
        if raw is None:
            unknown += 1
            continue
        matched += 1
        event_type = _EVENTS.get(update.status)
        if queue is not None and event_type is not None:
            data = {
                "transactionId": raw["transaction_id"],
                "workflowId": raw["workflow_id"],
                "stepId": raw["step_id"],
                "subscriberId": raw["subscriber_id"],
                "integration": integration.identifier,
                "messageId": update.provider_message_id,
                "status": update.status.value,
                "reason": update.reason,
            }
            await emit(integration.environment_id, event_type.value, data, queue)
        if update.hard and await _disable_endpoint(Job.model_validate(raw), update, integration.channel):
            disabled += 1
    return AppliedStatus(matched=matched, unknown=unknown, disabled_endpoints=disabled)
