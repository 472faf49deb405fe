"""Commands that create and change webhook endpoints, as the domain accepts them from the API."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from tidings.webhooks.events import WebhookEventType

MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 256


def _distinct(values: list[WebhookEventType]) -> list[WebhookEventType]:
    return list(dict.fromkeys(values))


type EventTypes = Annotated[list[WebhookEventType], Field(min_length=1), AfterValidator(_distinct)]
type Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_URL_LENGTH)]
type Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_DESCRIPTION_LENGTH)]


class CreateWebhookEndpoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    event_types: EventTypes
    description: Description | None = None
    active: bool = True


class UpdateWebhookEndpoint(BaseModel):
    """Only the fields set here change (`model_fields_set`)."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    active: bool | None = None
