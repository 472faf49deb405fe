"""What a subscriber does to its messages (read, archive, snooze, actions, delete), logged and announced.

Every change that took effect appends one event per message to the log and rings the subscriber's doorbell, so
the subscriber's other devices see it; a change that had nothing to do (already read) logs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from beanie import PydanticObjectId
from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ReturnDocument

from tidings.core.clock import utcnow
from tidings.core.errors import NotFoundError, ValidationError
from tidings.core.queue import TaskQueue
from tidings.inbox.documents import EventType, InboxMessage
from tidings.inbox.events import Publisher, ring
from tidings.inbox.feed import InboxFilter, message_query
from tidings.inbox.log import append_events
from tidings.webhooks.events import WebhookEventType
from tidings.webhooks.service import emit_many

MAX_SNOOZE = timedelta(days=90)
# Bulk changes work in batches so one "mark all read" over a huge inbox holds no more than this in memory.
_BULK_BATCH = 500


class ActionKind(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


@dataclass(frozen=True, slots=True)
class Owner:
    """The subscriber whose inbox is changed; every query is scoped by it."""

    environment_id: PydanticObjectId
    subscriber_id: str

    def key(self) -> dict[str, Any]:
        return {"environment_id": self.environment_id, "subscriber_id": self.subscriber_id}


def parse_message_id(value: str, field: str = "id") -> PydanticObjectId:
    try:
        return PydanticObjectId(ObjectId(value))
    except (InvalidId, TypeError):
        raise NotFoundError(f"no notification {value!r}", field=field) from None


async def _announce(owner: Owner, entries: Sequence[tuple[EventType, PydanticObjectId]], publisher: Publisher) -> None:
    seq = await append_events(owner.environment_id, owner.subscriber_id, entries)
    if seq is not None:
        await ring(publisher, owner.environment_id, owner.subscriber_id, seq)


def _webhook_data(owner: Owner, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": str(row["_id"]),
        "subscriberId": owner.subscriber_id,
        "workflowId": row.get("workflow_id"),
        "transactionId": row.get("transaction_id"),
        "channel": "in_app",
    }


async def _tell_endpoints(
    owner: Owner, webhook: WebhookEventType | None, rows: Sequence[dict[str, Any]], queue: TaskQueue | None
) -> None:
    """Outbound webhooks (message.read/seen/archived); a queue outage leaves the deliveries to the sweep."""
    if webhook is None or queue is None or not rows:
        return
    await emit_many(owner.environment_id, webhook.value, [_webhook_data(owner, row) for row in rows], queue)


async def _change(
    owner: Owner,
    message_id: str,
    publisher: Publisher,
    *,
    when: dict[str, Any],
    update: dict[str, Any],
    webhook: WebhookEventType | None = None,
    queue: TaskQueue | None = None,
) -> InboxMessage:
    """Apply `update` if the message matches `when`; otherwise it is already in that state (or absent: NOT_FOUND)."""
    oid = parse_message_id(message_id)
    collection = InboxMessage.get_pymongo_collection()
    raw = await collection.find_one_and_update(
        {"_id": oid, **owner.key(), **when}, update, return_document=ReturnDocument.AFTER
    )
    if raw is None:
        current = await InboxMessage.find_one({"_id": oid, **owner.key()})
        if current is None:
            raise NotFoundError(f"no notification {message_id!r}", field="id")
        return current
    await _announce(owner, [(EventType.UPDATED, oid)], publisher)
    await _tell_endpoints(owner, webhook, [raw], queue)
    changed: InboxMessage = InboxMessage.model_validate(raw)
    return changed


async def mark_read(
    owner: Owner, message_id: str, publisher: Publisher, queue: TaskQueue | None = None
) -> InboxMessage:
    now = utcnow()
    # Reading implies seeing; a message seen earlier keeps its first seen time.
    await InboxMessage.get_pymongo_collection().update_one(
        {"_id": parse_message_id(message_id), **owner.key(), "seen": False}, {"$set": {"seen": True, "seen_at": now}}
    )
    return await _change(
        owner,
        message_id,
        publisher,
        when={"read": False},
        update={"$set": {"read": True, "read_at": now}},
        webhook=WebhookEventType.MESSAGE_READ,
        queue=queue,
    )


async def mark_unread(owner: Owner, message_id: str, publisher: Publisher) -> InboxMessage:
    return await _change(
        owner, message_id, publisher, when={"read": True}, update={"$set": {"read": False, "read_at": None}}
    )


async def archive(owner: Owner, message_id: str, publisher: Publisher, queue: TaskQueue | None = None) -> InboxMessage:
    return await _change(
        owner,
        message_id,
        publisher,
        when={"archived": False},
        update={"$set": {"archived": True, "archived_at": utcnow()}},
        webhook=WebhookEventType.MESSAGE_ARCHIVED,
        queue=queue,
    )


async def unarchive(owner: Owner, message_id: str, publisher: Publisher) -> InboxMessage:
    return await _change(
        owner, message_id, publisher, when={"archived": True}, update={"$set": {"archived": False, "archived_at": None}}
    )


async def snooze(owner: Owner, message_id: str, until: datetime, publisher: Publisher) -> InboxMessage:
    now = utcnow()
    if until.tzinfo is None:
        raise ValidationError("until needs a time zone (e.g. 2026-12-01T09:00:00Z)", field="until")
    if not now < until <= now + MAX_SNOOZE:
        raise ValidationError(f"until must be in the future and at most {MAX_SNOOZE.days} days away", field="until")
    return await _change(
        owner,
        message_id,
        publisher,
        when={"snoozed_until": {"$ne": until}},
        update={"$set": {"snoozed": True, "snoozed_until": until}},
    )


async def unsnooze(owner: Owner, message_id: str, publisher: Publisher) -> InboxMessage:
    return await _change(
        owner, message_id, publisher, when={"snoozed": True}, update={"$set": {"snoozed": False, "snoozed_until": None}}
    )


async def set_action(
    owner: Owner, message_id: str, kind: ActionKind, completed: bool, publisher: Publisher
) -> InboxMessage:
    path = f"{kind.value}_action"
    done = f"{path}.completed_at"
    oid = parse_message_id(message_id)
    current = await InboxMessage.find_one({"_id": oid, **owner.key()})
    if current is None:
        raise NotFoundError(f"no notification {message_id!r}", field="id")
    if getattr(current, path) is None:
        raise ValidationError(f"this notification has no {kind.value} action", field="action")
    when = {done: None} if completed else {done: {"$ne": None}}
    return await _change(
        owner, message_id, publisher, when=when, update={"$set": {done: utcnow() if completed else None}}
    )


async def delete(owner: Owner, message_id: str, publisher: Publisher) -> PydanticObjectId:
    oid = parse_message_id(message_id)
    result = await InboxMessage.get_pymongo_collection().delete_one({"_id": oid, **owner.key()})
    if result.deleted_count == 0:
        raise NotFoundError(f"no notification {message_id!r}", field="id")
    await _announce(owner, [(EventType.DELETED, oid)], publisher)
    return oid


async def _bulk(
    owner: Owner,
    query: dict[str, Any],
    update: dict[str, Any],
    publisher: Publisher,
    *,
    webhook: WebhookEventType | None = None,
    queue: TaskQueue | None = None,
) -> int:
    """Apply `update` to every message matching `query`, a batch at a time; returns how many changed."""
    collection = InboxMessage.get_pymongo_collection()
    changed = 0
    while True:
        found = collection.find(query, projection={"_id": 1, "workflow_id": 1, "transaction_id": 1})
        rows = [row async for row in found.limit(_BULK_BATCH)]
        if not rows:
            return changed
        ids = [row["_id"] for row in rows]
        # The batch's ids plus the query again: a message another device changed meanwhile is not counted twice.
        await collection.update_many({**query, "_id": {"$in": ids}}, update)
        changed += len(ids)
        await _announce(owner, [(EventType.UPDATED, PydanticObjectId(oid)) for oid in ids], publisher)
        await _tell_endpoints(owner, webhook, rows, queue)


async def mark_seen(
    owner: Owner, message_ids: Sequence[str], publisher: Publisher, maximum: int, queue: TaskQueue | None = None
) -> int:
    if len(message_ids) > maximum:
        raise ValidationError(f"at most {maximum} ids per call", field="ids")
    ids = [parse_message_id(value, field=f"ids.{i}") for i, value in enumerate(message_ids)]
    query = {**owner.key(), "_id": {"$in": ids}, "seen": False}
    update = {"$set": {"seen": True, "seen_at": utcnow()}}
    return await _bulk(owner, query, update, publisher, webhook=WebhookEventType.MESSAGE_SEEN, queue=queue)


async def mark_all_read(owner: Owner, tags: Sequence[str], publisher: Publisher, queue: TaskQueue | None = None) -> int:
    base = message_query(
        owner.environment_id, owner.subscriber_id, InboxFilter(archived=None, snoozed=None, tags=tuple(tags))
    )
    now = utcnow()
    await InboxMessage.get_pymongo_collection().update_many(
        {**base, "seen": False, "read": False}, {"$set": {"seen": True, "seen_at": now}}
    )
    update = {"$set": {"read": True, "read_at": now}}
    unread = {**base, "read": False}
    return await _bulk(owner, unread, update, publisher, webhook=WebhookEventType.MESSAGE_READ, queue=queue)


async def archive_all_read(
    owner: Owner, tags: Sequence[str], publisher: Publisher, queue: TaskQueue | None = None
) -> int:
    base = message_query(
        owner.environment_id, owner.subscriber_id, InboxFilter(archived=False, snoozed=None, tags=tuple(tags))
    )
    update = {"$set": {"archived": True, "archived_at": utcnow()}}
    read = {**base, "read": True}
    return await _bulk(owner, read, update, publisher, webhook=WebhookEventType.MESSAGE_ARCHIVED, queue=queue)


async def wake_snoozed(publisher: Publisher, batch: int, now: datetime | None = None) -> int:
    """Bring back messages whose snooze ran out (the scheduler calls this every tick); each owner's live clients
    get the change as an event. Returns how many woke."""
    now = now or utcnow()
    collection = InboxMessage.get_pymongo_collection()
    due = {"snoozed": True, "snoozed_until": {"$lte": now}}
    woken = 0
    async for row in collection.find(due, projection={"environment_id": 1, "subscriber_id": 1}).limit(batch):
        result = await collection.update_one(
            {"_id": row["_id"], **due}, {"$set": {"snoozed": False, "snoozed_until": None}}
        )
        if result.modified_count:
            owner = Owner(PydanticObjectId(row["environment_id"]), row["subscriber_id"])
            await _announce(owner, [(EventType.UPDATED, PydanticObjectId(row["_id"]))], publisher)
            woken += 1
    return woken
