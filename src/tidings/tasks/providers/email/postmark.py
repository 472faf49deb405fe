"""The Postmark provider (`postmark`): `POST /email` with the server's API token.

Postmark answers `{"MessageID": "...", "ErrorCode": 0, ...}`. A refusal is usually 422 with an `ErrorCode`: 406
(the recipient is inactive: it bounced hard or complained) and 300 when the problem is the `To` address are
BAD_ENDPOINT; the code is kept, the message is not (it quotes addresses).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tidings.core.net import origin
from tidings.engine.delivery import DeliveryError, OutboundMessage, SendResult
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
