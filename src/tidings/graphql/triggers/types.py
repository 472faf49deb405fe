"""GraphQL types of the triggers area."""

from __future__ import annotations

import strawberry

from tidings.notifications.documents import TriggerStatus

strawberry.enum(TriggerStatus, name="TriggerStatus")


@strawberry.type(description="The answer to a trigger: its transactionId, and whether it was a repeat.")
class TriggerResult:
    transaction_id: str
    status: TriggerStatus
    duplicate: bool = strawberry.field(
        description="True when this transactionId was triggered before: nothing new was created."
    )


@strawberry.type
class CancelTriggerResult:
    transaction_id: str
    canceled_jobs: int = strawberry.field(description="Jobs that had not run yet and now never will.")
