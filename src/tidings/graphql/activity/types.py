"""GraphQL types of the activity area."""

from __future__ import annotations

from datetime import datetime

import strawberry
from beanie import PydanticObjectId
from strawberry.scalars import JSON

from tidings.graphql.context import Info
from tidings.notifications import documents
from tidings.notifications.activity import jobs_of
from tidings.notifications.documents import JobStatus, NotificationStatus

# The domain's own enums, registered with Strawberry as the `Channel` enum is (members become the GraphQL values).
strawberry.enum(NotificationStatus, name="NotificationStatus")
strawberry.enum(JobStatus, name="JobStatus")


@strawberry.type(description="One run of a job: outcome, reason, what the provider answered, how long it took.")
class ExecutionDetail:
    attempt: int
    status: str
    reason: str | None
    detail: JSON
    duration_ms: int
    created_at: datetime


@strawberry.type(description="One step of one notification.")
class Job:
    id: strawberry.ID
    step_id: str
    step_type: str
    status: JobStatus
    reason: str | None
    attempts: int
    due_at: datetime | None
    output: JSON
    execution_details: list[ExecutionDetail] = strawberry.field(description="Every run of this job, oldest first.")
    provider_message_id: str | None = strawberry.field(description="The id the provider gave the sent message.")
    delivery_status: str | None = strawberry.field(
        description="The provider's latest status callback: delivered, bounced, opened, clicked or failed."
    )
    delivery_events: JSON = strawberry.field(description="Every status callback event: [{status, at, reason}].")
    created_at: datetime
    updated_at: datetime


@strawberry.type(description="One trigger for one subscriber, with the jobs of its steps.")
class Notification:
    id: strawberry.ID
    transaction_id: str
    workflow_id: str
    subscriber_id: str
    status: NotificationStatus
    created_at: datetime
    updated_at: datetime
    _notification_id: strawberry.Private[PydanticObjectId]

    @strawberry.field(description="The jobs of its steps so far, in step order.")
    async def jobs(self, info: Info) -> list[Job]:
        return [_job(row) for row in await jobs_of(self._notification_id)]


def _detail(row: documents.ExecutionDetail) -> ExecutionDetail:
    return ExecutionDetail(
        attempt=row.attempt,
        status=row.status,
        reason=row.reason,
        detail=JSON(row.detail),
        duration_ms=row.duration_ms,
        created_at=row.created_at,
    )


def _job(row: documents.Job) -> Job:
    assert row.id is not None
    return Job(
        id=strawberry.ID(str(row.id)),
        step_id=row.step_id,
        step_type=row.step_type,
        status=row.status,
        reason=row.reason,
        attempts=row.attempts,
        due_at=row.due_at,
        output=JSON(row.output),
        execution_details=[_detail(run) for run in row.executions],
        provider_message_id=row.sent_message_id,
        delivery_status=row.delivery_status,
        delivery_events=JSON(
            [{**event, "at": event["at"].isoformat() if event.get("at") else None} for event in row.delivery_events]
        ),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def notification_to_graphql(row: documents.Notification) -> Notification:
    assert row.id is not None
    return Notification(
        id=strawberry.ID(str(row.id)),
        transaction_id=row.transaction_id,
        workflow_id=row.workflow_id,
        subscriber_id=row.subscriber_id,
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
        _notification_id=row.id,
    )
