"""Domain → GraphQL types for the inbox area."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from tidings.graphql.inbox.types import (
    CountsChanged,
    InboxAction,
    InboxCounts,
    InboxNotification,
    InboxSession,
    NotificationReceived,
    NotificationUpdated,
)
from tidings.inbox import documents, feed
from tidings.inbox.documents import EventType
from tidings.inbox.sessions import Grant
from tidings.inbox.stream import CountsEvent, MessageEvent, StreamEvent


def counts_to_graphql(counts: feed.InboxCounts) -> InboxCounts:
    return InboxCounts(total=counts.total, unread=counts.unread, unseen=counts.unseen)


def session_to_graphql(grant: Grant) -> InboxSession:
    return InboxSession(
        token=grant.token,
        expires_at=grant.expires_at,
        subscriber_id=grant.owner.subscriber_id,
        seq=grant.seq,
        counts=counts_to_graphql(grant.counts),
    )


def _action(action: documents.Action | None) -> InboxAction | None:
    if action is None:
        return None
    return InboxAction(
        label=action.label,
        url=action.url,
        is_completed=action.completed_at is not None,
        completed_at=action.completed_at,
    )


def notification_to_graphql(message: documents.InboxMessage) -> InboxNotification:
    return InboxNotification(
        id=strawberry.ID(str(message.id)),
        workflow_id=message.workflow_id,
        transaction_id=message.transaction_id,
        subject=message.subject,
        body=message.body,
        avatar=message.avatar,
        redirect_url=message.redirect_url,
        primary_action=_action(message.primary_action),
        secondary_action=_action(message.secondary_action),
        data=JSON(message.data),
        tags=message.tags,
        created_at=message.created_at,
        is_read=message.read,
        read_at=message.read_at,
        is_seen=message.seen,
        seen_at=message.seen_at,
        is_archived=message.archived,
        archived_at=message.archived_at,
        is_snoozed=message.snoozed,
        snoozed_until=message.snoozed_until,
    )


def event_to_graphql(event: StreamEvent) -> NotificationReceived | NotificationUpdated | CountsChanged:
    cursor = str(event.seq)
    if isinstance(event, CountsEvent):
        return CountsChanged(seq=event.seq, cursor=cursor, counts=counts_to_graphql(event.counts))
    assert isinstance(event, MessageEvent)
    if event.type == EventType.RECEIVED and event.message is not None:
        return NotificationReceived(seq=event.seq, cursor=cursor, notification=notification_to_graphql(event.message))
    return NotificationUpdated(
        seq=event.seq,
        cursor=cursor,
        notification_id=strawberry.ID(str(event.message_id)),
        notification=None if event.message is None else notification_to_graphql(event.message),
        deleted=event.message is None,
    )
