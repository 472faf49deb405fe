"""SMS providers: Twilio, Vonage and a generic signed SMS webhook, plus what they share.

Every SMS provider sends `content["body"]` to the subscriber's `phone`, normalised to E.164 (`+` and 7 to 15
digits; spaces, dashes, dots and brackets are dropped, a leading `00` becomes `+`). No phone is PERMANENT (there is
nothing to stop using); a phone that is not E.164 is BAD_ENDPOINT. Neither message quotes the number or the body.
"""

from __future__ import annotations

import re

from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage

_SEPARATORS = str.maketrans("", "", " \t-.()\u00a0")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def recipient_phone(message: OutboundMessage) -> str:
    """The subscriber's phone in E.164 (`+15005550006`), or DeliveryError."""
    phone = message.recipient.phone
    if phone is None or not phone.strip():
        raise DeliveryError("the subscriber has no phone number", kind=FailureKind.PERMANENT)
    number = phone.strip().translate(_SEPARATORS)
    if number.startswith("00"):
        number = "+" + number[2:]
    if not _E164.match(number):
        raise DeliveryError(
            "the subscriber's phone number is not in E.164 form (+<country code><number>)",
            kind=FailureKind.BAD_ENDPOINT,
        )
    return number


def sms_body(message: OutboundMessage) -> str:
    """The rendered text, or a PERMANENT DeliveryError when there is none."""
    body = message.content.get("body")
    if not isinstance(body, str) or not body.strip():
        raise DeliveryError("sms content has no body", kind=FailureKind.PERMANENT)
    return body
