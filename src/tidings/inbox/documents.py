"""Persistence of in-app messages and of the per-subscriber event log that live clients resume from."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from tidings.core.clock import utcnow


class Action(BaseModel):
    label: str
    url: str | None = None
    completed_at: datetime | None = None


_VISIBLE = [
    ("environment_id", ASCENDING),
    ("subscriber_id", ASCENDING),
    ("archived", ASCENDING),
    ("snoozed", ASCENDING),
]


class InboxMessage(Document):
    environment_id: PydanticObjectId
    subscriber_id: str
    notification_id: PydanticObjectId
    transaction_id: str
    workflow_id: str
    step_id: str
    subject: str | None = None
    body: str
    avatar: str | None = None
    redirect_url: str | None = None
    primary_action: Action | None = None
    secondary_action: Action | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    # State as flags (what the feed and counts filter on, by equality, so each is one index range) and as times.
    read: bool = False
    seen: bool = False
    archived: bool = False
    snoozed: bool = False  # cleared by the scheduler once `snoozed_until` passed (inbox.state.wake_snoozed)
    read_at: datetime | None = None
    seen_at: datetime | None = None
    archived_at: datetime | None = None
    snoozed_until: datetime | None = None
    expires_at: datetime | None = None  # the environment's messages retention (environments.retention)
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "inbox_messages"
        indexes: ClassVar[list[IndexModel]] = [
            # One message per notification step: a redelivered in_app job finds it instead of writing twice.
            IndexModel([("notification_id", ASCENDING), ("step_id", ASCENDING)], unique=True),
            IndexModel([("environment_id", ASCENDING), ("subscriber_id", ASCENDING), ("_id", DESCENDING)]),
            # The default feed (not archived, not snoozed) newest first, and its unread and unseen counts.
            IndexModel([*_VISIBLE, ("_id", DESCENDING)]),
            IndexModel([*_VISIBLE, ("read", ASCENDING)]),
            IndexModel([*_VISIBLE, ("seen", ASCENDING)]),
            IndexModel([("snoozed", ASCENDING), ("snoozed_until", ASCENDING)]),
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
        ]


class EventType(StrEnum):
    RECEIVED = "received"
    UPDATED = "updated"
    DELETED = "deleted"


class InboxEvent(Document):
    """Everything a subscriber's live clients are told, numbered by `seq`, so a client resumes after its last one.

    `seq` is dense (1, 2, 3… per subscriber, no holes): an event is written as "the highest seq + 1" and the unique
    index refuses a concurrent writer, which retries. So when a client has seen seq N, every event up to N is
    already readable, and "everything after N" is one range query.
    """

    environment_id: PydanticObjectId
    subscriber_id: str
    seq: int
    type: EventType
    message_id: PydanticObjectId
    # The messages retention; a subscriber's newest event has none, so its `seq` never restarts (inbox.log).
    expires_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "inbox_events"
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("environment_id", ASCENDING), ("subscriber_id", ASCENDING), ("seq", ASCENDING)], unique=True),
            # A redelivered in_app job finds the "received" event its first run wrote (or learns it is missing).
            IndexModel(
                [("message_id", ASCENDING)],
                unique=True,
                name="one_received_event_per_message",
                partialFilterExpression={"type": EventType.RECEIVED.value},
            ),
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
        ]
