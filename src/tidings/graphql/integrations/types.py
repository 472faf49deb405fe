"""GraphQL types of the integrations area."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from tidings.engine.delivery import FailureKind
from tidings.graphql.channels import Channel


@strawberry.type(description="A provider configured for one channel of this environment. Credentials are never shown.")
class Integration:
    id: strawberry.ID = strawberry.field(
        description="Providers send status callbacks to /webhooks/providers/<id> (see statusCallbackPath)."
    )
    identifier: str = strawberry.field(description="Unique in the environment; steps and overrides refer to it.")
    name: str
    channel: Channel
    provider_id: str = strawberry.field(
        description="The provider, e.g. smtp, sendgrid, twilio, slack-webhook (docs/providers.md)."
    )
    config: JSON = strawberry.field(description="The non-secret settings, camelCase, defaults filled in.")
    credential_keys: list[str] = strawberry.field(description="Which secret settings are set (never their values).")
    status_callback_path: str = strawberry.field(
        description="Where to point the provider's delivery status webhooks, after the API's public URL."
    )
    active: bool = strawberry.field(description="Inactive integrations are kept but never used for delivery.")
    primary: bool = strawberry.field(
        description="The integration its channel delivers through first (one per channel)."
    )
    priority: int = strawberry.field(description="Failover order after the primary: lower first, then older.")
    created_at: datetime
    updated_at: datetime


DeliveryFailureKind = strawberry.enum(
    FailureKind,
    name="DeliveryFailureKind",
    description="TRANSIENT: worth retrying; PERMANENT: fix the settings or content; BAD_ENDPOINT: the recipient's "
    "address or token is invalid.",
)


@strawberry.type(description="The outcome of `testIntegration`: the provider's own answer to one real send.")
class IntegrationTestResult:
    success: bool
    duration_ms: int
    provider_message_id: str | None
    failure_kind: DeliveryFailureKind | None  # type: ignore[valid-type]
    message: str | None = strawberry.field(description="Why it failed (never a secret or the message body).")
    detail: JSON = strawberry.field(description="What the provider answered that is safe to show (status, codes).")
