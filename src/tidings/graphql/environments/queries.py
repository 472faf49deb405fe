"""Queries of the environments area."""

from __future__ import annotations

import strawberry

from tidings.graphql.context import Info
from tidings.graphql.environments.mappers import environment_to_graphql
from tidings.graphql.environments.types import Environment
from tidings.graphql.permissions import require_environment


@strawberry.type
class EnvironmentQueries:
    @strawberry.field(description="The environment that the request's API key belongs to.")
    async def current_environment(self, info: Info) -> Environment:
        return environment_to_graphql(await require_environment(info))
