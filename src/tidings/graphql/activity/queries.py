"""Queries of the activity area."""

from __future__ import annotations

from datetime import datetime

import strawberry

from tidings.core.pagination import PageRequest
from tidings.graphql.activity.types import Notification, notification_to_graphql
from tidings.graphql.context import Info
from tidings.graphql.pagination import Connection, to_connection
from tidings.graphql.permissions import require_environment_id
from tidings.notifications import activity
from tidings.notifications.documents import NotificationStatus


@strawberry.input(description="Every given field must match.")
class NotificationFilter:
    transaction_id: str | None = None
    subscriber_id: str | None = None
    workflow_id: str | None = None
    status: NotificationStatus | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def to_domain(self) -> activity.ActivityFilter:
        return activity.ActivityFilter(
            transaction_id=self.transaction_id,
            subscriber_id=self.subscriber_id,
            workflow_id=self.workflow_id,
            status=self.status,
            created_after=self.created_after,
            created_before=self.created_before,
        )


@strawberry.type
class ActivityQueries:
    @strawberry.field(description="Notifications, oldest first, with their jobs and execution details.")
    async def notifications(
        self, info: Info, where: NotificationFilter | None = None, first: int | None = None, after: str | None = None
    ) -> Connection[Notification]:
        environment_id = await require_environment_id(info)
        limits = info.context.limits
        request = PageRequest.parse(first, after, default=limits.page_size_default, maximum=limits.page_size_max)
        page = await activity.list_notifications(environment_id, request, (where or NotificationFilter()).to_domain())
        return to_connection(page, notification_to_graphql)

    @strawberry.field(description="One notification by id.")
    async def notification(self, info: Info, id: strawberry.ID) -> Notification:
        found = await activity.get_notification(await require_environment_id(info), str(id))
        return notification_to_graphql(found)
