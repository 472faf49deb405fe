"""Mutations of the workflows area."""

from __future__ import annotations

import strawberry

from tidings.graphql.context import Info
from tidings.graphql.permissions import require_environment_id
from tidings.graphql.workflows.inputs import CreateWorkflowInput, UpdateWorkflowInput, to_create, to_update
from tidings.graphql.workflows.mappers import workflow_to_graphql
from tidings.graphql.workflows.types import Workflow
from tidings.workflows import service


@strawberry.type
class WorkflowMutations:
    @strawberry.mutation(
        description="Create a workflow; ALREADY_EXISTS if the workflowId is taken, VALIDATION naming the field (and "
        "the line, for a template) otherwise."
    )
    async def create_workflow(self, info: Info, input: CreateWorkflowInput) -> Workflow:
        environment_id = await require_environment_id(info)
        created = await service.create_workflow(environment_id, to_create(input), info.context.limits)
        return workflow_to_graphql(created)

    @strawberry.mutation(description="Change the given fields of a workflow; `steps`, when given, replaces all steps.")
    async def update_workflow(self, info: Info, workflow_id: str, input: UpdateWorkflowInput) -> Workflow:
        environment_id = await require_environment_id(info)
        updated = await service.update_workflow(environment_id, workflow_id, to_update(input), info.context.limits)
        return workflow_to_graphql(updated)

    @strawberry.mutation(description="Delete a workflow; NOT_FOUND if it does not exist.")
    async def delete_workflow(self, info: Info, workflow_id: str) -> bool:
        environment_id = await require_environment_id(info)
        await service.delete_workflow(environment_id, workflow_id)
        return True
