"""The Mailgun provider (`mailgun`): `POST /v3/{domain}/messages`, a form, with HTTP Basic `api:<API key>`.

The region is the `base_url`: https://api.mailgun.net (US) or https://api.eu.mailgun.net (EU). Mailgun answers
`{"id": "<...@domain>", "message": "Queued. Thank you."}`; its errors are only a `message` in English, so none of
it is stored, and an answer that the `to` address is not valid becomes BAD_ENDPOINT.

Status callbacks are Mailgun's webhooks: JSON `{"signature": {...}, "event-data": {...}}`, verified with the
account's webhook signing key (HMAC-SHA256 of timestamp + token; required: callbacks are rejected without the key)
and refused when the timestamp is more than 15 minutes away. Their message id lacks the angle brackets the send's
id has; they are put back so the two match.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

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
from tidings.integrations.email_settings import MailgunSettings
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

# "to parameter is not a valid address. please check documentation"
_TO_REFUSED = re.compile(r"\bto'? parameter is not a valid address", re.IGNORECASE)
_MAX_VARIABLE = 256  # Mailgun allows 16 KB of o:, h:, v: and t: options in all

MAX_CALLBACK_AGE_SECONDS = 15 * 60
_SIMPLE_EVENTS = {
    "delivered": DeliveryStatus.DELIVERED,
    "opened": DeliveryStatus.OPENED,
    "clicked": DeliveryStatus.CLICKED,
}
# Permanent failures that are the recipient's choice, not a dead address.
_OPTED_OUT = frozenset({"suppress-unsubscribe", "suppress-complaint"})
_REASON = re.compile(r"^[a-z-]{1,40}$")


def messages_url(settings: MailgunSettings) -> str:
    return f"{settings.base_url.rstrip('/')}/v3/{quote(settings.domain, safe='')}/messages"


def basic_auth(api_key: str) -> str:
    return "Basic " + base64.b64encode(f"api:{api_key}".encode()).decode("ascii")


def mailgun_form(settings: MailgunSettings, message: OutboundMessage) -> list[tuple[str, str]]:
    parts = email_parts(message)
    form = [
        ("from", mailbox(settings.from_email, settings.from_name)),
        ("to", mailbox(parts.to_email, parts.to_name)),
        ("subject", parts.subject),
        ("text", parts.text),
    ]
    if parts.html:
        form.append(("html", parts.html))
    # User variables: Mailgun returns them in its events and webhooks as user-variables.
    variables = custom_args(message, max_fields=16, max_key=64, max_value=_MAX_VARIABLE)
    form.extend((f"v:{name}", value) for name, value in variables.items())
    return form


class MailgunProvider(HttpProvider[MailgunSettings]):
    service = "Mailgun"

    async def send(self, settings: MailgunSettings, message: OutboundMessage) -> SendResult:
        body = urlencode(mailgun_form(settings, message)).encode("ascii")
        url = messages_url(settings)
        headers = {
            "Authorization": basic_auth(settings.api_key.get_secret_value()),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        try:
            answer = await self.post(
                url, body, headers, timeout_seconds=settings.timeout_seconds, subscriber_endpoint=False
            )
        except DeliveryError as error:
            raise recipient_refused(self.service, error) from None
        return SendResult(
            provider_message_id=string_field(json_document(answer.text), "id"),
            detail={"status": answer.status, "endpoint": origin(url)},
        )

    def error_detail(self, answer: HttpAnswer) -> Mapping[str, Any]:
        if answer.status == 400 and _TO_REFUSED.search(string_field(json_document(answer.text), "message") or ""):
            return SUBSCRIBER_TARGET
        return {}

    def parse_status_webhook(self, settings: MailgunSettings, webhook: InboundWebhook) -> list[StatusUpdate]:
        if settings.webhook_signing_key is None:
            raise WebhookRejectedError("Mailgun callbacks need the integration's webhook signing key")
        try:
            document = json.loads(webhook.body)
        except ValueError:
            raise WebhookRejectedError("the Mailgun webhook body is not JSON") from None
        if not isinstance(document, dict):
            raise WebhookRejectedError("the Mailgun webhook body is not a JSON object")
        verify_signature(settings.webhook_signing_key.get_secret_value(), document.get("signature"))
        event = document.get("event-data")
        if not isinstance(event, dict):
            raise WebhookRejectedError("the Mailgun webhook has no event-data")
        update = status_update(event)
        return [update] if update is not None else []


def verify_signature(signing_key: str, signature: object, *, now: float | None = None) -> None:
    """HMAC-SHA256(signing key, timestamp + token) in hex, for a timestamp within 15 minutes of now."""
    if not isinstance(signature, dict):
        raise WebhookRejectedError("the Mailgun webhook is not signed")
    timestamp, token, digest = (signature.get(key) for key in ("timestamp", "token", "signature"))
    if isinstance(timestamp, int) and not isinstance(timestamp, bool):
        timestamp = str(timestamp)
    if not (isinstance(timestamp, str) and isinstance(token, str) and isinstance(digest, str)):
        raise WebhookRejectedError("the Mailgun webhook is not signed")
    expected = hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), digest.encode()):
        raise WebhookRejectedError("the Mailgun webhook signature does not verify")
    if not timestamp.isdigit() or abs((time.time() if now is None else now) - int(timestamp)) > (
        MAX_CALLBACK_AGE_SECONDS
    ):
        raise WebhookRejectedError("the Mailgun webhook's timestamp is not within 15 minutes of now")


def send_message_id(message_id: str) -> str:
    """The id as the send returned it: `<...@domain>`."""
    message_id = message_id.strip()
    return message_id if message_id.startswith("<") else f"<{message_id}>"


def status_update(event: Mapping[str, Any]) -> StatusUpdate | None:
    """The StatusUpdate of one event, or None for events that change no status (accepted, temporary failures…)."""
    kind = event.get("event")
    message = event.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    message_id = string_field(headers, "message-id")
    if not isinstance(kind, str) or message_id is None:
        return None
    hard, reason = False, None
    if kind in _SIMPLE_EVENTS:
        status = _SIMPLE_EVENTS[kind]
    elif kind == "complained":
        status = DeliveryStatus.FAILED
    elif kind == "failed" and event.get("severity") == "permanent":
        # A temporary failure is retried by Mailgun; a permanent one after its retries arrives as its own event.
        why = event.get("reason")
        if isinstance(why, str) and why in _OPTED_OUT:
            status, reason = DeliveryStatus.FAILED, why
        else:
            status, hard, reason = DeliveryStatus.BOUNCED, True, _smtp_code(event.get("delivery-status"))
            if reason is None and isinstance(why, str) and _REASON.match(why):
                reason = why
    else:
        return None
    return StatusUpdate(
        provider_message_id=send_message_id(message_id),
        status=status,
        occurred_at=_occurred_at(event.get("timestamp")),
        hard=hard,
        reason=reason,
    )


def _smtp_code(delivery_status: object) -> str | None:
    code = delivery_status.get("code") if isinstance(delivery_status, dict) else None
    if isinstance(code, int) and not isinstance(code, bool) and 0 <= code <= 999:
        return str(code)
    return None


def _occurred_at(timestamp: object) -> datetime:
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
        try:
            return datetime.fromtimestamp(timestamp, UTC)
        except (OverflowError, OSError, ValueError):
            pass
    return datetime.now(UTC)
