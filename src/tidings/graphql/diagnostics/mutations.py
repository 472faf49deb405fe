"""Mutations of the diagnostics area."""

from __future__ import annotations

import strawberry

from tidings.diagnostics.service import start_probe
from tidings.graphql.context import Info
from tidings.graphql.diagnostics.mappers import probe_to_graphql
from tidings.graphql.diagnostics.types import WorkerProbe
from tidings.graphql.permissions import require_environment_id


@strawberry.type
class DiagnosticsMutations:
    @strawberry.mutation(
        description="Queue a probe task; poll `workerProbe(id)` to see a worker pick it up and complete it."
    )
    async def probe_workers(self, info: Info, hold_seconds: float = 0.0) -> WorkerProbe:
        environment_id = await require_environment_id(info)
        return probe_to_graphql(await start_probe(info.context.queue, hold_seconds, environment_id))
