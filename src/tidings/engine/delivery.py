"""The contract between the engine and channel providers (implemented in `tidings.tasks.providers`).

The engine renders the content and picks the integration; a provider turns an `OutboundMessage` into one call to
its service and either returns a `SendResult` or raises `DeliveryError` saying whether trying again can help.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from tidings.core.channels import Channel
from tidings.integrations.documents import Integration
from tidings.subscribers.documents import ChatEndpoint, PushEndpoint, Subscriber


class FailureKind(StrEnum):
    TRANSIENT = "transient"  # timeouts, refused connections, 429, 5xx: retried with backoff
    PERMANENT = "permanent"  # 4xx, rejected content, bad configuration: the step fails
    BAD_ENDPOINT = "bad_endpoint"  # the recipient's address or token is invalid: fail, and stop using it


class DeliveryError(Exception):
    def __init__(
        self,
        message: str,
        *,
        kind: FailureKind,
        retry_after: float | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.retry_after = retry_after
        self.detail = dict(detail or {})


@dataclass(frozen=True, slots=True)
class Recipient:
    subscriber_id: str
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None
    push: tuple[PushEndpoint, ...] = ()
    chat: tuple[ChatEndpoint, ...] = ()


def recipient_of(subscriber: Subscriber) -> Recipient:
    return Recipient(
        subscriber_id=subscriber.subscriber_id,
        email=subscriber.email,
        phone=subscriber.phone,
        first_name=subscriber.first_name,
        last_name=subscriber.last_name,
        locale=subscriber.locale,
        push=tuple(subscriber.push),
        chat=tuple(subscriber.chat),
    )


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """Rendered content for one recipient on one channel.

    `content` keys per channel: email `subject`, `html`, `text`; sms `body`; push `title`, `body`, `data`;
    chat `body`. `idempotency_key` is stable across retries of the same job (e.g. the email Message-ID).
    """

    channel: Channel
    recipient: Recipient
    content: Mapping[str, Any]
    idempotency_key: str
    metadata: Mapping[str, str] = field(default_factory=dict)  # transactionId, workflowId, stepId…


@dataclass(frozen=True, slots=True)
class SendResult:
    provider_message_id: str | None
    detail: Mapping[str, Any] = field(default_factory=dict)  # safe to store: no secrets, no message bodies


class DeliveryStatus(StrEnum):
    """What a provider reported after accepting a message, in its status callback."""

    DELIVERED = "delivered"
    BOUNCED = "bounced"
    OPENED = "opened"
    CLICKED = "clicked"
    FAILED = "failed"  # the provider gave up (dropped, undelivered, rejected downstream)


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """One event of a provider's status callback, about a message it accepted (`provider_message_id`, as its send
    returned it; providers normalise ids so the two match)."""

    provider_message_id: str
    status: DeliveryStatus
    occurred_at: datetime
    # The recipient's address is dead for good (hard bounce, unknown number): the subscriber's endpoint is disabled.
    hard: bool = False
    reason: str | None = None  # a provider code (e.g. "550", "30005"), never free text that may quote the message
    recipient: str | None = None  # the address the event is about, when the provider says (to disable that one)


@dataclass(frozen=True, slots=True)
class InboundWebhook:
    """A provider's status callback as received: headers (case-insensitive), raw body and the public URL called."""

    headers: Mapping[str, str]
    body: bytes
    url: str


class WebhookRejectedError(Exception):
    """The callback did not verify (signature, credentials) or is not one this provider sends."""


class StatusCallbacksUnsupportedError(Exception):
    """This provider sends no status callbacks (or Tidings does not read them yet)."""


class Sender(Protocol):
    async def send(self, integration: Integration, message: OutboundMessage) -> SendResult: ...


class CircuitBreaker(Protocol):
    """Per-integration health shared by every worker: an integration failing transiently too often is skipped (its
    circuit is open) until a probe send succeeds."""

    async def allow(self, integration_id: str) -> bool:
        """Whether to try this integration now (closed, or half-open and this caller holds the probe)."""
        ...

    async def record(self, integration_id: str, *, healthy: bool) -> None:
        """The outcome of a send that was allowed: a transient failure is unhealthy, any answer healthy."""
        ...
