"""The retention sweep: delete what passed its `expires_at`, and empty execution details past `details_expire_at`.

MongoDB's TTL monitor does the deleting on its own (about once a minute; SecantusDB, the embedded server, too). This
sweep is the backstop for servers and set-ups where it does not run or falls behind (a MongoDB-wire server without
TTL support, a monitor disabled with `ttlMonitorEnabled=false`, a primary too busy to keep up). Each run takes at
most one batch per collection, oldest expiry first, by a range on the `expires_at` index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from beanie import Document

from tidings.core.clock import utcnow
from tidings.inbox.documents import InboxEvent, InboxMessage
from tidings.notifications.documents import OPEN_JOB_STATUSES, Digest, Job, JobStatus, Notification, Trigger
from tidings.webhooks.documents import WebhookDelivery

# Jobs get an expiry only when they finish; the sweep checks that too, so an open job is never deleted.
FINISHED_JOB_STATUSES = [status.value for status in JobStatus if status not in (*OPEN_JOB_STATUSES, JobStatus.RUNNING)]
_EXPIRING: tuple[type[Document], ...] = (InboxMessage, InboxEvent, Notification, Trigger, WebhookDelivery, Digest, Job)


@dataclass(slots=True)
class RetentionSweep:
    deleted: dict[str, int] = field(default_factory=dict)
    details_trimmed: int = 0
    backlog: bool = False  # a batch was full: more has expired than one run took


async def _expired_ids(model: type[Document], key: str, now: datetime, batch: int) -> list[Any]:
    rows = model.get_pymongo_collection().find({key: {"$lte": now}}, {"_id": 1}).sort(key, 1).limit(batch)
    return [row["_id"] async for row in rows]


async def sweep_expired(batch: int, now: datetime | None = None) -> RetentionSweep:
    now = now or utcnow()
    result = RetentionSweep()
    for model in _EXPIRING:
        ids = await _expired_ids(model, "expires_at", now, batch)
        result.backlog |= len(ids) >= batch
        query: dict[str, Any] = {"_id": {"$in": ids}, "expires_at": {"$lte": now}}
        if model is Job:
            query["status"] = {"$in": FINISHED_JOB_STATUSES}
        deleted = await model.get_pymongo_collection().delete_many(query) if ids else None
        result.deleted[model.get_collection_name()] = deleted.deleted_count if deleted else 0
    ids = await _expired_ids(Job, "details_expire_at", now, batch)
    result.backlog |= len(ids) >= batch
    if ids:
        trimmed = await Job.get_pymongo_collection().update_many(
            {"_id": {"$in": ids}, "details_expire_at": {"$lte": now}},
            {"$set": {"executions": []}, "$unset": {"details_expire_at": ""}},
        )
        result.details_trimmed = trimmed.modified_count
    return result
