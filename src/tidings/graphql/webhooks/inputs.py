"""GraphQL inputs of the webhooks area, and their conversion to domain commands."""

from __future__ import annotations

from typing import Any

import strawberry

from tidings.core.validation import validated
from tidings.webhooks.commands import CreateWebhookEndpoint, UpdateWebhookEndpoint

_EVENT_TYPES = (
    "message.sent, message.delivered, message.failed, message.bounced, message.read, message.seen, "
    "message.archived, workflow.completed, workflow.failed"
)


@strawberry.input(description="A new webhook endpoint.")
class CreateWebhookEndpointInput:
    url: str = strawberry.field(description="An https URL, at most 2048 characters.")
    event_types: list[str] = strawberry.field(description=f"At least one of: {_EVENT_TYPES}.")
    description: str | None = strawberry.field(default=None, description="At most 256 characters.")
    active: bool = True


@strawberry.input(description="Changes to a webhook endpoint; omitted fields stay as they are.")
class UpdateWebhookEndpointInput:
    url: str | None = strawberry.UNSET
    event_types: list[str] | None = strawberry.UNSET
    description: str | None = strawberry.field(default=strawberry.UNSET, description="null clears it.")
    active: bool | None = strawberry.UNSET


def _sent(value: object) -> dict[str, Any]:
    """The fields the client sent (UNSET ones left out)."""
    return {name: item for name, item in vars(value).items() if item is not strawberry.UNSET}


def to_create(value: CreateWebhookEndpointInput) -> CreateWebhookEndpoint:
    return validated(CreateWebhookEndpoint, _sent(value))


def to_update(value: UpdateWebhookEndpointInput) -> UpdateWebhookEndpoint:
    return validated(UpdateWebhookEndpoint, _sent(value))
