"""The Twilio provider (`twilio`): Programmable Messaging's Message resource.

`POST {base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic `AccountSid:AuthToken`, form body
`To`, `From` or `MessagingServiceSid`, `Body`. Twilio answers 201 with the Message resource; its `sid` (`SM…`) is
the provider message id. Errors are JSON `{"code": 21211, "message": …, "status": 400}`: only the numeric code is
kept, because the message quotes the phone number.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from tidings.core.net import origin
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, SendResult
from tidings.integrations.sms_settings import TwilioSettings
from tidings.tasks.providers.base import HttpAnswer, HttpProvider
from tidings.tasks.providers.sms import recipient_phone, sms_body

# 21211: invalid 'To' phone number; 21614: 'To' is not a valid mobile number. Both condemn the subscriber's number.
BAD_NUMBER_CODES = frozenset({21211, 21614})
_SID = re.compile(r"^[A-Za-z0-9]{1,64}$")
_STATUS = re.compile(r"^[a-z_-]{1,32}$")


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
