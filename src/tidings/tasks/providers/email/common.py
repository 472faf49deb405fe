"""What the HTTP-API email providers (SendGrid, Postmark, Resend, Mailgun) share: the email's parts, checked once.

The addresses are checked before anything is sent, so that nothing a subscriber typed can add a recipient or a
header to the request, and the provider's answer that the recipient is invalid becomes a BAD_ENDPOINT failure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.headerregistry import Address
from types import MappingProxyType

from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage
from tidings.tasks.providers.email.smtp import plain_text

# One "@", no whitespace or characters that separate or quote addresses; the service checks the rest.
_ADDRESS = re.compile(r"^[^\s@<>,;:\"()\[\]\\]{1,64}@[^\s@<>,;:\"()\[\]\\]{1,253}$")
_MAX_NAME = 128
# `metadata` keys the services can take as custom-argument names.
METADATA_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
# The marker a provider's `error_detail` leaves when the service blamed the recipient's address.
SUBSCRIBER_TARGET: Mapping[str, str] = MappingProxyType({"target": "subscriber"})


@dataclass(frozen=True, slots=True)
class EmailParts:
    to_email: str
    to_name: str | None
    subject: str
    html: str | None
    text: str  # derived from the HTML when the step has none


def email_parts(message: OutboundMessage) -> EmailParts:
    """The recipient and content, or PERMANENT (no address, no body) / BAD_ENDPOINT (an address that is not one)."""
    to = message.recipient.email
    if not to or not to.strip():
        raise DeliveryError("the subscriber has no email address", kind=FailureKind.PERMANENT)
    to = to.strip()
    if len(to) > 254 or not _ADDRESS.match(to):
        raise DeliveryError(
            "the subscriber's email address is not valid", kind=FailureKind.BAD_ENDPOINT, detail=SUBSCRIBER_TARGET
        )
    content = message.content
    html = content.get("html") if isinstance(content.get("html"), str) else None
    text = content.get("text") if isinstance(content.get("text"), str) else None
    if not html and not text:
        raise DeliveryError("email content has neither html nor text", kind=FailureKind.PERMANENT)
    subject = content.get("subject")
    names = (message.recipient.first_name, message.recipient.last_name)
    to_name = " ".join(" ".join(part for part in names if part).split())[:_MAX_NAME] or None
    return EmailParts(
        to_email=to,
        to_name=to_name,
        subject=" ".join(subject.split()) if isinstance(subject, str) else "",
        html=html or None,
        text=text or plain_text(html or ""),
    )


def mailbox(email: str, name: str | None) -> str:
    """`Name <email>`, the name quoted when it holds punctuation; BAD_ENDPOINT if the address does not parse."""
    try:
        return str(Address(display_name=" ".join((name or "").split()), addr_spec=email))
    except (ValueError, IndexError):
        raise DeliveryError(
            "the subscriber's email address is not valid", kind=FailureKind.BAD_ENDPOINT, detail=SUBSCRIBER_TARGET
        ) from None


def custom_args(
    message: OutboundMessage, *, max_fields: int, max_key: int, max_value: int, value: re.Pattern[str] | None = None
) -> dict[str, str]:
    """`idempotencyKey` and the job's metadata (transactionId, workflowId…) within a service's limits.

    Services echo these in their event webhooks, which ties a bounce or an open back to the job. Entries that do not
    fit are left out rather than have the service refuse the email.
    """
    entries: dict[str, str] = {"idempotencyKey": message.idempotency_key, **message.metadata}
    kept: dict[str, str] = {}
    for key, item in entries.items():
        if len(kept) >= max_fields:
            break
        if (
            METADATA_KEY.match(key)
            and len(key) <= max_key
            and isinstance(item, str)
            and 0 < len(item) <= max_value
            and (value is None or value.match(item))
        ):
            kept[key] = item
    return kept


def recipient_refused(service: str, error: DeliveryError) -> DeliveryError:
    """`error` as BAD_ENDPOINT when the provider's `error_detail` found that the service blamed the recipient."""
    if error.kind is FailureKind.PERMANENT and error.detail.get("target") == "subscriber":
        return DeliveryError(
            f"{service} refused the subscriber's email address",
            kind=FailureKind.BAD_ENDPOINT,
            detail=error.detail,
        )
    return error


def string_field(document: object, key: str) -> str | None:
    """`document[key]` when `document` is a JSON object and that is a non-empty string."""
    if isinstance(document, Mapping):
        item = document.get(key)
        if isinstance(item, str) and item:
            return item
    return None


def json_document(text: str) -> object:
    """The answer's JSON, or None when it is not JSON (or was cut off at the size cap)."""
    try:
        document: object = json.loads(text)
    except ValueError:
        return None
    return document
