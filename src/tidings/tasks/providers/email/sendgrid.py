"""The SendGrid provider (`sendgrid`): `POST /v3/mail/send` of the v3 Web API.

SendGrid answers 202 with an empty body and names the message in the `X-Message-Id` header.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tidings.core.net import origin
from tidings.engine.delivery import DeliveryError, OutboundMessage, SendResult
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
