"""Mutations of the environments area."""

from __future__ import annotations

import strawberry

from tidings.environments.retention import set_retention
from tidings.environments.service import rotate_api_key, set_inbox_hmac_required
from tidings.graphql.context import Info
from tidings.graphql.environments.inputs import RetentionInput, retention_changes
from tidings.graphql.environments.mappers import environment_to_graphql
from tidings.graphql.environments.types import Environment, IssuedApiKey
from tidings.graphql.permissions import require_environment


@strawberry.type
class EnvironmentMutations:
    @strawberry.mutation(
        description="Issue a new secret API key. Older keys keep working for `overlapSeconds`, then expire."
    )
    async def rotate_api_key(self, info: Info, overlap_seconds: int = 3600) -> IssuedApiKey:
        issued = await rotate_api_key(await require_environment(info), overlap_seconds, cipher=info.context.cipher)
        return IssuedApiKey(api_key=issued.api_key, environment=environment_to_graphql(issued.environment))

    @strawberry.mutation(
        description="Require (or stop requiring) `subscriberHash` = HMAC-SHA256(secret API key, subscriberId) in "
        "`inboxSession`. Turn it on in production: without it, anyone who knows a subscriberId can read its inbox."
    )
    async def set_inbox_hmac_required(self, info: Info, required: bool) -> Environment:
        environment = await set_inbox_hmac_required(await require_environment(info), required)
        return environment_to_graphql(environment)

    @strawberry.mutation(
        description="Change how long this environment keeps records; a field left out keeps its value, null returns "
        "it to the server's default. Applies to records written from now on (each record's expiry is set when it is "
        "written)."
    )
    async def set_retention(self, info: Info, input: RetentionInput) -> Environment:
        environment = await set_retention(await require_environment(info), retention_changes(input))
        return environment_to_graphql(environment)
