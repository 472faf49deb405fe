"""Documents → GraphQL types for the integrations area."""

from __future__ import annotations

from strawberry.scalars import JSON

from tidings.graphql.integrations.types import Integration
from tidings.integrations import documents
from tidings.integrations.credentials import credential_keys, public_config


def integration_to_graphql(integration: documents.Integration) -> Integration:
    return Integration(
        identifier=integration.identifier,
        name=integration.name,
        channel=integration.channel,
        provider_id=integration.provider_id,
        config=JSON(public_config(integration)),
        credential_keys=credential_keys(integration),
        active=integration.active,
        primary=integration.primary,
        created_at=integration.created_at,
        updated_at=integration.updated_at,
    )
