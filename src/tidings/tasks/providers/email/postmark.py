"""The Postmark provider (`postmark`): `POST /email` with the server's API token.

Postmark answers `{"MessageID": "...", "ErrorCode": 0, ...}`. A refusal is usually 422 with an `ErrorCode`: 406
(the recipient is inactive: it bounced hard or complained) and 300 when the problem is the `To` address are
BAD_ENDPOINT; the code is kept, the message is not (it quotes addresses).

Status callbacks are Postmark's webhooks, one JSON object per request with a `RecordType` and the send's
`MessageID`. With `webhook_username`/`webhook_password` set (the credentials put in the webhook URL), the request's
Basic Authorization must match; without them callbacks are accepted unverified.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tidings.core.net import origin
from tidings.engine.delivery import (
    DeliveryError,
    DeliveryStatus,
    InboundWebhook,
    OutboundMessage,
    SendResult,
    StatusUpdate,
    WebhookRejectedError,
)
from tidings.integrations.email_settings import PostmarkSettings
from tidings.tasks.providers.base import HttpAnswer, HttpProvider
from tidings.tasks.providers.email.common import (
    SUBSCRIBER_TARGET,
    custom_args,
    email_parts,
    json_document,
    mailbox,
    recipient_refused,
    string_field,
)

PATH = "/email"
INACTIVE_RECIPIENT = 406
INVALID_EMAIL_REQUEST = 300
# Code 300 covers any invalid request (no body, too many recipients, a bad From…); it is about the recipient when
# the message names the To field: "Error parsing 'To': Illegal email address …", "Invalid 'To' address: …".
_TO_REFUSED = re.compile(r"'To'")
# Postmark's metadata limits: 10 fields, names up to 20 characters, values up to 80.
_MAX_FIELDS, _MAX_KEY, _MAX_VALUE = 10, 20, 80

# RecordType → (status, the field holding when it happened).
_RECORDS = {
    "Delivery": (DeliveryStatus.DELIVERED, "DeliveredAt"),
    "Bounce": (DeliveryStatus.BOUNCED, "BouncedAt"),
    "Open": (DeliveryStatus.OPENED, "ReceivedAt"),
    "Click": (DeliveryStatus.CLICKED, "ReceivedAt"),
    "SpamComplaint": (DeliveryStatus.FAILED, "BouncedAt"),
}
HARD_BOUNCE = "HardBounce"
# Bounce types are names like "HardBounce", "SoftBounce", "DnsError": safe to keep as the reason.
_BOUNCE_TYPE = re.compile(r"^[A-Za-z]{1,40}$")


def postmark_body(settings: PostmarkSettings, message: OutboundMessage) -> dict[str, Any]:
    parts = email_parts(message)
    body: dict[str, Any] = {
        "From": mailbox(settings.from_email, settings.from_name),
        "To": mailbox(parts.to_email, parts.to_name),
        "Subject": parts.subject,
        "TextBody": parts.text,
        "Metadata": custom_args(message, max_fields=_MAX_FIELDS, max_key=_MAX_KEY, max_value=_MAX_VALUE),
    }
    if parts.html:
        body["HtmlBody"] = parts.html
    if settings.message_stream:
        body["MessageStream"] = settings.message_stream
    return body


class PostmarkProvider(HttpProvider[PostmarkSettings]):
    service = "Postmark"

    async def send(self, settings: PostmarkSettings, message: OutboundMessage) -> SendResult:
        body = json.dumps(postmark_body(settings, message), ensure_ascii=False).encode()
        url = settings.base_url.rstrip("/") + PATH
        headers = {
            "X-Postmark-Server-Token": settings.server_token.get_secret_value(),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        try:
            answer = await self.post(
                url, body, headers, timeout_seconds=settings.timeout_seconds, subscriber_endpoint=False
            )
        except DeliveryError as error:
            raise recipient_refused(self.service, error) from None
        return SendResult(
            provider_message_id=string_field(json_document(answer.text), "MessageID"),
            detail={"status": answer.status, "endpoint": origin(url)},
        )

    def error_detail(self, answer: HttpAnswer) -> Mapping[str, Any]:
        document = json_document(answer.text)
        code = document.get("ErrorCode") if isinstance(document, dict) else None
        if not isinstance(code, int) or isinstance(code, bool):
            return {}
        detail: dict[str, Any] = {"error_code": code}
        if code == INACTIVE_RECIPIENT:
            detail.update(SUBSCRIBER_TARGET)
        elif code == INVALID_EMAIL_REQUEST:
            reason = string_field(document, "Message") or ""
            if _TO_REFUSED.search(reason):
                detail.update(SUBSCRIBER_TARGET)
        return detail

    def parse_status_webhook(self, settings: PostmarkSettings, webhook: InboundWebhook) -> list[StatusUpdate]:
        if settings.webhook_username is not None and settings.webhook_password is not None:
            expected = basic_credentials(settings.webhook_username, settings.webhook_password.get_secret_value())
            given = _header(webhook, "authorization") or ""
            if not hmac.compare_digest(given.encode(), expected.encode()):
                raise WebhookRejectedError("the Postmark webhook's credentials do not match")
        try:
            document = json.loads(webhook.body)
        except ValueError:
            raise WebhookRejectedError("the Postmark webhook body is not JSON") from None
        records = document if isinstance(document, list) else [document]
        if not all(isinstance(record, dict) for record in records):
            raise WebhookRejectedError("the Postmark webhook body is not a JSON object")
        return [update for record in records if (update := status_update(record)) is not None]


def basic_credentials(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _header(webhook: InboundWebhook, name: str) -> str | None:
    value = webhook.headers.get(name)
    if value is None:
        value = next((item for key, item in webhook.headers.items() if key.lower() == name), None)
    return value


def status_update(record: Mapping[str, Any]) -> StatusUpdate | None:
    """The StatusUpdate of one webhook record, or None for record types that change no status."""
    kind = record.get("RecordType")
    message_id = string_field(record, "MessageID")
    if not isinstance(kind, str) or kind not in _RECORDS or message_id is None:
        return None
    status, time_field = _RECORDS[kind]
    hard, reason = False, None
    if kind == "Bounce":
        bounce_type = record.get("Type")
        hard = bounce_type == HARD_BOUNCE
        reason = bounce_type if isinstance(bounce_type, str) and _BOUNCE_TYPE.match(bounce_type) else None
    elif kind == "SpamComplaint":
        reason = "SpamComplaint"
    return StatusUpdate(
        provider_message_id=message_id,
        status=status,
        occurred_at=_occurred_at(record.get(time_field)),
        hard=hard,
        reason=reason,
    )


def _occurred_at(value: object) -> datetime:
    # "2019-11-05T16:33:54.9070259Z": seven fractional digits, which fromisoformat cuts to microseconds.
    if isinstance(value, str) and len(value) <= 64:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return datetime.now(UTC)
