"""Mutations of the integrations area."""

from __future__ import annotations

import strawberry

from tidings.graphql.context import Info
from tidings.graphql.integrations.inputs import CreateIntegrationInput, UpdateIntegrationInput, to_create, to_update
from tidings.graphql.integrations.mappers import integration_to_graphql
from tidings.graphql.integrations.types import Integration
from tidings.graphql.permissions import require_environment_id
from tidings.integrations import service


@strawberry.type
class IntegrationMutations:
    @strawberry.mutation(description="Configure a provider; ALREADY_EXISTS if the identifier is taken.")
    async def create_integration(self, info: Info, input: CreateIntegrationInput) -> Integration:
        environment_id = await require_environment_id(info)
        created = await service.create_integration(environment_id, to_create(input), info.context.cipher)
        return integration_to_graphql(created)

    @strawberry.mutation(description="Change some fields of an integration; NOT_FOUND if it does not exist.")
    async def update_integration(self, info: Info, identifier: str, input: UpdateIntegrationInput) -> Integration:
        environment_id = await require_environment_id(info)
        updated = await service.update_integration(environment_id, identifier, to_update(input), info.context.cipher)
        return integration_to_graphql(updated)

    @strawberry.mutation(
        description="Delete an integration; if it was primary, the oldest active other one takes over."
    )
    async def delete_integration(self, info: Info, identifier: str) -> bool:
        environment_id = await require_environment_id(info)
        await service.delete_integration(environment_id, identifier)
        return True
