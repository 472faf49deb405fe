"""Activity: read notifications, their jobs and execution details, scoped to one environment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId
from bson import ObjectId

from tidings.core.errors import NotFoundError
from tidings.core.pagination import Page, PageRequest, paginate
from tidings.notifications.documents import Job, Notification, NotificationStatus


@dataclass(frozen=True, slots=True)
class ActivityFilter:
    transaction_id: str | None = None
    subscriber_id: str | None = None
    workflow_id: str | None = None
    status: NotificationStatus | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


async def list_notifications(
    environment_id: PydanticObjectId, request: PageRequest, where: ActivityFilter
) -> Page[Notification]:
    equal = {
        "transaction_id": where.transaction_id,
        "subscriber_id": where.subscriber_id,
        "workflow_id": where.workflow_id,
        "status": where.status,
    }
    query: dict[str, Any] = {"environment_id": environment_id} | {k: v for k, v in equal.items() if v is not None}
    # Time bounds become `_id` bounds (an ObjectId starts with its creation second), so every filter stays on an
    # index that ends with `_id`.
    bounds: dict[str, ObjectId] = {}
    if where.created_after is not None:
        bounds["$gte"] = ObjectId.from_datetime(where.created_after)
    if where.created_before is not None:
        bounds["$lt"] = ObjectId.from_datetime(where.created_before)
    if bounds:
        query["_id"] = bounds
    return await paginate(Notification.find(query), request)


async def get_notification(environment_id: PydanticObjectId, notification_id: str) -> Notification:
    found = None
    if PydanticObjectId.is_valid(notification_id):
        found = await Notification.find_one(
            {"_id": PydanticObjectId(notification_id), "environment_id": environment_id}
        )
    if found is None:
        raise NotFoundError(f"notification {notification_id} not found", field="id")
    return found


async def jobs_of(notification_id: PydanticObjectId) -> list[Job]:
    return await Job.find({"notification_id": notification_id}).sort("+step_index").to_list()
