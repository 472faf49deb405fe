"""Erasing one subscriber's activity: its notifications with their jobs, its digests and throttle windows, and the
triggers that were for it alone (a trigger with other recipients only loses the subscriber from `to`, and one that names
it as its actor or in a topic's `exclude` loses it there).

Batch by batch, jobs go first (a deleted job is never claimed, so nothing parked of theirs sends afterwards), then
the triggers of the batch, then its notifications: an erasure interrupted anywhere is finished by running it again.
"""

from __future__ import annotations

from typing import Any

from beanie import PydanticObjectId

from tidings.notifications.documents import Digest, Job, Notification, ThrottleWindow, Trigger, TriggerStatus

ERASE_BATCH = 500


async def _erase_triggers(trigger_ids: set[PydanticObjectId], subscriber_id: str) -> int:
    """Delete each finished trigger no other subscriber's notification refers to; returns how many were deleted.

    A trigger still fanning out (ACCEPTED) is kept whatever it has written so far: its topics' members may not have
    their notifications yet. It only loses the subscriber from `to`, so a resumed fan-out does not notify them again.
    """
    triggers = Trigger.get_pymongo_collection()
    notifications = Notification.get_pymongo_collection()
    deleted = 0
    for trigger_id in trigger_ids:
        # Two rows of the (trigger_id, subscriber_id) index tell whether anyone else was notified.
        rows = notifications.find({"trigger_id": trigger_id}, {"subscriber_id": 1}).limit(2)
        others = any([row["subscriber_id"] != subscriber_id async for row in rows])
        if not others:
            finished = {"_id": trigger_id, "status": {"$in": [TriggerStatus.PROCESSED, TriggerStatus.CANCELED]}}
            if (await triggers.delete_one(finished)).deleted_count:
                deleted += 1
                continue
        await triggers.update_one({"_id": trigger_id}, {"$pull": {"to": {"subscriber_id": subscriber_id}}})
    return deleted


async def _forget_in_triggers(environment_id: PydanticObjectId, subscriber_id: str) -> None:
    """Triggers that name the subscriber without having notified them — as their actor, or left out of a topic with
    `exclude` — keep the trigger but lose the id."""
    triggers = Trigger.get_pymongo_collection()
    await triggers.update_many({"environment_id": environment_id, "actor": subscriber_id}, {"$set": {"actor": None}})
    async for row in triggers.find({"environment_id": environment_id, "to.exclude": subscriber_id}, {"to": 1}):
        to = [{**one, "exclude": [x for x in one.get("exclude", []) if x != subscriber_id]} for one in row["to"]]
        await triggers.update_one({"_id": row["_id"]}, {"$set": {"to": to}})


async def erase_subscriber_activity(environment_id: PydanticObjectId, subscriber_id: str) -> dict[str, int]:
    scope: dict[str, Any] = {"environment_id": environment_id, "subscriber_id": subscriber_id}
    notifications = Notification.get_pymongo_collection()
    counts = {"notifications": 0, "jobs": 0, "triggers": 0}
    while True:
        rows = await notifications.find(scope, {"_id": 1, "trigger_id": 1}).sort("_id", 1).limit(ERASE_BATCH).to_list()
        if not rows:
            break
        ids = [row["_id"] for row in rows]
        counts["jobs"] += (
            await Job.get_pymongo_collection().delete_many({"notification_id": {"$in": ids}})
        ).deleted_count
        counts["triggers"] += await _erase_triggers({row["trigger_id"] for row in rows}, subscriber_id)
        counts["notifications"] += (await notifications.delete_many({"_id": {"$in": ids}})).deleted_count
    await _forget_in_triggers(environment_id, subscriber_id)
    counts["digests"] = (await Digest.get_pymongo_collection().delete_many(scope)).deleted_count
    counts["throttle_windows"] = (await ThrottleWindow.get_pymongo_collection().delete_many(scope)).deleted_count
    return counts
