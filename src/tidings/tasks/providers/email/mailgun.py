"""The Mailgun provider (`mailgun`): `POST /v3/{domain}/messages`, a form, with HTTP Basic `api:<API key>`.

The region is the `base_url`: https://api.mailgun.net (US) or https://api.eu.mailgun.net (EU). Mailgun answers
`{"id": "<...@domain>", "message": "Queued. Thank you."}`; its errors are only a `message` in English, so none of
it is stored, and an answer that the `to` address is not valid becomes BAD_ENDPOINT.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from tidings.core.net import origin
from tidings.engine.delivery import DeliveryError, OutboundMessage, SendResult
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
