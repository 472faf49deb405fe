"""Documents → GraphQL types for the diagnostics area."""

from __future__ import annotations

import strawberry

from tidings.diagnostics import documents
from tidings.graphql.diagnostics.types import ProbeAttempt, WorkerProbe


def _attempt(attempt: documents.ProbeAttempt) -> ProbeAttempt:
    return ProbeAttempt(pid=attempt.pid, host=attempt.host, started_at=attempt.started_at)


def probe_to_graphql(probe: documents.Probe) -> WorkerProbe:
    return WorkerProbe(
        id=strawberry.ID(str(probe.id)),
        status=probe.status,
        attempts=[_attempt(attempt) for attempt in probe.attempts],
        completed_by=None if probe.completed_by is None else _attempt(probe.completed_by),
        created_at=probe.created_at,
    )
