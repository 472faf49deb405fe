"""Queries of the workflows area."""

from __future__ import annotations

import strawberry

from tidings.core.pagination import PageRequest
from tidings.graphql.context import Info
from tidings.graphql.pagination import Connection, to_connection
from tidings.graphql.permissions import require_environment_id
from tidings.graphql.workflows.mappers import workflow_to_graphql
from tidings.graphql.workflows.types import Workflow
from tidings.workflows.service import get_workflow, list_workflows


@strawberry.type
class WorkflowQueries:
    @strawberry.field(description="One workflow by its `workflowId`.")
    async def workflow(self, info: Info, workflow_id: str) -> Workflow:
        environment_id = await require_environment_id(info)
        return workflow_to_graphql(await get_workflow(environment_id, workflow_id))

    @strawberry.field(description="Workflows in creation order; `tag` keeps those carrying that tag.")
    async def workflows(
        self, info: Info, first: int | None = None, after: str | None = None, tag: str | None = None
    ) -> Connection[Workflow]:
        environment_id = await require_environment_id(info)
        limits = info.context.limits
        request = PageRequest.parse(first, after, default=limits.page_size_default, maximum=limits.page_size_max)
        page = await list_workflows(environment_id, request, tag=tag)
        return to_connection(page, workflow_to_graphql)
