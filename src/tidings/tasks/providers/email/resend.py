"""The Resend provider (`resend`): `POST /emails` with a bearer API key and an `Idempotency-Key`.

Resend keeps an idempotency key for 24 hours: a retry with the same key gets the first answer and sends nothing
again. It answers `{"id": "..."}`; errors are `{"statusCode": 422, "name": "validation_error", "message": "..."}`,
of which the `name` is kept.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from tidings.core.net import origin
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, SendResult
from tidings.integrations.email_settings import ResendSettings
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

PATH = "/emails"
MAX_IDEMPOTENCY_KEY = 256
_ERROR_NAME = re.compile(r"^[a-z_]{1,64}$")
# Tag names and values: ASCII letters, digits, "_" and "-", up to 256 characters.
_TAG = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# "Invalid `to` field. The email address needs to follow the `email@example.com` … format."
_TO_REFUSED = re.compile(r"`to`")
# Another request with the same key is still running: the first one's answer will come; ask again later.
_IN_PROGRESS = "concurrent_idempotent_requests"


def idempotency_key(key: str) -> str:
    """The job's key, or its SHA-256 when it is longer than Resend takes."""
    return key if 0 < len(key) <= MAX_IDEMPOTENCY_KEY else hashlib.sha256(key.encode()).hexdigest()


def resend_body(settings: ResendSettings, message: OutboundMessage) -> dict[str, Any]:
    parts = email_parts(message)
    body: dict[str, Any] = {
        "from": mailbox(settings.from_email, settings.from_name),
        "to": [mailbox(parts.to_email, parts.to_name)],
        "subject": parts.subject,
        "text": parts.text,
    }
    if parts.html:
        body["html"] = parts.html
    tags = custom_args(message, max_fields=10, max_key=256, max_value=256, value=_TAG)
    if tags:
        body["tags"] = [{"name": name, "value": value} for name, value in tags.items()]
    return body


class ResendProvider(HttpProvider[ResendSettings]):
    service = "Resend"

    async def send(self, settings: ResendSettings, message: OutboundMessage) -> SendResult:
        body = json.dumps(resend_body(settings, message), ensure_ascii=False).encode()
        url = settings.base_url.rstrip("/") + PATH
        headers = {
            "Authorization": f"Bearer {settings.api_key.get_secret_value()}",
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key(message.idempotency_key),
        }
        try:
            answer = await self.post(
                url, body, headers, timeout_seconds=settings.timeout_seconds, subscriber_endpoint=False
            )
        except DeliveryError as error:
            if error.detail.get("error") == _IN_PROGRESS:
                raise DeliveryError(
                    "Resend is still processing an earlier attempt of this email",
                    kind=FailureKind.TRANSIENT,
                    detail=error.detail,
                ) from None
            raise recipient_refused(self.service, error) from None
        return SendResult(
            provider_message_id=string_field(json_document(answer.text), "id"),
            detail={"status": answer.status, "endpoint": origin(url)},
        )

    def error_detail(self, answer: HttpAnswer) -> Mapping[str, Any]:
        document = json_document(answer.text)
        name = string_field(document, "name")
        if name is None or not _ERROR_NAME.match(name):
            return {}
        detail: dict[str, Any] = {"error": name}
        if name == "validation_error" and _TO_REFUSED.search(string_field(document, "message") or ""):
            detail.update(SUBSCRIBER_TARGET)
        return detail
