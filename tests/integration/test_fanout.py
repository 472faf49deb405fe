"""Fan-out run directly on Beanie (no worker): a run after an interrupted one completes what that one left."""

from __future__ import annotations

from typing import Any

from beanie import PydanticObjectId
from pymongo import AsyncMongoClient

from tests.queues import RecordingQueue
from tidings.notifications.documents import (
    Job,
    Notification,
    Recipient,
    Trigger,
    TriggerStatus,
    WorkflowSnapshot,
)
from tidings.notifications.service import RUN_JOB_TASK
from tidings.topics.documents import TopicSubscription
from tidings.triggers.fanout import process_trigger

MEMBERS = [f"member-{index}" for index in range(5)]
STEP = {"step_id": "inbox", "type": "in_app"}


async def test_a_fan_out_run_again_gives_every_member_one_notification_and_one_first_job(
    database: AsyncMongoClient[dict[str, Any]],
) -> None:
    environment = PydanticObjectId()
    await TopicSubscription.insert_many(
        [TopicSubscription(environment_id=environment, topic_key="all", subscriber_id=one) for one in MEMBERS]
    )
    snapshot = WorkflowSnapshot(workflow_id="news", name="News", critical=False, read_only=False, steps=[STEP])
    trigger = Trigger(
        environment_id=environment, transaction_id="tx-1", workflow=snapshot, to=[Recipient(topic_key="all")]
    )
    await trigger.insert()
    assert trigger.id is not None
    # What an interrupted run left: notifications for two members, the first job of only one of them.
    earlier = [
        Notification(
            id=PydanticObjectId(),
            environment_id=environment,
            trigger_id=trigger.id,
            transaction_id="tx-1",
            workflow_id="news",
            subscriber_id=one,
        )
        for one in MEMBERS[:2]
    ]
    await Notification.insert_many(earlier)
    assert earlier[0].id is not None
    await Job(
        environment_id=environment,
        trigger_id=trigger.id,
        notification_id=earlier[0].id,
        transaction_id="tx-1",
        workflow_id="news",
        subscriber_id=MEMBERS[0],
        step_index=0,
        step_id="inbox",
        step_type="in_app",
    ).insert()

    queue = RecordingQueue()
    await process_trigger(str(trigger.id), queue)

    notifications = await Notification.find({"trigger_id": trigger.id}).to_list()
    assert sorted(one.subscriber_id for one in notifications) == MEMBERS
    jobs = await Job.find({"trigger_id": trigger.id}).to_list()
    by_subscriber = {one.subscriber_id: one.id for one in notifications}
    assert sorted((job.subscriber_id, job.notification_id) for job in jobs) == sorted(by_subscriber.items())
    woken = {args[0] for name, *args in queue.tasks if name == RUN_JOB_TASK}
    assert woken == {str(job.id) for job in jobs if job.subscriber_id != MEMBERS[0]}
    processed = await Trigger.get(trigger.id)
    assert processed is not None
    assert (processed.status, processed.notification_count) == (TriggerStatus.PROCESSED, 5)
