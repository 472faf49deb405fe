"""`testIntegration`: one real send through an integration, to check its settings before a workflow depends on it.

The send goes straight through the provider (no workflow, no job, no retry), so what comes back is the provider's
own answer: its message id, or the classified failure with the same safe detail a step would record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from beanie import PydanticObjectId

from tidings.core.channels import Channel
from tidings.core.errors import ValidationError
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, Recipient, Sender, recipient_of
from tidings.integrations.service import get_integration
from tidings.subscribers.service import get_subscriber

SUBJECT = "Tidings test message"
BODY = "This is a test message from Tidings: the integration works."


@dataclass(frozen=True, slots=True)
class TrialTarget:
    """Where the test goes: a subscriber's addresses, each overridable (or given alone)."""

    subscriber_id: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class TrialResult:
    success: bool
    duration_ms: int
    provider_message_id: str | None = None
    failure_kind: FailureKind | None = None
    message: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _content(channel: Channel) -> dict[str, Any]:
    match channel:
        case Channel.EMAIL:
            return {"subject": SUBJECT, "html": f"<p>{BODY}</p>", "text": BODY}
        case Channel.PUSH:
            return {"title": SUBJECT, "body": BODY, "data": {}}
        case _:
            return {"body": BODY}


async def send_trial_message(
    environment_id: PydanticObjectId, identifier: str, target: TrialTarget, sender: Sender
) -> TrialResult:
    integration = await get_integration(environment_id, identifier)
    if integration.channel == Channel.IN_APP:
        raise ValidationError("in-app integrations send nothing to test", field="identifier")
    recipient = Recipient(subscriber_id=target.subscriber_id or "tidings-test")
    if target.subscriber_id is not None:
        subscriber = await get_subscriber(environment_id, target.subscriber_id)
        recipient = recipient_of(subscriber)
    recipient = replace(recipient, email=target.email or recipient.email, phone=target.phone or recipient.phone)
    message = OutboundMessage(
        channel=integration.channel,
        recipient=recipient,
        content=_content(integration.channel),
        idempotency_key=f"test-{PydanticObjectId()}",
        metadata={"test": "true", "integration": integration.identifier},
    )
    started = time.perf_counter()
    try:
        result = await sender.send(integration, message)
    except DeliveryError as exc:
        return TrialResult(
            success=False,
            duration_ms=int((time.perf_counter() - started) * 1000),
            failure_kind=exc.kind,
            message=exc.message,
            detail=dict(exc.detail),
        )
    return TrialResult(
        success=True,
        duration_ms=int((time.perf_counter() - started) * 1000),
        provider_message_id=result.provider_message_id,
        detail=dict(result.detail),
    )
