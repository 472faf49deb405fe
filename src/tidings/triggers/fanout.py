"""Fan-out: turn one trigger into one notification and one first job per recipient, in bulk, resumably.

Topics are walked by keyset pages of memberships; the position is saved after each page, and every write is
idempotent (unique notification per transaction and subscriber, unique job per notification step), so a fan-out
that died half-way is simply run again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from beanie import PydanticObjectId
from structlog.contextvars import bound_contextvars

from tidings.core.clock import utcnow
from tidings.core.inserts import refused_as_duplicates
from tidings.core.queue import TaskQueue
from tidings.notifications.documents import (
    Job,
    JobStatus,
    Notification,
    NotificationStatus,
    Trigger,
    TriggerStatus,
)
from tidings.notifications.service import insert_new, wake
from tidings.subscribers.documents import Subscriber
from tidings.subscribers.service import existing_subscriber_ids
from tidings.topics.documents import TopicSubscription

logger = logging.getLogger(__name__)

# Small enough that each bulk write stays well inside the MongoDB operation timeout on a busy server.
PAGE_SIZE = 200


async def process_trigger(trigger_id: str, queue: TaskQueue) -> None:
    trigger = await Trigger.get(PydanticObjectId(trigger_id))
    if trigger is None or trigger.status != TriggerStatus.ACCEPTED:
        return  # processed or canceled already: a redelivery does nothing
    # Every line logged during the fan-out names the trigger (docs/operations.md, "Logs").
    with bound_contextvars(
        triggerId=trigger_id, transactionId=trigger.transaction_id, environmentId=str(trigger.environment_id)
    ):
        await _fan_out(trigger, queue)


async def _fan_out(trigger: Trigger, queue: TaskQueue) -> None:
    direct = [recipient.subscriber_id for recipient in trigger.to if recipient.subscriber_id is not None]
    for start in range(0, len(direct), PAGE_SIZE):
        page = direct[start : start + PAGE_SIZE]
        known = await existing_subscriber_ids(trigger.environment_id, page)
        await _create(trigger, [one for one in page if one in known and one != trigger.actor], queue)
    for recipient in trigger.to:
        if recipient.topic_key is not None:
            # The actor triggered it: they don't need to hear about their own action.
            left_out = {*recipient.exclude, *([trigger.actor] if trigger.actor else [])}
            await _fan_out_topic(trigger, recipient.topic_key, left_out, queue)
    if any(recipient.all_subscribers for recipient in trigger.to):
        await _fan_out_everyone(trigger, queue)
    count = await Notification.find({"trigger_id": trigger.id}).count()
    await Trigger.get_pymongo_collection().update_one(
        {"_id": trigger.id, "status": TriggerStatus.ACCEPTED},
        {"$set": {"status": TriggerStatus.PROCESSED, "notification_count": count, "updated_at": utcnow()}},
    )
    logger.info("trigger fanned out", extra={"notifications": count})


async def _fan_out_topic(trigger: Trigger, topic_key: str, left_out: set[str], queue: TaskQueue) -> None:
    after = trigger.topic_cursors.get(topic_key)
    while True:
        query: dict[str, object] = {"environment_id": trigger.environment_id, "topic_key": topic_key}
        if after is not None:
            query["_id"] = {"$gt": after}
        members = await TopicSubscription.find(query).sort("+_id").limit(PAGE_SIZE).to_list()
        if not members:
            return
        await _create(trigger, [m.subscriber_id for m in members if m.subscriber_id not in left_out], queue)
        after = members[-1].id
        assert after is not None
        await Trigger.get_pymongo_collection().update_one(
            {"_id": trigger.id}, {"$set": {f"topic_cursors.{topic_key}": after, "updated_at": utcnow()}}
        )
        if len(members) < PAGE_SIZE:
            return


async def _fan_out_everyone(trigger: Trigger, queue: TaskQueue) -> None:
    """A broadcast: every subscriber of the environment, in `_id` pages, the position saved after each page."""
    after = trigger.broadcast_cursor
    while True:
        query: dict[str, object] = {"environment_id": trigger.environment_id}
        if after is not None:
            query["_id"] = {"$gt": after}
        page = (
            await Subscriber.get_pymongo_collection()
            .find(query, {"subscriber_id": 1})
            .sort("_id", 1)
            .limit(PAGE_SIZE)
            .to_list()
        )
        if not page:
            return
        await _create(trigger, [row["subscriber_id"] for row in page if row["subscriber_id"] != trigger.actor], queue)
        after = page[-1]["_id"]
        await Trigger.get_pymongo_collection().update_one(
            {"_id": trigger.id}, {"$set": {"broadcast_cursor": after, "updated_at": utcnow()}}
        )
        if len(page) < PAGE_SIZE:
            return


async def _create(trigger: Trigger, subscriber_ids: Sequence[str], queue: TaskQueue) -> None:
    """Notifications for these subscribers (skipping any this trigger already has), and their first jobs."""
    if not subscriber_ids:
        return
    assert trigger.id is not None
    notifications = [
        Notification(
            id=PydanticObjectId(),
            environment_id=trigger.environment_id,
            trigger_id=trigger.id,
            transaction_id=trigger.transaction_id,
            workflow_id=trigger.workflow.workflow_id,
            subscriber_id=subscriber_id,
            status=NotificationStatus.PENDING if trigger.workflow.steps else NotificationStatus.COMPLETED,
        )
        for subscriber_id in dict.fromkeys(subscriber_ids)
    ]
    refused = await refused_as_duplicates(
        Notification.get_pymongo_collection().insert_many(
            [notification.model_dump(by_alias=True) for notification in notifications], ordered=False
        )
    )
    if not trigger.workflow.steps:
        return
    stored = [notification for index, notification in enumerate(notifications) if index not in refused]
    if refused:
        # An interrupted earlier run wrote these (the unique index refused ours): theirs still need a first job,
        # which the unique job index makes idempotent. Only those are read back — on a first run, none.
        stored += await Notification.find(
            {
                "trigger_id": trigger.id,
                "subscriber_id": {"$in": [notifications[index].subscriber_id for index in refused]},
            }
        ).to_list()
    first = trigger.workflow.steps[0]
    now = utcnow()
    jobs = [
        Job(
            id=PydanticObjectId(),
            environment_id=trigger.environment_id,
            trigger_id=trigger.id,
            notification_id=notification.id,
            transaction_id=trigger.transaction_id,
            workflow_id=trigger.workflow.workflow_id,
            subscriber_id=notification.subscriber_id,
            step_index=0,
            step_id=first["step_id"],
            step_type=first["type"],
            status=JobStatus.QUEUED,
            queued_at=now,
        )
        for notification in stored
        if notification.id is not None
    ]
    await wake(queue, await insert_new(jobs))
