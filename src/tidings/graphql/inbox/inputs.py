"""GraphQL inputs of the inbox area."""

from __future__ import annotations

from datetime import datetime

import strawberry

from tidings.inbox.feed import InboxFilter


@strawberry.input(
    description="Which messages: null fields mean either. Archived and snoozed ones are hidden unless asked."
)
class InboxFilterInput:
    read: bool | None = None
    seen: bool | None = None
    archived: bool | None = False
    snoozed: bool | None = False
    tags: list[str] | None = strawberry.field(default=None, description="Messages of workflows with any of these tags.")
    created_after: datetime | None = None
    created_before: datetime | None = None

    def to_domain(self) -> InboxFilter:
        return InboxFilter(
            read=self.read,
            seen=self.seen,
            archived=self.archived,
            snoozed=self.snoozed,
            tags=tuple(self.tags or ()),
            created_after=self.created_after,
            created_before=self.created_before,
        )
