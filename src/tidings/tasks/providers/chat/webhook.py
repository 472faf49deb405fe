"""The generic webhook provider (`webhook`): the rendered message as signed JSON to a URL the integration names.

Signature: `X-Tidings-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. The timestamp
inside the signed text lets receivers refuse replays older than a few minutes; docs/providers.md shows a check.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from tidings.core.net import origin
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, SendResult
from tidings.integrations.providers import WebhookSettings
from tidings.tasks.providers.base import HttpProvider

SIGNATURE_HEADER = "X-Tidings-Signature"
IDEMPOTENCY_HEADER = "X-Tidings-Idempotency-Key"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The value of the signature header for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_body(message: OutboundMessage) -> bytes:
    document: dict[str, Any] = {
        "subscriberId": message.recipient.subscriber_id,
        "channel": str(message.channel),
        "content": dict(message.content),
        "metadata": dict(message.metadata),
        "idempotencyKey": message.idempotency_key,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


class WebhookProvider(HttpProvider[WebhookSettings]):
    service = "webhook"

    async def send(self, settings: WebhookSettings, message: OutboundMessage) -> SendResult:
        try:
            body = webhook_body(message)
        except (TypeError, ValueError):
            # The message names no value: they are the message's content.
            raise DeliveryError("message content is not JSON", kind=FailureKind.PERMANENT) from None
        # The same key on every retry lets the receiver drop a delivery it already processed.
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: message.idempotency_key}
        if settings.signing_secret is not None:
            secret = settings.signing_secret.get_secret_value()
            headers[SIGNATURE_HEADER] = signature(secret, int(time.time()), body)
        answer = await self.post(
            settings.url,
            body,
            headers,
            timeout_seconds=settings.timeout_seconds,
            subscriber_endpoint=False,
        )
        return SendResult(provider_message_id=None, detail={"status": answer.status, "endpoint": origin(settings.url)})
