"""GraphQL inputs of the integrations area, and their conversion to domain commands."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON

from tidings.core.validation import validated
from tidings.integrations.commands import CreateIntegration, UpdateIntegration


@strawberry.input(
    description="A new integration. `config` holds the non-secret settings, `credentials` the secret ones."
)
class CreateIntegrationInput:
    provider_id: str = strawberry.field(description="e.g. smtp, sendgrid, twilio, fcm, slack-webhook, in-app.")
    identifier: str | None = strawberry.field(
        default=None, description="A slug, 1 to 64 characters; generated from the provider id when omitted."
    )
    name: str | None = strawberry.field(default=None, description="1 to 64 characters; the provider's name if omitted.")
    config: JSON | None = strawberry.field(default=None, description="Non-secret settings, e.g. {host, fromEmail}.")
    credentials: JSON | None = strawberry.field(
        default=None, description="Secret settings (string values), e.g. {password}; stored encrypted."
    )
    active: bool = True
    priority: int = strawberry.field(
        default=0, description="Failover order after the primary: lower first (0 to 1000), then the older one."
    )
    primary: bool | None = strawberry.field(
        default=None,
        description="true: becomes the channel's primary. Omitted: primary if the channel has none. false: not.",
    )


@strawberry.input(description="Changes to an integration; omitted fields stay as they are. The provider cannot change.")
class UpdateIntegrationInput:
    name: str | None = strawberry.UNSET
    config: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces every non-secret setting (omitted ones return to defaults)."
    )
    credentials: JSON | None = strawberry.field(
        default=strawberry.UNSET, description="Merged into the stored secrets; a key set to null removes that secret."
    )
    active: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Deactivating the primary hands the role to the oldest active other one."
    )
    primary: bool | None = strawberry.field(
        default=strawberry.UNSET, description="true takes the role from the channel's current primary."
    )
    priority: int | None = strawberry.field(default=strawberry.UNSET, description="Failover order (0 to 1000).")


def _sent(value: object) -> dict[str, Any]:
    """The fields the client sent (UNSET ones left out)."""
    return {name: item for name, item in vars(value).items() if item is not strawberry.UNSET}


def to_create(value: CreateIntegrationInput) -> CreateIntegration:
    return validated(CreateIntegration, _sent(value))


def to_update(value: UpdateIntegrationInput) -> UpdateIntegration:
    return validated(UpdateIntegration, _sent(value))
