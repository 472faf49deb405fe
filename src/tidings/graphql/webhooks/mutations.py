"""Mutations of the webhooks area."""

from __future__ import annotations

import strawberry

from tidings.graphql.context import Info
from tidings.graphql.permissions import require_environment_id
from tidings.graphql.webhooks.inputs import CreateWebhookEndpointInput, UpdateWebhookEndpointInput, to_create, to_update
from tidings.graphql.webhooks.mappers import delivery_to_graphql, endpoint_to_graphql, issued_to_graphql
from tidings.graphql.webhooks.types import IssuedWebhookEndpoint, WebhookDelivery, WebhookEndpoint
from tidings.webhooks import service


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(description="Register an endpoint; the response holds its signing secret, shown only once.")
    async def create_webhook_endpoint(self, info: Info, input: CreateWebhookEndpointInput) -> IssuedWebhookEndpoint:
        environment_id = await require_environment_id(info)
        issued = await service.create_webhook_endpoint(
            environment_id, to_create(input), info.context.cipher, allow_private=info.context.allow_private_networks
        )
        return issued_to_graphql(issued)

    @strawberry.mutation(description="Change some fields of an endpoint; NOT_FOUND if it does not exist.")
    async def update_webhook_endpoint(
        self, info: Info, id: strawberry.ID, input: UpdateWebhookEndpointInput
    ) -> WebhookEndpoint:
        environment_id = await require_environment_id(info)
        updated = await service.update_webhook_endpoint(
            environment_id, str(id), to_update(input), allow_private=info.context.allow_private_networks
        )
        return endpoint_to_graphql(updated)

    @strawberry.mutation(description="Delete an endpoint and its delivery history; pending deliveries are dropped.")
    async def delete_webhook_endpoint(self, info: Info, id: strawberry.ID) -> bool:
        environment_id = await require_environment_id(info)
        await service.delete_webhook_endpoint(environment_id, str(id))
        return True

    @strawberry.mutation(description="Issue a new signing secret (shown only now); the old one stops signing at once.")
    async def rotate_webhook_secret(self, info: Info, id: strawberry.ID) -> IssuedWebhookEndpoint:
        environment_id = await require_environment_id(info)
        return issued_to_graphql(await service.rotate_webhook_secret(environment_id, str(id), info.context.cipher))

    @strawberry.mutation(description="Send a `webhook.test` event to this endpoint only; returns its delivery.")
    async def send_test_webhook(self, info: Info, endpoint_id: strawberry.ID) -> WebhookDelivery:
        environment_id = await require_environment_id(info)
        delivery = await service.send_test_webhook(environment_id, str(endpoint_id), info.context.queue)
        return delivery_to_graphql(delivery)
