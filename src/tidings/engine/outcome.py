"""What running a step decided."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tidings.notifications.documents import JobStatus


@dataclass(frozen=True, slots=True)
class Outcome:
    status: JobStatus
    reason: str | None = None
    output: dict[str, Any] = field(default_factory=dict)  # what later steps read as steps.<stepId>
    detail: dict[str, Any] = field(default_factory=dict)  # recorded in the execution detail only
    due_at: datetime | None = None  # for DELAYED: when to run again
    stops_workflow: bool = False  # a throttled event: the steps after this one don't run either


def completed(output: dict[str, Any] | None = None, **detail: Any) -> Outcome:
    return Outcome(JobStatus.COMPLETED, output=output or {}, detail=detail)


def skipped(reason: str, *, stops_workflow: bool = False, **detail: Any) -> Outcome:
    return Outcome(JobStatus.SKIPPED, reason=reason, detail=detail, stops_workflow=stops_workflow)


def failed(reason: str, **detail: Any) -> Outcome:
    return Outcome(JobStatus.FAILED, reason=reason, detail=detail)


def parked(due_at: datetime, reason: str, output: dict[str, Any] | None = None) -> Outcome:
    return Outcome(JobStatus.DELAYED, reason=reason, due_at=due_at, output=output or {})
