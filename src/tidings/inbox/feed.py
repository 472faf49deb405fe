"""Reading a subscriber's inbox: the filtered feed, newest first, and exact counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from beanie import PydanticObjectId

from tidings.core.errors import ValidationError
from tidings.core.pagination import Page, PageRequest, paginate
from tidings.inbox.documents import InboxMessage

# Counting costs one aggregation per filter; a badge UI asks for a handful.
MAX_COUNT_FILTERS = 10


@dataclass(frozen=True, slots=True)
class InboxFilter:
    """None means "either". By default the feed hides archived and snoozed messages, as inboxes do; a snooze that
    ran out counts as snoozed until the scheduler's next tick wakes it (and tells live clients)."""

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


def message_query(environment_id: PydanticObjectId, subscriber_id: str, inbox_filter: InboxFilter) -> dict[str, Any]:
    """Equality on the state flags: each common filter is one range of one index (see InboxMessage's indexes)."""
    query: dict[str, Any] = {"environment_id": environment_id, "subscriber_id": subscriber_id}
    for field in ("archived", "snoozed", "read", "seen"):
        value = getattr(inbox_filter, field)
        if value is not None:
            query[field] = value
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
    query = message_query(environment_id, subscriber_id, inbox_filter)
    return await paginate(InboxMessage.find(query), request, descending=True)


async def inbox_counts(
    environment_id: PydanticObjectId, subscriber_id: str, inbox_filter: InboxFilter = InboxFilter()
) -> InboxCounts:
    """One aggregation for all three counts: a live stream asks after every batch, three counts were three round
    trips (docs/benchmarks.md)."""
    query = message_query(environment_id, subscriber_id, inbox_filter)
    group = {
        "_id": None,
        "total": {"$sum": 1},
        "unread": {"$sum": {"$cond": [{"$eq": ["$read", False]}, 1, 0]}},
        "unseen": {"$sum": {"$cond": [{"$eq": ["$seen", False]}, 1, 0]}},
    }
    cursor = await InboxMessage.get_pymongo_collection().aggregate([{"$match": query}, {"$group": group}])
    found = await cursor.to_list(1)
    total, unread, unseen = (found[0]["total"], found[0]["unread"], found[0]["unseen"]) if found else (0, 0, 0)
    # The filter's own read/seen choice decides: "unread among read messages" is 0, among unread ones the total.
    if inbox_filter.read is not None:
        unread = 0 if inbox_filter.read else total
    if inbox_filter.seen is not None:
        unseen = 0 if inbox_filter.seen else total
    return InboxCounts(total=total, unread=unread, unseen=unseen)


async def counts_for(
    environment_id: PydanticObjectId, subscriber_id: str, filters: Sequence[InboxFilter]
) -> list[InboxCounts]:
    if not 1 <= len(filters) <= MAX_COUNT_FILTERS:
        raise ValidationError(f"send 1 to {MAX_COUNT_FILTERS} filters", field="filters")
    return [await inbox_counts(environment_id, subscriber_id, item) for item in filters]
