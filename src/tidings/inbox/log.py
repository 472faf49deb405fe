"""The per-subscriber event log: append with dense sequence numbers, read everything after a point."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

from beanie import PydanticObjectId, SortDirection
from pymongo.errors import BulkWriteError

from tidings.core.clock import utcnow
from tidings.core.errors import UnavailableError
from tidings.environments.retention import retention_for
from tidings.inbox.documents import EventType, InboxEvent

# Each retry follows another writer that took the same sequence numbers; a subscriber's events are rarely
# written by more than a handful of processes at once.
_APPEND_ATTEMPTS = 50
_RECEIVED_INDEX = "one_received_event_per_message"


def _key(environment_id: PydanticObjectId, subscriber_id: str) -> dict[str, Any]:
    return {"environment_id": environment_id, "subscriber_id": subscriber_id}


async def last_seq(environment_id: PydanticObjectId, subscriber_id: str) -> int:
    top = await InboxEvent.get_pymongo_collection().find_one(
        _key(environment_id, subscriber_id), sort=[("seq", -1)], projection={"seq": 1}
    )
    return int(top["seq"]) if top else 0


async def append_events(
    environment_id: PydanticObjectId, subscriber_id: str, entries: Sequence[tuple[EventType, PydanticObjectId]]
) -> int | None:
    """Log `entries` in order after the subscriber's newest event; returns the last seq written (None: nothing).

    A "received" entry whose event is already logged (a redelivered job) is dropped, not written twice.
    """
    collection = InboxEvent.get_pymongo_collection()
    remaining = list(entries)
    written: int | None = None
    retention = await retention_for(environment_id)
    for attempt in range(_APPEND_ATTEMPTS):
        if not remaining:
            return written
        start = await last_seq(environment_id, subscriber_id) + 1
        now = utcnow()
        expires_at = retention.messages_until(now)
        docs = [
            {**_key(environment_id, subscriber_id), "seq": start + i, "type": kind.value, "message_id": mid,
             "created_at": now, "expires_at": expires_at}
            for i, (kind, mid) in enumerate(remaining)
        ]  # fmt: skip
        # The newest event never expires: were they all deleted, `seq` would start again at 1 and a client that
        # resumes after an older, higher seq would miss the new events. It expires once a newer one exists.
        docs[-1]["expires_at"] = None
        try:
            await collection.insert_many(docs, ordered=True)
        except BulkWriteError as exc:
            inserted = int(exc.details.get("nInserted", 0))
            if inserted:
                written = start + inserted - 1
            error = exc.details["writeErrors"][0]
            failed_at = int(error.get("index", inserted))
            if _RECEIVED_INDEX in str(error.get("errmsg", "")) or "message_id" in str(error.get("keyPattern", {})):
                failed_at += 1  # already logged: skip that entry
            remaining = remaining[failed_at:]
            await asyncio.sleep(random.uniform(0, 0.001 * (attempt + 1)))  # noqa: S311 - jitter, not a secret
            continue
        if start > 1:
            await collection.update_one(
                {**_key(environment_id, subscriber_id), "seq": start - 1}, {"$set": {"expires_at": expires_at}}
            )
        return start + len(docs) - 1
    raise UnavailableError("too many concurrent writers to this subscriber's inbox; try again")


async def events_after(
    environment_id: PydanticObjectId, subscriber_id: str, after: int, limit: int
) -> list[InboxEvent]:
    return (
        await InboxEvent.find({**_key(environment_id, subscriber_id), "seq": {"$gt": after}})
        .sort(("seq", SortDirection.ASCENDING))
        .limit(limit)
        .to_list()
    )


async def received_logged(message_id: PydanticObjectId) -> bool:
    found = await InboxEvent.get_pymongo_collection().find_one(
        {"message_id": message_id, "type": EventType.RECEIVED.value}, projection={"_id": 1}
    )
    return found is not None
