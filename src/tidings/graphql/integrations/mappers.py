"""Documents → GraphQL types for the integrations area."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from tidings.engine.trial_send import TrialResult
from tidings.graphql.integrations.types import Integration, IntegrationTestResult
from tidings.integrations import documents
from tidings.integrations.credentials import credential_keys, public_config


def integration_to_graphql(integration: documents.Integration) -> Integration:
    return Integration(
        id=strawberry.ID(str(integration.id)),
        status_callback_path=f"/webhooks/providers/{integration.id}",
        identifier=integration.identifier,
        name=integration.name,
        channel=integration.channel,
        provider_id=integration.provider_id,
        config=JSON(public_config(integration)),
        credential_keys=credential_keys(integration),
        active=integration.active,
        primary=integration.primary,
        priority=integration.priority,
        created_at=integration.created_at,
        updated_at=integration.updated_at,
    )


def trial_to_graphql(result: TrialResult) -> IntegrationTestResult:
    return IntegrationTestResult(
        success=result.success,
        duration_ms=result.duration_ms,
        provider_message_id=result.provider_message_id,
        failure_kind=result.failure_kind,
        message=result.message,
        detail=JSON(result.detail),
    )
