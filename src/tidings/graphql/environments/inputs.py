"""GraphQL inputs of the environments area."""

from __future__ import annotations

import strawberry

from tidings.graphql.inputs import sent


@strawberry.input(description="Days to keep each kind of record (1 to 3650); null returns to the server's default.")
class RetentionInput:
    messages_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="In-app messages and their inbox events."
    )
    jobs_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="Triggers, notifications, jobs and webhook deliveries."
    )
    execution_details_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="Execution details on finished jobs; at most jobsDays."
    )


def retention_changes(input: RetentionInput) -> dict[str, int | None]:
    """The fields the client sent, snake_case."""
    changes: dict[str, int | None] = sent(input)
    return changes
