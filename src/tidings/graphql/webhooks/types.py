"""GraphQL types of the webhooks area."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON


@strawberry.enum(description="Where a webhook delivery stands.")
class WebhookDeliveryStatus(Enum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@strawberry.type(description="An HTTPS address that receives the environment's events, signed with its secret.")
class WebhookEndpoint:
    id: strawberry.ID
    url: str
    description: str | None
    event_types: list[str] = strawberry.field(description="The event types it receives, e.g. message.sent.")
    active: bool
    created_at: datetime
    updated_at: datetime


@strawberry.type(description="An endpoint with its signing secret, shown only in this response.")
class IssuedWebhookEndpoint:
    endpoint: WebhookEndpoint
    secret: str = strawberry.field(description="Verifies the `Tidings-Signature` header (docs/webhooks.md).")


@strawberry.type(description="One try to deliver an event.")
class WebhookAttempt:
    at: datetime
    status_code: int | None = strawberry.field(description="The HTTP status answered; null if none came.")
    error: str | None = strawberry.field(description="Why no answer came: timeout, refused connection or address.")
    duration_ms: int


@strawberry.type(description="One event on its way to one endpoint, with every attempt made.")
class WebhookDelivery:
    id: strawberry.ID
    endpoint_id: strawberry.ID
    event_id: str = strawberry.field(description="The `Tidings-Event-Id` header; shared by every endpoint's copy.")
    event_type: str
    payload: JSON = strawberry.field(description="The event's `data`.")
    status: WebhookDeliveryStatus
    attempts: list[WebhookAttempt]
    next_attempt_at: datetime | None = strawberry.field(description="When the next try is due while pending.")
    created_at: datetime
