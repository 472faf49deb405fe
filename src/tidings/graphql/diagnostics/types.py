"""GraphQL types of the diagnostics area."""

from __future__ import annotations

from datetime import datetime

import strawberry

from tidings.diagnostics.documents import ProbeStatus

strawberry.enum(ProbeStatus, name="ProbeStatus")


@strawberry.type(description="A worker process that picked up a probe.")
class ProbeAttempt:
    pid: int
    host: str
    started_at: datetime


@strawberry.type(description="A round trip through the task queue: proves that some worker consumes it.")
class WorkerProbe:
    id: strawberry.ID
    status: ProbeStatus
    attempts: list[ProbeAttempt]
    completed_by: ProbeAttempt | None
    created_at: datetime
