"""GraphQL inputs of the subscribers area, and their conversion to domain commands."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from tidings.core.validation import validated
from tidings.graphql.inputs import sent
from tidings.subscribers.commands import SubscriberFields, UpsertSubscriber


@strawberry.input
class PushEndpointInput:
    integration_identifier: str
    device_tokens: list[str]


@strawberry.input
class ChatEndpointInput:
    integration_identifier: str
    webhook_url: str | None = None
    channel_id: str | None = None


@strawberry.input(description="Profile fields. Omitted fields are left as they are; null clears a field.")
class SubscriberFieldsInput:
    email: str | None = strawberry.UNSET
    phone: str | None = strawberry.field(default=strawberry.UNSET, description="E.164, e.g. +14155550123.")
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    avatar: str | None = strawberry.field(default=strawberry.UNSET, description="An http(s) URL.")
    locale: str | None = strawberry.field(default=strawberry.UNSET, description="BCP 47, e.g. en or pt-BR.")
    timezone: str | None = strawberry.field(default=strawberry.UNSET, description="IANA name, e.g. Europe/Paris.")
    data: JSON | None = strawberry.field(default=strawberry.UNSET, description="Your own JSON, size-capped.")
    push: list[PushEndpointInput] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces every push endpoint."
    )
    chat: list[ChatEndpointInput] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces every chat endpoint."
    )


@strawberry.input
class SubscriberInput(SubscriberFieldsInput):
    subscriber_id: str


@strawberry.input
class BulkUpsertSubscribersInput:
    subscribers: list[SubscriberInput]


def to_upsert(value: SubscriberInput, prefix: str = "input") -> UpsertSubscriber:
    return validated(UpsertSubscriber, sent(value), prefix=prefix)


def to_fields(value: SubscriberFieldsInput) -> SubscriberFields:
    return validated(SubscriberFields, sent(value))
