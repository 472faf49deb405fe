"""GraphQL types of the inbox area."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.scalars import JSON


@strawberry.type(description="A subscriber session: the token the browser sends, and where the inbox stands.")
class InboxSession:
    token: str = strawberry.field(
        description="Send as `Authorization: Bearer <token>`, or as `{token}` in the websocket's connection_init."
    )
    expires_at: datetime
    subscriber_id: str
    seq: int = strawberry.field(description="The newest event's sequence: subscribe with `after` set to it.")
    counts: InboxCounts


@strawberry.type(description="Exact counts of messages matching a filter.")
class InboxCounts:
    total: int
    unread: int
    unseen: int


@strawberry.type(description="A button on an in-app message; completing it is recorded on the message.")
class InboxAction:
    label: str
    url: str | None
    is_completed: bool
    completed_at: datetime | None


@strawberry.enum(description="Which of a message's two actions.")
class InboxActionKind(Enum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


@strawberry.type(description="An in-app message as its subscriber sees it.")
class InboxNotification:
    id: strawberry.ID
    workflow_id: str
    transaction_id: str
    subject: str | None
    body: str
    avatar: str | None
    redirect_url: str | None = strawberry.field(description="Only http(s) URLs and app paths are ever stored here.")
    primary_action: InboxAction | None
    secondary_action: InboxAction | None
    data: JSON
    tags: list[str]
    created_at: datetime
    is_read: bool
    read_at: datetime | None
    is_seen: bool
    seen_at: datetime | None
    is_archived: bool
    archived_at: datetime | None
    is_snoozed: bool
    snoozed_until: datetime | None


@strawberry.type(description="How many messages a bulk change touched.")
class InboxBulkResult:
    updated: int


@strawberry.type(description="A new message arrived.")
class NotificationReceived:
    seq: int
    cursor: str = strawberry.field(description="Pass as `after` when reconnecting to resume right after this event.")
    # Never null here; nullable only so that it selects together with NotificationUpdated.notification in one query
    # (GraphQL refuses fields of one name with different nullability across a union's members).
    notification: InboxNotification | None = strawberry.field(description="The new message (never null).")


@strawberry.type(description="A message changed (read, seen, archived, snoozed, action) or was deleted, anywhere.")
class NotificationUpdated:
    seq: int
    cursor: str
    notification_id: strawberry.ID
    notification: InboxNotification | None = strawberry.field(description="Its current state; null once deleted.")
    deleted: bool


@strawberry.type(description="Exact counts of the default feed after the events up to `seq`.")
class CountsChanged:
    seq: int
    cursor: str
    counts: InboxCounts


InboxEvent = Annotated[NotificationReceived | NotificationUpdated | CountsChanged, strawberry.union("InboxEvent")]
