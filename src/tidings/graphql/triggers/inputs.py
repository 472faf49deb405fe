"""GraphQL inputs of the triggers area, and their conversion to the domain's TriggerEvent."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON

from tidings.core.validation import validated
from tidings.graphql.inputs import sent
from tidings.graphql.subscribers.inputs import SubscriberInput
from tidings.triggers.commands import TriggerEvent


@strawberry.input(one_of=True, description="One recipient: a subscriberId, a subscriber to upsert, or a topic.")
class RecipientInput:
    subscriber_id: str | None = strawberry.UNSET
    subscriber: SubscriberInput | None = strawberry.UNSET
    topic_key: str | None = strawberry.UNSET


@strawberry.input
class TriggerInput:
    workflow_id: str
    to: list[RecipientInput]
    payload: JSON | None = strawberry.field(default=None, description="Validated against the workflow's schema.")
    overrides: JSON | None = None
    actor: str | None = strawberry.field(default=None, description="The subscriberId who caused the event.")
    tenant: str | None = None
    transaction_id: str | None = strawberry.field(
        default=None, description="Your idempotency key; a repeat returns the first result and creates nothing."
    )


@strawberry.input
class BulkTriggerInput:
    events: list[TriggerInput]


def to_event(value: TriggerInput, prefix: str = "input") -> TriggerEvent:
    data: dict[str, Any] = sent(value)
    data["payload"] = data.get("payload") or {}
    data["overrides"] = data.get("overrides") or {}
    return validated(TriggerEvent, data, prefix=prefix)
