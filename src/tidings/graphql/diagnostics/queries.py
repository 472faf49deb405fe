"""Queries of the diagnostics area."""

from __future__ import annotations

import strawberry

from tidings.diagnostics.service import get_probe
from tidings.graphql.context import Info
from tidings.graphql.diagnostics.mappers import probe_to_graphql
from tidings.graphql.diagnostics.types import WorkerProbe
from tidings.graphql.permissions import require_environment_id


@strawberry.type
class DiagnosticsQueries:
    @strawberry.field(description="A probe started with `probeWorkers`: which worker ran it, and whether it finished.")
    async def worker_probe(self, info: Info, id: strawberry.ID) -> WorkerProbe:
        return probe_to_graphql(await get_probe(str(id), await require_environment_id(info)))
