"""The SendGrid provider (`sendgrid`): `POST /v3/mail/send` of the v3 Web API.

SendGrid answers 202 with an empty body and names the message in the `X-Message-Id` header.

Status callbacks are the Event Webhook: a JSON array of events, each with an `sg_message_id` that is the send's
X-Message-Id followed by ".filter…". With `event_webhook_public_key` set (the Signed Event Webhook), the ECDSA P-256
signature over `timestamp + raw body` must verify; without it callbacks are accepted unverified.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

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
from tidings.integrations.email_settings import SendGridSettings
from tidings.tasks.providers.base import HttpAnswer, HttpProvider
from tidings.tasks.providers.email.common import (
    SUBSCRIBER_TARGET,
    custom_args,
    email_parts,
    json_document,
    recipient_refused,
)

PATH = "/v3/mail/send"
MESSAGE_ID_HEADER = "x-message-id"
# A field path of SendGrid's error list, e.g. "personalizations.0.to.0.email": names our request, never content.
_FIELD = re.compile(r"^[A-Za-z0-9_.\[\]-]{1,128}$")
_RECIPIENT_FIELD = re.compile(r"^personalizations\.\d+\.to\.\d+\.email$")
_MAX_ERROR_FIELDS = 5
# SendGrid allows 10,000 bytes of custom_args in all.
_MAX_ARG_VALUE = 256
_MAX_ARGS = 16

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
# An SMTP enhanced status code ("5.1.1") or reply code ("550"): safe to keep, unlike `reason` and `response`.
_SMTP_CODE = re.compile(r"^\d{3}$|^\d\.\d{1,3}\.\d{1,3}$")
# Bounces SendGrid classifies as the sender's problem, not the address's: they do not condemn the address.
_SENDER_BOUNCES = frozenset({"Technical", "Content", "Reputation", "Frequency/Volume"})
_SIMPLE_EVENTS = {"delivered": DeliveryStatus.DELIVERED, "open": DeliveryStatus.OPENED, "click": DeliveryStatus.CLICKED}


def sendgrid_body(settings: SendGridSettings, message: OutboundMessage) -> dict[str, Any]:
    parts = email_parts(message)
    to: dict[str, str] = {"email": parts.to_email}
    if parts.to_name:
        to["name"] = parts.to_name
    sender: dict[str, str] = {"email": settings.from_email}
    if settings.from_name:
        sender["name"] = settings.from_name
    # SendGrid requires text/plain first, then text/html.
    content = [{"type": "text/plain", "value": parts.text}]
    if parts.html:
        content.append({"type": "text/html", "value": parts.html})
    return {
        "personalizations": [{"to": [to]}],
        "from": sender,
        "subject": parts.subject,
        "content": content,
        "custom_args": custom_args(message, max_fields=_MAX_ARGS, max_key=64, max_value=_MAX_ARG_VALUE),
    }


class SendGridProvider(HttpProvider[SendGridSettings]):
    service = "SendGrid"

    async def send(self, settings: SendGridSettings, message: OutboundMessage) -> SendResult:
        body = json.dumps(sendgrid_body(settings, message), ensure_ascii=False).encode()
        url = settings.base_url.rstrip("/") + PATH
        headers = {
            "Authorization": f"Bearer {settings.api_key.get_secret_value()}",
            "Content-Type": "application/json",
        }
        try:
            answer = await self.post(
                url, body, headers, timeout_seconds=settings.timeout_seconds, subscriber_endpoint=False
            )
        except DeliveryError as error:
            raise recipient_refused(self.service, error) from None
        return SendResult(
            provider_message_id=answer.headers.get(MESSAGE_ID_HEADER) or None,
            detail={"status": answer.status, "endpoint": origin(url)},
        )

    def error_detail(self, answer: HttpAnswer) -> Mapping[str, Any]:
        # {"errors": [{"message": "...", "field": "personalizations.0.to.0.email", "help": "..."}]}: keep the fields.
        document = json_document(answer.text)
        errors = document.get("errors") if isinstance(document, dict) else None
        if not isinstance(errors, list):
            return {}
        fields = [
            error["field"]
            for error in errors
            if isinstance(error, dict) and isinstance(error.get("field"), str) and _FIELD.match(error["field"])
        ][:_MAX_ERROR_FIELDS]
        if not fields:
            return {}
        detail: dict[str, Any] = {"fields": fields}
        if answer.status == 400 and any(_RECIPIENT_FIELD.match(field) for field in fields):
            detail.update(SUBSCRIBER_TARGET)
        return detail

    def parse_status_webhook(self, settings: SendGridSettings, webhook: InboundWebhook) -> list[StatusUpdate]:
        if settings.event_webhook_public_key is not None:
            verify_signature(settings.event_webhook_public_key, webhook)
        try:
            events = json.loads(webhook.body)
        except ValueError:
            raise WebhookRejectedError("the SendGrid event webhook body is not JSON") from None
        if not isinstance(events, list):
            raise WebhookRejectedError("the SendGrid event webhook body is not a JSON array of events")
        return [update for event in events if (update := status_update(event)) is not None]


def _header(webhook: InboundWebhook, name: str) -> str | None:
    value = webhook.headers.get(name)
    if value is None:
        value = next((item for key, item in webhook.headers.items() if key.lower() == name), None)
    return value


def verify_signature(public_key: str, webhook: InboundWebhook) -> None:
    """The Signed Event Webhook: ECDSA P-256 / SHA-256 over the timestamp header then the raw body."""
    signature = _header(webhook, SIGNATURE_HEADER)
    timestamp = _header(webhook, TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise WebhookRejectedError("the SendGrid event webhook is not signed")
    key = load_der_public_key(base64.b64decode(public_key))
    if not isinstance(key, ec.EllipticCurvePublicKey):  # the settings model only admits P-256 keys
        raise WebhookRejectedError("the SendGrid verification key is not an ECDSA key")
    try:
        key.verify(
            base64.b64decode(signature, validate=True),
            timestamp.encode() + webhook.body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise WebhookRejectedError("the SendGrid event webhook signature does not verify") from None


def status_update(event: object) -> StatusUpdate | None:
    """The StatusUpdate of one event, or None for events that change no status (processed, deferred, …)."""
    if not isinstance(event, dict):
        return None
    kind = event.get("event")
    sg_message_id = event.get("sg_message_id")
    if not isinstance(kind, str) or not isinstance(sg_message_id, str) or not sg_message_id:
        return None
    message_id = sg_message_id.split(".", 1)[0]
    if not message_id:
        return None
    code = event.get("status")
    reason = code if isinstance(code, str) and _SMTP_CODE.match(code) else None
    if kind in _SIMPLE_EVENTS:
        status, hard, reason = _SIMPLE_EVENTS[kind], False, None
    elif kind == "bounce":
        # type "bounce": the receiving server refused the address for good; "blocked": a temporary refusal.
        hard = event.get("type", "bounce") == "bounce" and event.get("bounce_classification") not in _SENDER_BOUNCES
        status = DeliveryStatus.BOUNCED
    elif kind == "dropped":
        status, hard = DeliveryStatus.FAILED, False
    else:
        return None
    return StatusUpdate(
        provider_message_id=message_id,
        status=status,
        occurred_at=_occurred_at(event.get("timestamp")),
        hard=hard,
        reason=reason,
    )


def _occurred_at(timestamp: object) -> datetime:
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
        try:
            return datetime.fromtimestamp(timestamp, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return datetime.now(UTC)
