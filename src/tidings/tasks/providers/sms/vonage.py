"""The Vonage provider (`vonage`): the SMS API.

`POST {base_url}/sms/json` (`https://rest.nexmo.com`), form body `api_key`, `api_secret`, `from`, `to` (E.164
without the `+`), `text`, `type` (`unicode` when the text has characters outside the GSM 03.38 alphabet, so they
arrive intact) and `client-ref` (the job's idempotency key, shown in delivery receipts).

Vonage answers HTTP 200 even when it refuses the message: every part of the (possibly concatenated) SMS has an entry
in `messages` with a `status`, "0" meaning accepted. The first part's `message-id` is the provider message id.

Status callbacks are Vonage's delivery receipts (JSON or form: `messageId`, `status`, `err-code`,
`message-timestamp`). The SMS API signs them only with an account-wide signature secret, so Tidings asks for a
token in the callback URL instead: receipts are accepted only when the setting `dlr_token` is set and the URL's
`token` query parameter equals it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

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
from tidings.integrations.sms_settings import VonageSettings
from tidings.tasks.providers.base import HttpProvider
from tidings.tasks.providers.sms import recipient_phone, sms_body

# https://developer.vonage.com/api-errors/sms: 1 throttled, 5 internal error, 10 too many binds ("back-off and
# retry"); 6 invalid message (e.g. an unrecognised number prefix), 7 number barred, 33 number de-activated blame
# the recipient's number; everything else (2 missing / 3 invalid parameters, 4 bad credentials, 8 account barred,
# 9 out of credit, 15 invalid sender, 29 non-whitelisted destination…) is the integration's configuration.
TRANSIENT_STATUSES = frozenset({1, 5, 10})
BAD_NUMBER_STATUSES = frozenset({6, 7, 33})
# client-ref is limited (40 characters in older accounts); a longer key is replaced by a digest of it.
MAX_CLIENT_REF = 40
_MESSAGE_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
# The answer is read up to base.MAX_RESPONSE_BYTES, which a long concatenated SMS can exceed: then fall back to
# scanning the prefix for the entries' fields.
_STATUS_FIELD = re.compile(r'"status"\s*:\s*"?(\d{1,4})"?')
_ID_FIELD = re.compile(r'"message-id"\s*:\s*"([A-Za-z0-9-]{1,64})"')
_COUNT_FIELD = re.compile(r'"message-count"\s*:\s*"?(\d{1,4})"?')

# Delivery receipt statuses that end the message; accepted, buffered and unknown are not news.
_RECEIPT_STATUSES = {
    "delivered": DeliveryStatus.DELIVERED,
    "failed": DeliveryStatus.FAILED,
    "rejected": DeliveryStatus.FAILED,
    "expired": DeliveryStatus.FAILED,
}
# Receipt error codes that condemn the number: 3 absent subscriber (permanent), 9 illegal number.
HARD_ERROR_CODES = frozenset({3, 9})

# GSM 03.38 basic character set and its extension table: text made only of these fits the default encoding.
_GSM_CHARACTERS = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà\f^{}\\[~]|€"
)


def encoding_type(text: str) -> str:
    return "text" if all(char in _GSM_CHARACTERS for char in text) else "unicode"


def client_ref(idempotency_key: str) -> str:
    if len(idempotency_key) <= MAX_CLIENT_REF and idempotency_key.isprintable():
        return idempotency_key
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:MAX_CLIENT_REF]


def _parts(text: str, statuses: list[int]) -> int:
    count = _COUNT_FIELD.search(text)
    return int(count.group(1)) if count else len(statuses)


def _entries(text: str) -> tuple[list[int], list[str]]:
    """The statuses and message ids of the answer's `messages`, in order (of its readable prefix if truncated)."""
    try:
        document = json.loads(text)
    except ValueError:
        return [int(status) for status in _STATUS_FIELD.findall(text)], _ID_FIELD.findall(text)
    messages = document.get("messages") if isinstance(document, dict) else None
    statuses: list[int] = []
    ids: list[str] = []
    for entry in messages if isinstance(messages, list) else []:
        if not isinstance(entry, dict):
            continue
        status = entry.get("status")
        if isinstance(status, str) and status.isdigit() and len(status) <= 4:
            statuses.append(int(status))
        message_id = entry.get("message-id")
        if isinstance(message_id, str) and _MESSAGE_ID.match(message_id):
            ids.append(message_id)
    return statuses, ids


def status_kind(status: int) -> FailureKind:
    if status in TRANSIENT_STATUSES:
        return FailureKind.TRANSIENT
    if status in BAD_NUMBER_STATUSES:
        return FailureKind.BAD_ENDPOINT
    return FailureKind.PERMANENT


class VonageProvider(HttpProvider[VonageSettings]):
    service = "Vonage"

    async def send(self, settings: VonageSettings, message: OutboundMessage) -> SendResult:
        to = recipient_phone(message).removeprefix("+")
        text = sms_body(message)
        form = {
            "api_key": settings.api_key,
            "api_secret": settings.api_secret.get_secret_value(),
            "from": settings.from_number,
            "to": to,
            "text": text,
            "type": encoding_type(text),
            "client-ref": client_ref(message.idempotency_key),
        }
        url = f"{settings.base_url.rstrip('/')}/sms/json"
        answer = await self.post(
            url,
            urlencode(form).encode(),
            {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            timeout_seconds=settings.timeout_seconds,
            subscriber_endpoint=False,
        )
        detail: dict[str, Any] = {"status": answer.status, "endpoint": origin(url)}
        statuses, ids = _entries(answer.text)
        if not statuses:
            # Nothing says whether it was accepted; retrying could send it twice, so the step fails instead.
            raise DeliveryError(
                f"Vonage at {origin(url)} answered {answer.status} without a message status",
                kind=FailureKind.PERMANENT,
                detail=detail,
            )
        refused = next((status for status in statuses if status != 0), None)
        if refused is not None:
            kind = status_kind(refused)
            raise DeliveryError(
                f"Vonage refused the message (status {refused})",
                kind=kind,
                detail={**detail, "error": refused},
            )
        parts = _parts(answer.text, statuses)
        if parts > 1:
            detail["parts"] = parts
        return SendResult(provider_message_id=ids[0] if ids else None, detail=detail)

    def parse_status_webhook(self, settings: VonageSettings, webhook: InboundWebhook) -> list[StatusUpdate]:
        if settings.dlr_token is None:
            raise WebhookRejectedError("Vonage delivery receipts need the integration's dlrToken")
        tokens = parse_qs(urlsplit(webhook.url).query).get("token", [])
        expected = settings.dlr_token.get_secret_value().encode()
        if len(tokens) != 1 or not hmac.compare_digest(tokens[0].encode(), expected):
            raise WebhookRejectedError("the Vonage delivery receipt's token does not match")
        receipt = _receipt(webhook.body)
        message_id, status = receipt.get("messageId"), receipt.get("status")
        if not isinstance(message_id, str) or not _MESSAGE_ID.match(message_id) or status not in _RECEIPT_STATUSES:
            return []
        code = receipt.get("err-code")
        code = str(code) if isinstance(code, int) and not isinstance(code, bool) else code
        reason = code if isinstance(code, str) and code.isdigit() and len(code) <= 4 else None
        failed = _RECEIPT_STATUSES[status] is DeliveryStatus.FAILED
        return [
            StatusUpdate(
                provider_message_id=message_id,
                status=_RECEIPT_STATUSES[status],
                occurred_at=_occurred_at(receipt.get("message-timestamp")),
                hard=failed and reason is not None and int(reason) in HARD_ERROR_CODES,
                reason=reason if failed else None,
            )
        ]


def _receipt(body: bytes) -> dict[str, Any]:
    """A delivery receipt's fields, sent as JSON or as a form."""
    try:
        text = body.decode("utf-8").strip()
        if text.startswith("{"):
            document = json.loads(text)
            if not isinstance(document, dict):
                raise ValueError
            return document
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=True))
    except (UnicodeDecodeError, ValueError):
        raise WebhookRejectedError("the Vonage delivery receipt is neither JSON nor a form") from None


def _occurred_at(value: object) -> datetime:
    # "2020-01-01 12:00:00", in UTC
    if isinstance(value, str):
        try:
            return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.now(UTC)
