"""Reading a subscriber's inbox: the filtered feed, newest first, and exact counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId

from tidings.core.clock import utcnow
from tidings.core.errors import ValidationError
from tidings.core.pagination import Page, PageRequest, paginate
from tidings.inbox.documents import InboxMessage

# Counting costs a few queries per filter; a badge UI asks for a handful.
MAX_COUNT_FILTERS = 10


@dataclass(frozen=True, slots=True)
class InboxFilter:
    """None means "either". By default the feed hides archived and snoozed messages, as inboxes do."""

    read: bool | None = None
    seen: bool | None = None
    archived: bool | None = False
    snoozed: bool | None = False
    tags: tuple[str, ...] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class InboxCounts:
    total: int
    unread: int
    unseen: int


def _is_set(field: str, value: bool) -> dict[str, Any]:
    return {field: {"$ne": None}} if value else {field: None}


def message_query(
    environment_id: PydanticObjectId, subscriber_id: str, inbox_filter: InboxFilter, now: datetime
) -> dict[str, Any]:
    query: dict[str, Any] = {"environment_id": environment_id, "subscriber_id": subscriber_id}
    if inbox_filter.read is not None:
        query |= _is_set("read_at", inbox_filter.read)
    if inbox_filter.seen is not None:
        query |= _is_set("seen_at", inbox_filter.seen)
    if inbox_filter.archived is not None:
        query |= _is_set("archived_at", inbox_filter.archived)
    if inbox_filter.snoozed is not None:
        # A snooze that ran out counts as not snoozed even before the scheduler clears it.
        query["snoozed_until"] = {"$gt": now} if inbox_filter.snoozed else {"$not": {"$gt": now}}
    if inbox_filter.tags:
        query["tags"] = {"$in": list(inbox_filter.tags)}
    created: dict[str, datetime] = {}
    if inbox_filter.created_after is not None:
        created["$gte"] = inbox_filter.created_after
    if inbox_filter.created_before is not None:
        created["$lt"] = inbox_filter.created_before
    if created:
        query["created_at"] = created
    return query


async def inbox_page(
    environment_id: PydanticObjectId, subscriber_id: str, inbox_filter: InboxFilter, request: PageRequest
) -> Page[InboxMessage]:
    query = message_query(environment_id, subscriber_id, inbox_filter, utcnow())
    return await paginate(InboxMessage.find(query), request, descending=True)


async def inbox_counts(
    environment_id: PydanticObjectId, subscriber_id: str, inbox_filter: InboxFilter = InboxFilter()
) -> InboxCounts:
    collection = InboxMessage.get_pymongo_collection()
    query = message_query(environment_id, subscriber_id, inbox_filter, utcnow())
    # The filter's own read/seen choice wins: "unread among read messages" is 0, not a contradiction to resolve.
    unread = query if inbox_filter.read is not None else query | {"read_at": None}
    unseen = query if inbox_filter.seen is not None else query | {"seen_at": None}
    total = await collection.count_documents(query)
    return InboxCounts(
        total=total,
        unread=0 if inbox_filter.read else await collection.count_documents(unread),
        unseen=0 if inbox_filter.seen else await collection.count_documents(unseen),
    )


async def counts_for(
    environment_id: PydanticObjectId, subscriber_id: str, filters: Sequence[InboxFilter]
) -> list[InboxCounts]:
    if not 1 <= len(filters) <= MAX_COUNT_FILTERS:
        raise ValidationError(f"send 1 to {MAX_COUNT_FILTERS} filters", field="filters")
    return [await inbox_counts(environment_id, subscriber_id, item) for item in filters]
