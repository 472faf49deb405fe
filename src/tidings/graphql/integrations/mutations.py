"""Mutations of the integrations area."""

from __future__ import annotations

import strawberry

from tidings.engine.trial_send import TrialTarget, send_trial_message
from tidings.graphql.context import Info
from tidings.graphql.integrations.inputs import CreateIntegrationInput, UpdateIntegrationInput, to_create, to_update
from tidings.graphql.integrations.mappers import integration_to_graphql, trial_to_graphql
from tidings.graphql.integrations.types import Integration, IntegrationTestResult
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

    @strawberry.mutation(
        description="Send one test message through an integration now (not through a workflow) and return the "
        "provider's answer. The recipient is the subscriber's addresses, or `email` / `phone` given here."
    )
    async def test_integration(
        self,
        info: Info,
        identifier: str,
        subscriber_id: str | None = None,
        email: str | None = None,
        phone: str | None = None,
    ) -> IntegrationTestResult:
        environment_id = await require_environment_id(info)
        target = TrialTarget(subscriber_id=subscriber_id, email=email, phone=phone)
        result = await send_trial_message(environment_id, identifier, target, info.context.sender)
        return trial_to_graphql(result)
