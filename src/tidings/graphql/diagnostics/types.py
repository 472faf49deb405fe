"""GraphQL types of the diagnostics area."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry


@strawberry.enum
class ProbeStatus(Enum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"


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
