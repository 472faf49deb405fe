"""GraphQL inputs of the inbox area."""

from __future__ import annotations

from datetime import datetime

import strawberry

from tidings.core.errors import ValidationError
from tidings.inbox.feed import InboxFilter

# Tag filters match workflow tags, which have at most 64 characters: a longer one matches nothing and only costs the
# database a query with the client's megabyte in it. A filter may name tags of many workflows, hence the own count.
MAX_TAG_LENGTH = 64
MAX_FILTER_TAGS = 100


def checked_tags(tags: list[str] | None, field: str) -> tuple[str, ...]:
    if tags is None:
        return ()
    if len(tags) > MAX_FILTER_TAGS:
        raise ValidationError(f"give at most {MAX_FILTER_TAGS} tags", field=field)
    for index, tag in enumerate(tags):
        if len(tag) > MAX_TAG_LENGTH:
            raise ValidationError(f"a tag has at most {MAX_TAG_LENGTH} characters", field=f"{field}.{index}")
    return tuple(tags)


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

    def to_domain(self, field: str = "filter") -> InboxFilter:
        return InboxFilter(
            read=self.read,
            seen=self.seen,
            archived=self.archived,
            snoozed=self.snoozed,
            tags=checked_tags(self.tags, f"{field}.tags"),
            created_after=self.created_after,
            created_before=self.created_before,
        )
