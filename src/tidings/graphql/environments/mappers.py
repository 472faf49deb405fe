"""Documents → GraphQL types for the environments area."""

from __future__ import annotations

import strawberry

from tidings.core.clock import utcnow
from tidings.environments import documents
from tidings.environments.retention import effective
from tidings.graphql.environments.types import ApiKeyInfo, Environment, Retention


def environment_to_graphql(environment: documents.Environment) -> Environment:
    now = utcnow()
    return Environment(
        id=strawberry.ID(str(environment.id)),
        name=environment.name,
        application_identifier=environment.application_identifier,
        api_keys=[
            ApiKeyInfo(hint=key.hint, created_at=key.created_at, expires_at=key.expires_at)
            for key in environment.api_keys
            if key.is_valid(now)
        ],
        inbox_hmac_required=environment.inbox_hmac_required,
        retention=retention_to_graphql(environment),
        created_at=environment.created_at,
    )


def retention_to_graphql(environment: documents.Environment) -> Retention:
    retention = effective(environment.retention)
    return Retention(
        messages_days=retention.messages_days,
        jobs_days=retention.jobs_days,
        execution_details_days=retention.execution_details_days,
    )
