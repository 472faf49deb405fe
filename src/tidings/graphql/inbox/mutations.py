"""Mutations of the inbox area: the session (public) and the subscriber's changes (subscriber token)."""

from __future__ import annotations

from datetime import datetime, timedelta

import strawberry

from tidings.graphql.context import Info
from tidings.graphql.inbox.inputs import checked_tags
from tidings.graphql.inbox.mappers import notification_to_graphql, session_to_graphql
from tidings.graphql.inbox.types import InboxActionKind, InboxBulkResult, InboxNotification, InboxSession
from tidings.graphql.permissions import require_subscriber
from tidings.graphql.preferences.inputs import ChannelChoiceInput
from tidings.graphql.preferences.mappers import choices_to_graphql
from tidings.graphql.preferences.types import SubscriberPreferenceChoices
from tidings.inbox import state
from tidings.inbox.preferences import set_own_preferences
from tidings.inbox.sessions import open_session


@strawberry.type
class InboxMutations:
    @strawberry.mutation(
        description="Open a subscriber session from the browser: no API key, the applicationIdentifier is public. "
        "`subscriberHash` = hex HMAC-SHA256(secret API key, subscriberId), computed by your backend; required when "
        "the environment requires it (setInboxHmacRequired)."
    )
    async def inbox_session(
        self, info: Info, application_identifier: str, subscriber_id: str, subscriber_hash: str | None = None
    ) -> InboxSession:
        context = info.context
        grant = await open_session(
            application_identifier,
            subscriber_id,
            subscriber_hash,
            cipher=context.cipher,
            signer=context.inbox.signer,
            ttl=timedelta(seconds=context.inbox.session_ttl_seconds),
            limits=context.limits,
            limiter=context.limiter,
        )
        return session_to_graphql(grant)

    @strawberry.mutation(description="Mark a message read (and seen).")
    async def inbox_mark_read(self, info: Info, id: strawberry.ID) -> InboxNotification:
        owner = require_subscriber(info)
        return notification_to_graphql(await state.mark_read(owner, id, info.context.hub, info.context.queue))

    @strawberry.mutation(description="Mark a message unread.")
    async def inbox_mark_unread(self, info: Info, id: strawberry.ID) -> InboxNotification:
        return notification_to_graphql(await state.mark_unread(require_subscriber(info), id, info.context.hub))

    @strawberry.mutation(description="Mark messages seen (e.g. those shown when the inbox opened).")
    async def inbox_mark_seen(self, info: Info, ids: list[strawberry.ID]) -> InboxBulkResult:
        owner = require_subscriber(info)
        limit = info.context.limits.page_size_max
        updated = await state.mark_seen(owner, ids, info.context.hub, limit, info.context.queue)
        return InboxBulkResult(updated=updated)

    @strawberry.mutation(description="Archive a message.")
    async def inbox_archive(self, info: Info, id: strawberry.ID) -> InboxNotification:
        owner = require_subscriber(info)
        return notification_to_graphql(await state.archive(owner, id, info.context.hub, info.context.queue))

    @strawberry.mutation(description="Bring an archived message back.")
    async def inbox_unarchive(self, info: Info, id: strawberry.ID) -> InboxNotification:
        return notification_to_graphql(await state.unarchive(require_subscriber(info), id, info.context.hub))

    @strawberry.mutation(description="Hide a message until `until` (at most 90 days ahead).")
    async def inbox_snooze(self, info: Info, id: strawberry.ID, until: datetime) -> InboxNotification:
        return notification_to_graphql(await state.snooze(require_subscriber(info), id, until, info.context.hub))

    @strawberry.mutation(description="End a snooze now.")
    async def inbox_unsnooze(self, info: Info, id: strawberry.ID) -> InboxNotification:
        return notification_to_graphql(await state.unsnooze(require_subscriber(info), id, info.context.hub))

    @strawberry.mutation(description="Delete a message; returns its id.")
    async def inbox_delete(self, info: Info, id: strawberry.ID) -> strawberry.ID:
        return strawberry.ID(str(await state.delete(require_subscriber(info), id, info.context.hub)))

    @strawberry.mutation(description="Record that the subscriber completed a message's primary or secondary action.")
    async def inbox_complete_action(self, info: Info, id: strawberry.ID, action: InboxActionKind) -> InboxNotification:
        kind = state.ActionKind(action.value)
        return notification_to_graphql(
            await state.set_action(require_subscriber(info), id, kind, True, info.context.hub)
        )

    @strawberry.mutation(description="Undo a completed action.")
    async def inbox_revert_action(self, info: Info, id: strawberry.ID, action: InboxActionKind) -> InboxNotification:
        kind = state.ActionKind(action.value)
        return notification_to_graphql(
            await state.set_action(require_subscriber(info), id, kind, False, info.context.hub)
        )

    @strawberry.mutation(description="Mark every unread message read (only those of workflows with these tags).")
    async def inbox_mark_all_read(self, info: Info, tags: list[str] | None = None) -> InboxBulkResult:
        owner = require_subscriber(info)
        updated = await state.mark_all_read(owner, checked_tags(tags, "tags"), info.context.hub, info.context.queue)
        return InboxBulkResult(updated=updated)

    @strawberry.mutation(description="Archive every read message (only those of workflows with these tags).")
    async def inbox_archive_all_read(self, info: Info, tags: list[str] | None = None) -> InboxBulkResult:
        owner = require_subscriber(info)
        updated = await state.archive_all_read(owner, checked_tags(tags, "tags"), info.context.hub, info.context.queue)
        return InboxBulkResult(updated=updated)

    @strawberry.mutation(
        description="The subscriber's own channel choices, globally or for one workflow; refused (FORBIDDEN) for "
        "read-only workflows and for turning off channels of critical ones."
    )
    async def inbox_set_preferences(
        self, info: Info, channels: list[ChannelChoiceInput], workflow_id: str | None = None
    ) -> SubscriberPreferenceChoices:
        choices = {choice.channel: choice.enabled for choice in channels}
        return choices_to_graphql(await set_own_preferences(require_subscriber(info), workflow_id, choices))
