"""Documents → GraphQL types for the webhooks area."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from tidings.graphql.webhooks.types import (
    IssuedWebhookEndpoint,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
)
from tidings.webhooks import documents
from tidings.webhooks.service import IssuedWebhookEndpoint as Issued


def endpoint_to_graphql(endpoint: documents.WebhookEndpoint) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=strawberry.ID(str(endpoint.id)),
        url=endpoint.url,
        description=endpoint.description,
        event_types=list(endpoint.event_types),
        active=endpoint.active,
        created_at=endpoint.created_at,
        updated_at=endpoint.updated_at,
    )


def issued_to_graphql(issued: Issued) -> IssuedWebhookEndpoint:
    return IssuedWebhookEndpoint(endpoint=endpoint_to_graphql(issued.endpoint), secret=issued.secret)


def attempt_to_graphql(attempt: documents.DeliveryAttempt) -> WebhookAttempt:
    return WebhookAttempt(
        at=attempt.at, status_code=attempt.status_code, error=attempt.error, duration_ms=attempt.duration_ms
    )


def delivery_to_graphql(delivery: documents.WebhookDelivery) -> WebhookDelivery:
    return WebhookDelivery(
        id=strawberry.ID(str(delivery.id)),
        endpoint_id=strawberry.ID(str(delivery.endpoint_id)),
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        payload=JSON(delivery.payload),
        status=WebhookDeliveryStatus(delivery.status.value),
        attempts=[attempt_to_graphql(attempt) for attempt in delivery.attempts],
        next_attempt_at=delivery.next_attempt_at,
        created_at=delivery.created_at,
    )
