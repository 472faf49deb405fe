"""Queries of the integrations area."""

from __future__ import annotations

import strawberry

from tidings.core.pagination import PageRequest
from tidings.graphql.channels import Channel
from tidings.graphql.context import Info
from tidings.graphql.integrations.mappers import integration_to_graphql
from tidings.graphql.integrations.types import Integration
from tidings.graphql.pagination import Connection, to_connection
from tidings.graphql.permissions import require_environment_id
from tidings.integrations.service import get_integration, list_integrations


@strawberry.type
class IntegrationQueries:
    @strawberry.field(description="One integration by its identifier.")
    async def integration(self, info: Info, identifier: str) -> Integration:
        environment_id = await require_environment_id(info)
        return integration_to_graphql(await get_integration(environment_id, identifier))

    @strawberry.field(description="Integrations in creation order, optionally of one channel.")
    async def integrations(
        self, info: Info, channel: Channel | None = None, first: int | None = None, after: str | None = None
    ) -> Connection[Integration]:
        environment_id = await require_environment_id(info)
        limits = info.context.limits
        request = PageRequest.parse(first, after, default=limits.page_size_default, maximum=limits.page_size_max)
        return to_connection(await list_integrations(environment_id, request, channel), integration_to_graphql)
