"""The generic SMS webhook provider (`sms-webhook`): the text message as signed JSON to a URL the integration names.

For an SMS gateway of your own. The body is `{"to", "body", "subscriberId", "transactionId", "idempotencyKey",
"metadata"}`, signed and keyed exactly like the chat webhook (`X-Tidings-Signature`, `X-Tidings-Idempotency-Key`;
see `tidings.tasks.providers.chat.webhook`). A JSON answer with a string `id` or `messageId` gives the provider
message id.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from tidings.core.net import origin
from tidings.engine.delivery import OutboundMessage, SendResult
from tidings.integrations.sms_settings import SmsWebhookSettings
from tidings.tasks.providers.base import HttpProvider
from tidings.tasks.providers.chat.webhook import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, signature
from tidings.tasks.providers.sms import recipient_phone, sms_body

_MESSAGE_ID = re.compile(r"^[\x21-\x7e]{1,256}$")  # printable ASCII, no spaces


def sms_webhook_body(message: OutboundMessage, to: str, text: str) -> bytes:
    document: dict[str, Any] = {
        "to": to,
        "body": text,
        "subscriberId": message.recipient.subscriber_id,
        "transactionId": message.metadata.get("transactionId"),
        "idempotencyKey": message.idempotency_key,
        "metadata": dict(message.metadata),
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def answered_id(text: str) -> str | None:
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    for key in ("id", "messageId"):
        value = document.get(key)
        if isinstance(value, str) and _MESSAGE_ID.match(value):
            return value
    return None


class SmsWebhookProvider(HttpProvider[SmsWebhookSettings]):
    service = "SMS webhook"

    async def send(self, settings: SmsWebhookSettings, message: OutboundMessage) -> SendResult:
        to = recipient_phone(message)
        text = sms_body(message)
        body = sms_webhook_body(message, to, text)
        # The same key on every retry lets the receiver drop a delivery it already processed.
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: message.idempotency_key}
        if settings.signing_secret is not None:
            headers[SIGNATURE_HEADER] = signature(settings.signing_secret.get_secret_value(), int(time.time()), body)
        answer = await self.post(
            settings.url,
            body,
            headers,
            timeout_seconds=settings.timeout_seconds,
            subscriber_endpoint=False,
        )
        return SendResult(
            provider_message_id=answered_id(answer.text),
            detail={"status": answer.status, "endpoint": origin(settings.url)},
        )
