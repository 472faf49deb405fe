"""The Twilio provider (`twilio`): Programmable Messaging's Message resource.

`POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic `AccountSid:AuthToken`, form body
`To`, `From` or `MessagingServiceSid`, `Body`. Twilio answers 201 with the Message resource; its `sid` (`SM…`) is
the provider message id. Errors are JSON `{"code": 21211, "message": …, "status": 400}`: only the numeric code is
kept, because the message quotes the phone number.

Status callbacks are form-encoded (`MessageSid`, `MessageStatus`, `ErrorCode`) and signed: `X-Twilio-Signature` is
base64(HMAC-SHA1(auth token, URL + every POST parameter's name and value in name order)). The URL is the setting
`status_callback_url` when set (it is then also each message's `StatusCallback`), else the URL the request reached.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from tidings.core.net import origin
from tidings.engine.delivery import (
    DeliveryError,
    DeliveryStatus,
    FailureKind,
    InboundWebhook,
    OutboundMessage,
    SendResult,
    StatusUpdate,
    WebhookRejectedError,
)
from tidings.integrations.sms_settings import TwilioSettings
from tidings.tasks.providers.base import HttpAnswer, HttpProvider
from tidings.tasks.providers.sms import recipient_phone, sms_body

# 21211: invalid 'To' phone number; 21614: 'To' is not a valid mobile number. Both condemn the subscriber's number.
BAD_NUMBER_CODES = frozenset({21211, 21614})
_SID = re.compile(r"^[A-Za-z0-9]{1,64}$")
_STATUS = re.compile(r"^[a-z_-]{1,32}$")

SIGNATURE_HEADER = "x-twilio-signature"
# Error codes of a callback that condemn the number: 30005 unknown destination, 30006 landline or unreachable
# carrier, and the send-time ones (21211 invalid number, 21614 not a mobile number).
HARD_ERROR_CODES = frozenset({30005, 30006}) | BAD_NUMBER_CODES
_FINAL_STATUSES = {
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.OPENED,  # WhatsApp read receipts
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
}


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _json_object(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


class TwilioProvider(HttpProvider[TwilioSettings]):
    service = "Twilio"

    async def send(self, settings: TwilioSettings, message: OutboundMessage) -> SendResult:
        to = recipient_phone(message)
        text = sms_body(message)
        form = {"To": to, "Body": text}
        if settings.from_number is not None:
            form["From"] = settings.from_number
        if settings.messaging_service_sid is not None:
            form["MessagingServiceSid"] = settings.messaging_service_sid
        if settings.status_callback_url is not None:
            form["StatusCallback"] = settings.status_callback_url
        url = (
            f"{settings.base_url.rstrip('/')}/2010-04-01/Accounts/{quote(settings.account_sid, safe='')}/Messages.json"
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "Authorization": basic_auth(settings.account_sid, settings.auth_token.get_secret_value()),
        }
        try:
            answer = await self.post(
                url,
                urlencode(form).encode(),
                headers,
                timeout_seconds=settings.timeout_seconds,
                subscriber_endpoint=False,
            )
        except DeliveryError as error:
            if error.detail.get("error") in BAD_NUMBER_CODES:
                raise DeliveryError(
                    f"Twilio refused the subscriber's phone number (error {error.detail['error']})",
                    kind=FailureKind.BAD_ENDPOINT,
                    detail=error.detail,
                ) from None
            raise
        document = _json_object(answer.text)
        sid = document.get("sid")
        detail: dict[str, Any] = {"status": answer.status, "endpoint": origin(url)}
        status = document.get("status")
        if isinstance(status, str) and _STATUS.match(status):
            detail["twilio_status"] = status  # queued, accepted, …
        return SendResult(
            provider_message_id=sid if isinstance(sid, str) and _SID.match(sid) else None,
            detail=detail,
        )

    def error_detail(self, answer: HttpAnswer) -> Mapping[str, Any]:
        code = _json_object(answer.text).get("code")
        return {"error": code} if isinstance(code, int) and not isinstance(code, bool) else {}

    def parse_status_webhook(self, settings: TwilioSettings, webhook: InboundWebhook) -> list[StatusUpdate]:
        try:
            params = parse_qsl(webhook.body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise WebhookRejectedError("the Twilio status callback is not a form") from None
        url = settings.status_callback_url or webhook.url
        expected = signature(settings.auth_token.get_secret_value(), url, params)
        given = _header(webhook, SIGNATURE_HEADER) or ""
        if not hmac.compare_digest(expected.encode(), given.encode()):
            raise WebhookRejectedError("the Twilio status callback signature does not verify")
        form = dict(params)
        sid, status = form.get("MessageSid") or form.get("SmsSid"), form.get("MessageStatus")
        if not sid or not _SID.match(sid) or status not in _FINAL_STATUSES:
            return []  # queued, sending, sent, accepted…: no news
        code = form.get("ErrorCode", "")
        reason = code if code.isdigit() and len(code) <= 6 else None
        return [
            StatusUpdate(
                provider_message_id=sid,
                status=_FINAL_STATUSES[status],
                occurred_at=datetime.now(UTC),  # Twilio's callbacks carry no time
                hard=status in {"undelivered", "failed"} and reason is not None and int(reason) in HARD_ERROR_CODES,
                reason=reason if _FINAL_STATUSES[status] is DeliveryStatus.FAILED else None,
            )
        ]


def signature(auth_token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Twilio's request signature: base64(HMAC-SHA1(auth token, URL + each name and value, sorted by name))."""
    payload = url + "".join(name + value for name, value in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()).decode("ascii")


def _header(webhook: InboundWebhook, name: str) -> str | None:
    value = webhook.headers.get(name)
    if value is None:
        value = next((item for key, item in webhook.headers.items() if key.lower() == name), None)
    return value
