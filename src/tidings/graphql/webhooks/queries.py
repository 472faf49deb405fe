"""Queries of the webhooks area."""

from __future__ import annotations

import strawberry

from tidings.core.pagination import PageRequest
from tidings.graphql.context import Info
from tidings.graphql.pagination import Connection, to_connection
from tidings.graphql.permissions import require_environment_id
from tidings.graphql.webhooks.mappers import delivery_to_graphql, endpoint_to_graphql
from tidings.graphql.webhooks.types import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from tidings.webhooks import service
from tidings.webhooks.documents import DeliveryStatus


def _page(info: Info, first: int | None, after: str | None) -> PageRequest:
    limits = info.context.limits
    return PageRequest.parse(first, after, default=limits.page_size_default, maximum=limits.page_size_max)


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="One webhook endpoint by id.")
    async def webhook_endpoint(self, info: Info, id: strawberry.ID) -> WebhookEndpoint:
        environment_id = await require_environment_id(info)
        return endpoint_to_graphql(await service.get_webhook_endpoint(environment_id, str(id)))

    @strawberry.field(description="Webhook endpoints in creation order.")
    async def webhook_endpoints(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[WebhookEndpoint]:
        environment_id = await require_environment_id(info)
        page = await service.list_webhook_endpoints(environment_id, _page(info, first, after))
        return to_connection(page, endpoint_to_graphql)

    @strawberry.field(description="An endpoint's deliveries, newest first, optionally of one status.")
    async def webhook_deliveries(
        self,
        info: Info,
        endpoint_id: strawberry.ID,
        status: WebhookDeliveryStatus | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[WebhookDelivery]:
        environment_id = await require_environment_id(info)
        page = await service.list_webhook_deliveries(
            environment_id,
            str(endpoint_id),
            _page(info, first, after),
            None if status is None else DeliveryStatus(status.value),
        )
        return to_connection(page, delivery_to_graphql)
